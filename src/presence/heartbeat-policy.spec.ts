import { DEFAULT_TTL_SLACK_MS, HeartbeatPolicy, MAX_RTT_SLACK_MS, RTT_SLACK_FACTOR, TTL_FACTOR } from './heartbeat-policy';

describe('HeartbeatPolicy', () => {
  const policy = new HeartbeatPolicy({ interval: 25_000, min: 5_000, max: 300_000 });

  it('clamps a requested interval into [min, max]', () => {
    expect(policy.clamp(undefined)).toBe(25_000);
    expect(policy.clamp(1)).toBe(5_000);
    expect(policy.clamp(60_000.4)).toBe(60_000);
    expect(policy.clamp(10_000_000)).toBe(300_000);
  });

  it('lets presence survive a skipped heartbeat, plus a fixed slack for TCP retransmissions', () => {
    expect(TTL_FACTOR).toBeGreaterThan(2);
    expect(DEFAULT_TTL_SLACK_MS).toBe(3_000);
    expect(policy.ttlFor(25_000)).toBe(65_500);
    expect(policy.ttlFor(2_000)).toBe(8_000);
    expect(policy.initial()).toEqual({ interval: 25_000, min: 5_000, max: 300_000, ttl: 65_500 });
  });

  it('widens the slack by the round trip the device reports, up to a bound', () => {
    expect(RTT_SLACK_FACTOR).toBe(8);
    expect(policy.ttlFor(2_000, 600)).toBe(5_000 + 3_000 + 4_800); // a 600 ms link: four retransmissions fit
    expect(policy.ttlFor(2_000, 20)).toBe(8_160);
    expect(policy.ttlFor(2_000, 0)).toBe(8_000);
    expect(policy.ttlFor(2_000, 500_000)).toBe(8_000 + MAX_RTT_SLACK_MS); // a claim buys no more than the bound
    // A session starts with the slack for the round trip its handshake announced.
    expect(policy.initial(600)).toEqual({ interval: 25_000, min: 5_000, max: 300_000, ttl: 65_500 + 4_800 });
  });

  it('takes its slack from the configuration (HEARTBEAT_TTL_SLACK_MS)', () => {
    expect(new HeartbeatPolicy({ interval: 400, min: 200, max: 1_000 }, 0).ttlFor(400)).toBe(1_000);
    expect(new HeartbeatPolicy({ interval: 400, min: 200, max: 1_000 }, 1_500).ttlFor(1_000)).toBe(4_000);
  });
});
