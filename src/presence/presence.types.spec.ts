import { HeartbeatUpdate, heartbeatIndexScore, knownLive } from './presence.types';

describe('heartbeatIndexScore and knownLive', () => {
  const now = 1_000_000;
  // Interval 10 s, TTL 25 s: the policy's 2.5 intervals.
  const beat = (known: Partial<HeartbeatUpdate> = {}): HeartbeatUpdate => ({ deviceId: 'd', sessionId: 's', instanceId: 'i', now, interval: 10_000, ttl: 25_000, ...known });

  it('leaves an entry that cannot come due before the next beat, and moves one that could', () => {
    // Due in 20 s > 1.25 intervals: stays. Due in 12.5 s, exactly 1.25 intervals: moved to the new expiry.
    expect(heartbeatIndexScore(beat({ recordedExpiresAt: now + 20_000, recordedIndexAt: now + 20_000 }))).toBeUndefined();
    expect(heartbeatIndexScore(beat({ recordedExpiresAt: now + 20_000, recordedIndexAt: now + 12_500 }))).toBe(now + 25_000);
    expect(knownLive(beat({ recordedExpiresAt: now + 20_000, recordedIndexAt: now + 20_000 }))).toBe(true);
  });

  it('moves an entry later than the new expiry (a shorter TTL): it is never later than expiresAt', () => {
    expect(heartbeatIndexScore(beat({ ttl: 12_000, interval: 4_000, recordedExpiresAt: now + 20_000, recordedIndexAt: now + 20_000 }))).toBe(now + 12_000);
  });

  it('moves the entry whenever the holder does not know the record live: the sweep may have re-scored it', () => {
    expect(heartbeatIndexScore(beat())).toBe(now + 25_000);
    expect(heartbeatIndexScore(beat({ recordedExpiresAt: now + 20_000 }))).toBe(now + 25_000);
    // Expired by the holder's clock (a late heartbeat, within the grace at best).
    const late = beat({ recordedExpiresAt: now, recordedIndexAt: now - 30_000 });
    expect(knownLive(late)).toBe(false);
    expect(heartbeatIndexScore(late)).toBe(now + 25_000);
    expect(knownLive(beat({ recordedIndexAt: now + 20_000 }))).toBe(false);
  });
});
