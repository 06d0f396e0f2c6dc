import { HeartbeatPolicy, TTL_FACTOR } from './heartbeat-policy';

describe('HeartbeatPolicy', () => {
  const policy = new HeartbeatPolicy({ interval: 25_000, min: 5_000, max: 300_000 });

  it('clamps a requested interval into [min, max]', () => {
    expect(policy.clamp(undefined)).toBe(25_000);
    expect(policy.clamp(1)).toBe(5_000);
    expect(policy.clamp(60_000.4)).toBe(60_000);
    expect(policy.clamp(10_000_000)).toBe(300_000);
  });

  it('lets presence survive two missed heartbeats plus slack', () => {
    expect(TTL_FACTOR).toBeGreaterThan(2);
    expect(policy.ttlFor(25_000)).toBe(62_500);
    expect(policy.initial()).toEqual({ interval: 25_000, min: 5_000, max: 300_000, ttl: 62_500 });
  });
});
