import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { CloseReason, DeviceSession, DeviceSocket } from '../channel/socket-events';
import { loadConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { TokenExpiry } from './token-expiry.service';

const GRACE = 30_000;

describe('TokenExpiry (fake clock)', () => {
  const clock = new FakeClock(1_800_000_000_000);
  const closed: { sessionId: string; reason: CloseReason }[] = [];
  const sockets = new Map<string, DeviceSocket>();
  const channel = {
    localSessionSocket: (id: string) => sockets.get(id),
    closeSocket: (socket: DeviceSocket, reason: CloseReason) => {
      socket.data.session.closing = reason;
      closed.push({ sessionId: socket.data.session.sessionId, reason });
    },
  } as unknown as DeviceChannel;
  const metrics = new MetricsService();
  /** How far behind the process is (LoadMonitor.delay), as each test sets it. */
  const load = { delay: 0 };
  const tokens = new TokenExpiry(channel, clock, loadConfig({ TOKEN_EXPIRY_GRACE_MS: String(GRACE) }), metrics, load as LoadMonitor);

  /** A connected session whose token expires `lifetime` ms from now. */
  const connect = (sessionId: string, lifetime: number): DeviceSession => {
    const tokenExpiresAt = clock.now() + lifetime;
    const session = { sessionId, deviceId: sessionId, tokenExpiresAt, tokenDeadline: tokens.deadlineFor(tokenExpiresAt) } as DeviceSession;
    sockets.set(sessionId, { data: { session } } as DeviceSocket);
    tokens.track(session);
    return session;
  };

  beforeEach(() => {
    closed.length = 0;
    sockets.clear();
    load.delay = 0;
  });

  it('ends a session on the first tick at or after its token expiry plus the grace, and not a millisecond earlier', async () => {
    connect('short', 3_000);
    connect('long', 3_600_000);
    clock.advance(3_000 + GRACE - 1);
    expect(tokens.endDue()).toBe(0);
    clock.advance(1);
    expect(tokens.endDue()).toBe(1);
    expect(closed).toEqual([{ sessionId: 'short', reason: 'token_expired' }]);
    expect(tokens.endDue()).toBe(0); // ended once
    expect((await metrics.tokensExpired.get()).values[0]?.value).toBe(1);
  });

  it('a renewed token moves the deadline, later or earlier; a gone session is forgotten', () => {
    const renewed = connect('renewed', 3_000);
    const shortened = connect('shortened', 3_600_000);
    const left = connect('left', 1_000);
    clock.advance(2_000);
    tokens.renew(renewed, clock.now() + 3_600_000);
    tokens.renew(shortened, clock.now() + 5_000);
    expect(renewed.tokenDeadline).toBe(clock.now() + 3_600_000 + GRACE);
    tokens.forget(left);
    sockets.delete('left');
    clock.advance(5_000 + GRACE);
    expect(tokens.endDue()).toBe(1);
    expect(closed.map((c) => c.sessionId)).toEqual(['shortened']);
    clock.advance(3_600_000);
    expect(tokens.endDue()).toBe(1);
    expect(closed.map((c) => c.sessionId)).toEqual(['shortened', 'renewed']);
  });

  it('tells whether a session is over between ticks, leaving one in its grace alone, and ends it once', () => {
    const session = connect('between', 1_000);
    const socket = sockets.get('between')!;
    clock.advance(1_000 + GRACE - 1); // expired, but within the grace
    expect(tokens.ranOut(session)).toBe(false);
    clock.advance(1);
    expect(tokens.ranOut(session)).toBe(true);
    expect(tokens.end(socket)).toBe(true);
    expect(session.closing).toBe('token_expired');
    expect(tokens.end(socket)).toBe(false); // closed only once
    expect(tokens.endDue()).toBe(0);
    expect(closed).toHaveLength(1);
  });

  it('gives a session as much extra time as the process is behind', () => {
    const session = connect('loaded', 1_000);
    load.delay = 2_000; // what arrived just now may have been sent 2 s ago
    clock.advance(1_000 + GRACE + 1_999);
    expect(tokens.ranOut(session)).toBe(false);
    expect(tokens.endDue()).toBe(0);
    clock.advance(1);
    expect(tokens.ranOut(session)).toBe(true);
    expect(tokens.endDue()).toBe(1);
  });

  it('skips a session that is already closing for another reason', () => {
    const session = connect('replaced', 1_000);
    session.closing = 'replaced';
    clock.advance(1_000 + GRACE);
    expect(tokens.endDue()).toBe(0);
    expect(closed).toEqual([]);
  });
});
