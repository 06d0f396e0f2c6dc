import { io, Socket } from 'socket.io-client';
import { Backoff } from './backoff';
import { DedupeWindow } from './dedupe';
import { Emitter } from './emitter';
import { HeartbeatTuner } from './heartbeat-tuner';
import { IDLE_SHARE, IdleGap } from './idle-gap';
import { AuthReply, HeartbeatReply, Notification, OkReply, PushTarget, ReadyPayload, SessionEnded, TopicsReply } from './protocol';
import { RttEstimator } from './rtt-estimator';
import { IntervalStorage, memoryStorage } from './storage';

export type TokenSource = string | (() => string | Promise<string>);
export type ClientState = 'idle' | 'connecting' | 'online' | 'offline' | 'closed';

export interface PushClientOptions {
  url: string;
  /** A device JWT, or a function returning a fresh one; it is called before every (re)connect. */
  token: TokenSource;
  /** Network key for smart heartbeats (`wifi:<ssid>`, `cell:<carrier>`); learning is kept per key. */
  network?: string;
  /** Where learned intervals are kept (default: memory; browsers: `localStorageStorage()`). */
  storage?: IntervalStorage;
  /** Ack notifications after the handlers return (default true); false: call `ctx.ack()` yourself. */
  autoAck?: boolean;
  /**
   * Pins how long a heartbeat (and a token refresh) waits for its ack. Default: heartbeats adapt to
   * the measured round trips (see `ackTimeoutMs`), token refreshes wait 10 s.
   */
  heartbeatAckTimeoutMs?: number;
  /** How many notification ids are remembered to drop redeliveries (default 1000). */
  dedupeSize?: number;
  /** Socket.IO transports (default: polling upgrading to WebSocket). */
  transports?: ('polling' | 'websocket')[];
  reconnect?: { baseMs?: number; maxMs?: number };
  /** Connect at once (default true). */
  autoConnect?: boolean;
}

export interface NotificationContext {
  /** Acknowledge now (with autoAck false, or before a long handler finishes). */
  ack(): void;
}

export interface PushClientError {
  code: string;
  message: string;
  /** True when the client gave up: fix the cause and call `connect()`. */
  terminal: boolean;
}

export type PushClientEvents = {
  ready: (ready: ReadyPayload) => void;
  notification: (notification: Notification, ctx: NotificationContext) => unknown;
  online: () => void;
  offline: (reason: string) => void;
  replaced: () => void;
  error: (error: PushClientError) => void;
  /**
   * A heartbeat's outcome; `idle`: nothing else crossed the link in the gap before it, so the tuner
   * learned from it; `ttl` (when `ok`): ms the gateway keeps the device online from this beat.
   */
  heartbeat: (beat: { interval: number; ok: boolean; idle: boolean; ttl?: number }) => void;
  /** The server ended the session (`session_ended`); the client reconnects by itself when `reconnect` is true. */
  ended: (ended: SessionEnded) => void;
  /** The session moved onto a fresh token from the token function. */
  refreshed: (refresh: { tokenExpiresAt: number }) => void;
};

/**
 * One heartbeat without an ack means the link is dead: reconnect instead of waiting for TCP. The
 * ack timeout follows the measured round trips, so one miss is a strong signal, and a second try
 * only doubled the time to notice (22 s on a real link with the old fixed 10 s timeout).
 */
export const FAILED_BEATS_FOR_DEAD_LINK = 1;

/**
 * A failed beat teaches the tuner only if it went out after an idle gap of about the interval:
 * a much later timer (a throttled background tab, a phone waking up) failing says nothing about
 * the interval.
 */
const LATE_GAP_FACTOR = 1.25;

/** How long a detached socket is kept when its session announced no ttl. */
const PARK_FALLBACK_MS = 10_000;

/** A token is refreshed this long before it runs out, or at 80 % of its remaining lifetime if that is earlier. */
export const REFRESH_LEAD_MS = 60_000;

/**
 * How long to wait before refreshing a token that runs out in `remainingMs`: at 80 % of that, or
 * REFRESH_LEAD_MS before the end, whichever is earlier, but never before half of it, so a
 * short-lived token is used before it is replaced (instead of a refresh loop).
 */
export function refreshDelay(remainingMs: number): number {
  const lead = Math.min(Math.max(0.2 * remainingMs, REFRESH_LEAD_MS), 0.5 * remainingMs);
  return Math.max(0, Math.floor(remainingMs - lead));
}

/** setTimeout's longest delay (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Ends after which the client comes back at once rather than after a backoff delay. */
const RECONNECT_AT_ONCE = new Set<SessionEnded['reason']>(['token_expired', 'expired']);

export class PushClient extends Emitter<PushClientEvents> {
  private socket?: Socket;
  /**
   * The socket of a link found dead, kept open without listeners until the next session is
   * `ready` (make before break): on a link that was only slow, closing it first would let its FIN
   * reach the server before the new connection and flap the device offline.
   */
  private parked?: { socket: Socket; timer: ReturnType<typeof setTimeout> };
  private readonly rtt = new RttEstimator();
  private gap?: IdleGap;
  private connectStartedAt = 0;
  /** Time spent in the token function during this handshake: not network time. */
  private tokenWaitMs = 0;
  private readonly tuner: HeartbeatTuner;
  private readonly backoff: Backoff;
  private readonly dedupe: DedupeWindow;
  private readonly refreshBackoff = new Backoff(1_000, 30_000);
  private beatTimer?: ReturnType<typeof setTimeout>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  /** Server clock minus ours (from ready and heartbeat acks): token times are the server's. */
  private serverOffset = 0;
  /** The token the current session runs on. */
  private sessionToken?: string;
  private network?: string;
  /** The network announced with the current session's handshake (what `recommended` is for). */
  private handshakeNetwork?: string;
  private foreground = false;
  /** Why the current connection is ending, when we know better than Socket.IO's reason. */
  private ending?: 'closed' | 'replaced' | 'draining' | 'ended';
  private ended?: SessionEnded;
  private ready?: ReadyPayload;
  /** Requests waiting for a session (registerPush while offline). */
  private readonly sessionWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  state: ClientState = 'idle';

  constructor(private readonly options: PushClientOptions) {
    super();
    this.network = options.network;
    this.tuner = new HeartbeatTuner(options.storage ?? memoryStorage());
    this.backoff = new Backoff(options.reconnect?.baseMs, options.reconnect?.maxMs);
    this.dedupe = new DedupeWindow(options.dedupeSize);
    if (options.autoConnect ?? true) this.connect();
  }

  /** The heartbeat interval in use (ms), once connected. */
  get interval(): number | undefined {
    return this.ready ? this.tuner.interval : undefined;
  }

  get session(): ReadyPayload | undefined {
    return this.ready;
  }

  /** How long the next heartbeat waits for its ack (ms): 3 srtt + 4 rttvar within [1.5 s, 10 s], unless pinned. */
  get ackTimeoutMs(): number {
    return this.options.heartbeatAckTimeoutMs ?? this.rtt.timeoutMs;
  }

  /** The smoothed heartbeat round trip of this connection (ms), seeded from the handshake. */
  get srtt(): number | undefined {
    return this.rtt.srtt;
  }

  connect(): void {
    if (this.socket) return;
    this.ending = undefined;
    this.state = 'connecting';
    this.connectStartedAt = Date.now();
    this.tokenWaitMs = 0;
    this.handshakeNetwork = this.network;
    const socket = io(this.options.url, {
      transports: this.options.transports,
      reconnection: false, // reconnects are ours: backoff with jitter, terminal errors, drain hints
      forceNew: true,
      auth: (cb) => void this.auth().then(cb, () => cb({})),
    });
    this.socket = socket;
    this.gap = new IdleGap();
    this.gap.watch(socket);
    socket.on('ready', (ready: ReadyPayload) => void this.onReady(ready));
    socket.on('notification', (n: Notification, ack: () => void) => void this.onNotification(n, ack));
    socket.on('session_replaced', () => (this.ending = 'replaced'));
    socket.on('server_draining', () => (this.ending ??= 'draining'));
    socket.on('session_ended', (ended: SessionEnded) => this.onSessionEnded(ended));
    socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => this.onConnectError(socket, err));
    socket.on('disconnect', (reason: string) => this.onDisconnect(socket, reason));
  }

  /** Closes for good (until `connect()`); no reconnect. */
  close(): void {
    this.ending = 'closed';
    clearTimeout(this.reconnectTimer);
    this.stopBeats();
    clearTimeout(this.refreshTimer);
    this.closeParked();
    const socket = this.socket;
    this.socket = undefined;
    socket?.disconnect();
    this.state = 'closed';
    for (const waiter of this.sessionWaiters.splice(0)) waiter.reject(new Error('client closed'));
  }

  async subscribe(topics: string[]): Promise<string[]> {
    return this.topicRequest('subscribe', topics);
  }

  async unsubscribe(topics: string[]): Promise<string[]> {
    return this.topicRequest('unsubscribe', topics);
  }

  /**
   * Registers where else this device can be reached (native push, used by a publish's `fallback`):
   * one registration per device, kept by the gateway with the device (a new one replaces it).
   * Sent now, or at the next session start when not connected; rejects with the gateway's error
   * (`code` `invalid_push_target` and why) or when the client is closed first.
   */
  async registerPush(target: PushTarget): Promise<void> {
    const payload =
      target.provider === 'webpush'
        ? { provider: 'webpush', subscription: 'toJSON' in target.subscription ? target.subscription.toJSON() : target.subscription }
        : { provider: target.provider, token: target.token };
    await this.okRequest('register_push', payload);
  }

  /** Deletes this device's native push registration. */
  async unregisterPush(): Promise<void> {
    await this.okRequest('unregister_push', {});
  }

  /**
   * The app already showed this notification (from a native push, say a service worker's): a copy
   * arriving on the socket later is acked but not emitted. Ids are kept like received ones (`dedupeSize`).
   */
  markShown(id: string): void {
    this.dedupe.firstTime(id);
  }

  /** The app moved to another network: learning switches to that network's values. */
  setNetwork(network: string | undefined): void {
    this.network = network;
    if (!this.ready) return;
    // `recommended` was for the network announced at the handshake: the tuner takes it as known good.
    const { recommended, ...bounds } = this.ready.heartbeat;
    const heartbeat = network === this.handshakeNetwork ? { ...bounds, recommended } : bounds;
    void this.tuner.start(network, heartbeat).then(() => this.scheduleBeat(this.tuner.interval));
  }

  /** In the foreground, beat at the server's minimum for fast dead-link detection. */
  setForeground(foreground: boolean): void {
    this.foreground = foreground;
    this.tuner.setForeground(foreground);
    if (this.ready) this.scheduleBeat(0);
  }

  private async auth(): Promise<Record<string, unknown>> {
    const asked = Date.now();
    const rtt = this.expectedRtt(asked);
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    this.tokenWaitMs += Date.now() - asked;
    this.sessionToken = token;
    return { token, rtt, ...(this.network ? { network: this.network } : {}) };
  }

  /**
   * The round trip announced with the handshake (`auth.rtt`), which the first TTL keeps room for:
   * the first heartbeats of a new connection, on a link that just lost one, are the likeliest to
   * wait behind retransmissions. The larger of the previous connection's smoothed round trip and
   * half of this handshake so far (a transport connect and Engine.IO's open: two round trips).
   */
  private expectedRtt(asked: number): number {
    return Math.round(Math.max(this.rtt.srtt ?? 0, (asked - this.connectStartedAt - this.tokenWaitMs) / 2));
  }

  private async onReady(ready: ReadyPayload): Promise<void> {
    // The server replaced the old session before this `ready`: closing its socket no longer
    // touches presence.
    this.closeParked();
    this.gap?.mark();
    this.rtt.seedFromHandshake(Date.now() - this.connectStartedAt - this.tokenWaitMs);
    this.ready = ready;
    this.serverOffset = ready.serverTime - Date.now();
    this.backoff.reset();
    this.refreshBackoff.reset();
    this.scheduleRefresh();
    await this.tuner.start(this.network, ready.heartbeat);
    this.state = 'online';
    this.emit('ready', ready);
    for (const waiter of this.sessionWaiters.splice(0)) waiter.resolve();
    this.emit('online');
    this.scheduleBeat(this.tuner.interval);
  }

  /**
   * Arms the next token refresh. A static token has nothing to refresh: the server ends that
   * session when it runs out, and the client stops (the same token would be refused).
   */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (!this.ready || typeof this.options.token !== 'function') return;
    const delay = refreshDelay(this.ready.tokenExpiresAt - (Date.now() + this.serverOffset));
    // A token valid for months is looked at again in 24 days rather than refreshed at once.
    if (delay > MAX_TIMER_MS) this.refreshTimer = setTimeout(() => this.scheduleRefresh(), MAX_TIMER_MS);
    else this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  /** Sends `auth` with a fresh token; a failure is retried with backoff until the server ends the session. */
  private async refresh(): Promise<void> {
    const socket = this.socket;
    const source = this.options.token;
    if (!socket?.connected || typeof source !== 'function') return;
    let token: string | undefined;
    let outcome: AuthReply | PushClientError;
    try {
      token = await source();
      // A cached token would not move the expiry: sending it would only halve the wait again and again.
      outcome =
        token === this.sessionToken
          ? { code: 'stale_token', message: 'the token function returned the token the session already runs on', terminal: false }
          : await this.sendAuth(socket, token);
    } catch (err) {
      outcome = { code: 'refresh_failed', message: (err as Error).message, terminal: false };
    }
    if (socket !== this.socket || !this.ready) return;
    if ('ok' in outcome && outcome.ok) {
      this.sessionToken = token;
      this.refreshBackoff.reset();
      this.ready = { ...this.ready, tokenExpiresAt: outcome.tokenExpiresAt };
      this.emit('refreshed', { tokenExpiresAt: outcome.tokenExpiresAt });
      this.scheduleRefresh();
      return;
    }
    this.emit('error', 'ok' in outcome ? { ...outcome.error, terminal: false } : outcome);
    this.refreshTimer = setTimeout(() => void this.refresh(), this.refreshBackoff.next());
  }

  private sendAuth(socket: Socket, token: string): Promise<AuthReply> {
    return new Promise((resolve, reject) => {
      socket.timeout(this.options.heartbeatAckTimeoutMs ?? 10_000).emit('auth', { token }, (err: Error | null, reply?: AuthReply) =>
        err || !reply ? reject(err ?? new Error('empty auth ack')) : resolve(reply),
      );
    });
  }

  private onSessionEnded(ended: SessionEnded): void {
    this.ended = ended;
    this.ending ??= 'ended';
    this.emit('ended', ended);
  }

  private async onNotification(n: Notification, ack: () => void): Promise<void> {
    let acked = false;
    const once = () => {
      if (!acked) ack();
      acked = true;
    };
    if (!this.dedupe.firstTime(n.id)) return once(); // a redelivery of something already handled
    try {
      await this.emitAsync('notification', n, { ack: once });
      if (this.options.autoAck ?? true) once();
    } catch {
      // The handler failed: no ack, so the gateway keeps it pending and sends it again.
    }
  }

  private scheduleBeat(delay: number): void {
    this.stopBeats();
    this.beatTimer = setTimeout(() => this.beat(), delay);
  }

  private stopBeats(): void {
    clearTimeout(this.beatTimer);
  }

  private beat(): void {
    const socket = this.socket;
    if (!socket?.connected) return;
    const interval = this.tuner.interval;
    const idleMs = this.gap?.idleMs() ?? 0; // before this beat's own packet
    const idle = idleMs >= IDLE_SHARE * interval;
    const srtt = this.rtt.srtt;
    // The measured round trip lets the gateway keep room for TCP retransmissions on a slow link.
    const payload = {
      interval,
      ...(this.network ? { network: this.network } : {}),
      appState: this.foreground ? 'foreground' : 'background',
      ...(srtt === undefined ? {} : { rtt: Math.round(srtt) }),
    };
    const sentAt = Date.now();
    socket.timeout(this.ackTimeoutMs).emit('heartbeat', payload, (err: Error | null, reply?: HeartbeatReply) => {
      if (socket !== this.socket) return;
      if (err) return this.onMissedBeat(socket, interval, idle && idleMs <= LATE_GAP_FACTOR * interval);
      this.rtt.sample(Date.now() - sentAt);
      this.gap?.mark();
      this.emit('heartbeat', { interval, ok: !!reply?.ok, idle, ...(reply?.ok ? { ttl: reply.ttl } : {}) });
      if (reply?.ok) {
        this.serverOffset = reply.serverTime - Date.now();
        if (idle) this.tuner.onSuccess(interval); // a gap with other traffic is neither success nor failure
        this.scheduleBeat(this.tuner.interval);
      } else {
        this.scheduleBeat(interval); // e.g. the server's store is briefly unavailable: the link itself is fine
      }
    });
  }

  /** No ack within the ack timeout: the link is dead. Reconnect at once, keeping the old socket until then. */
  private onMissedBeat(socket: Socket, interval: number, idle: boolean): void {
    this.emit('heartbeat', { interval, ok: false, idle });
    if (this.ending) {
      socket.disconnect(); // already on its way out (replaced, draining, ended): finish that instead
      return;
    }
    if (idle) this.tuner.onFailure();
    const ttl = this.ready?.heartbeat.ttl ?? PARK_FALLBACK_MS;
    this.release(socket);
    this.park(socket, ttl);
    this.state = 'offline';
    this.emit('offline', 'dead_link');
    this.scheduleReconnect(0);
  }

  /**
   * Keeps a dead link's socket open but deaf until the next session is ready, the old session's
   * ttl has passed (the server expired it by then anyway), or `close()`.
   */
  private park(socket: Socket, boundMs: number): void {
    this.closeParked();
    const timer = setTimeout(() => this.closeParked(), boundMs);
    this.parked = { socket, timer };
    socket.on('disconnect', () => {
      if (this.parked?.socket !== socket) return;
      clearTimeout(timer);
      this.parked = undefined;
      socket.removeAllListeners();
    });
  }

  private closeParked(): void {
    const parked = this.parked;
    if (!parked) return;
    this.parked = undefined;
    clearTimeout(parked.timer);
    parked.socket.removeAllListeners();
    parked.socket.disconnect();
  }

  /** Forgets the current connection: no beats, no refresh, no listeners on `socket`. */
  private release(socket: Socket): void {
    this.stopBeats();
    clearTimeout(this.refreshTimer);
    this.ended = undefined;
    this.ready = undefined;
    this.socket = undefined;
    this.gap = undefined;
    socket.removeAllListeners();
  }

  private onConnectError(socket: Socket, err: Error & { data?: { code?: string; message?: string } }): void {
    if (socket !== this.socket) return;
    const code = err.message === 'unauthorized' ? (err.data?.code ?? 'invalid_token') : 'connect_failed';
    // Without a token function the same token would be refused again: stop instead of looping.
    const terminal = code !== 'connect_failed' && typeof this.options.token !== 'function';
    this.emit('error', { code, message: err.data?.message ?? err.message, terminal });
    this.socket = undefined;
    socket.removeAllListeners();
    socket.close();
    if (terminal) {
      this.state = 'closed';
      return;
    }
    this.state = 'offline';
    this.scheduleReconnect(this.backoff.next());
  }

  private onDisconnect(socket: Socket, reason: string): void {
    if (socket !== this.socket && this.ending !== 'closed') return;
    const ending = this.ending;
    const ended = this.ended;
    this.release(socket);
    if (ending === 'closed') return;
    this.state = 'offline';
    this.emit('offline', ending === 'ended' && ended ? ended.reason : (ending ?? reason));
    if (ending === 'ended' && ended) return this.afterSessionEnded(ended);
    if (ending === 'replaced') {
      // Another connection of this device took over: reconnecting would take it back and loop.
      this.state = 'closed';
      this.emit('replaced');
      return;
    }
    if (reason === 'io server disconnect' && !ending) {
      // The server ended the session on purpose (an operator's disconnect): stay down.
      this.state = 'closed';
      return;
    }
    // A drain hint: reconnect at once. Otherwise (transport lost) back off.
    this.scheduleReconnect(ending === 'draining' ? 0 : this.backoff.next());
  }

  /** The server said why it ended the session and whether to come back. */
  private afterSessionEnded(ended: SessionEnded): void {
    if (!ended.reconnect) {
      this.state = 'closed'; // an operator ended it: stay down until connect()
      return;
    }
    if (ended.reason === 'token_expired' && typeof this.options.token !== 'function') {
      // The same token would be refused: give up like a refused handshake does.
      this.state = 'closed';
      this.emit('error', { code: 'token_expired', message: 'the session token ran out and there is no token function to get another', terminal: true });
      return;
    }
    // A fresh token comes from the token function at the next handshake; load-related ends back off.
    this.scheduleReconnect(RECONNECT_AT_ONCE.has(ended.reason) ? 0 : this.backoff.next());
  }

  private scheduleReconnect(delay: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private async okRequest(event: 'register_push' | 'unregister_push', payload: unknown): Promise<void> {
    if (!this.socket?.connected || !this.ready) await this.nextSession();
    const reply = (await this.socket!.timeout(10_000).emitWithAck(event, payload)) as OkReply;
    if (!reply.ok) throw Object.assign(new Error(reply.error.message), reply.error);
  }

  /** Resolves at the next `ready`; rejects if the client is closed first. */
  private nextSession(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error('client closed'));
    return new Promise((resolve, reject) => this.sessionWaiters.push({ resolve, reject }));
  }

  private async topicRequest(event: 'subscribe' | 'unsubscribe', topics: string[]): Promise<string[]> {
    if (!this.socket?.connected) throw new Error('not connected');
    const reply = (await this.socket.timeout(10_000).emitWithAck(event, { topics })) as TopicsReply;
    if (!reply.ok) throw Object.assign(new Error(reply.error.message), reply.error);
    return reply.topics;
  }
}

export function createPushClient(options: PushClientOptions): PushClient {
  return new PushClient(options);
}
