import type { Server, Socket } from 'socket.io';
import type { AppState, SessionRef } from '../presence/presence.types';
import type { OfflineReason } from '../events/event.types';

/** The socket protocol in one place: every payload the gateway sends or accepts, by event name. */
export interface HeartbeatSettingsPayload {
  interval: number;
  min: number;
  max: number;
  ttl: number;
  /** Learned from other devices on the network the client announced in `auth.network`. */
  recommended?: number;
}

export interface ReadyPayload {
  sessionId: string;
  deviceId: string;
  userId: string;
  heartbeat: HeartbeatSettingsPayload;
  serverTime: number;
  /** When the session's token runs out (ms): its `exp`, or earlier under DEVICE_TOKEN_MAX_AGE. Refresh with `auth` before. */
  tokenExpiresAt: number;
}

export interface NotificationPayload {
  id: string;
  data: unknown;
  title?: string;
  body?: string;
  topic?: string;
  collapseKey?: string;
  createdAt: number;
  expiresAt?: number;
}

export type ErrorCode =
  | 'unknown_event'
  | 'invalid_payload'
  | 'payload_too_large'
  | 'rate_limited'
  | 'forbidden_topic'
  | 'session_expired'
  | 'unavailable'
  | 'invalid_token'
  | 'token_expired'
  | 'identity_mismatch'
  | 'invalid_push_target';

export const ERROR_CODES: Record<ErrorCode, true> = {
  unknown_event: true,
  invalid_payload: true,
  payload_too_large: true,
  rate_limited: true,
  forbidden_topic: true,
  session_expired: true,
  unavailable: true,
  invalid_token: true,
  token_expired: true,
  identity_mismatch: true,
  invalid_push_target: true,
};

export interface ErrorAck {
  ok: false;
  /** `topics` lists the refused topics of a `forbidden_topic` error. */
  error: { code: ErrorCode; message: string; topics?: string[] };
}

export interface HeartbeatAck {
  ok: true;
  interval: number;
  ttl: number;
  serverTime: number;
}

export interface TopicsAck {
  ok: true;
  topics: string[];
}

/** `auth` accepted: the session now runs on the new token. */
export interface AuthAck {
  ok: true;
  tokenExpiresAt: number;
  /** The topics the session holds: those the new token no longer grants were left. */
  topics: string[];
}

/** A request that needs no answer but that it was done. */
export interface OkAck {
  ok: true;
}

export type Ack<T> = T | ErrorAck;

/** Why the server ended a session, as `session_ended` tells the device. */
export type SessionEndReason = 'token_expired' | 'slow_consumer' | 'rate_limited' | 'kicked' | 'expired';

/** Whether a device should connect again by itself after each server-side end. */
export const RECONNECT_AFTER: Record<SessionEndReason, boolean> = {
  token_expired: true,
  slow_consumer: true,
  rate_limited: true,
  kicked: false,
  expired: true,
};

export interface SessionEndedPayload {
  reason: SessionEndReason;
  reconnect: boolean;
}

export interface ServerToClientEvents {
  ready: (payload: ReadyPayload) => void;
  notification: (payload: NotificationPayload, ack: (receipt?: unknown) => void) => void;
  session_replaced: (payload: { sessionId: string; reason: 'new_session' }) => void;
  server_draining: (payload: { instanceId: string; reconnect: true }) => void;
  session_ended: (payload: SessionEndedPayload) => void;
}

/** Every server event by name; the compiler keeps it complete (the AsyncAPI test reads it). */
export const SERVER_EVENTS: Record<keyof ServerToClientEvents, true> = {
  ready: true,
  notification: true,
  session_replaced: true,
  server_draining: true,
  session_ended: true,
};

/** Why the server closes a session: a `session_ended` reason, a takeover, or this instance's drain. */
export type CloseReason = SessionEndReason | 'replaced' | 'server_shutdown';

/** The `device.offline` reason of a session that ends with the server's close `reason` (none: the client left). */
export function offlineReason(reason: CloseReason | undefined): OfflineReason {
  if (reason === undefined) return 'client_close';
  return reason === 'expired' ? 'heartbeat_timeout' : reason;
}

/** What instances broadcast over the adapter (deliveries and closes go to one instance's mailbox: InstanceMailbox). */
export interface InterServerEvents {
  /** These devices' inboxes may hold something they were not sent: read them again if their sockets are here. */
  'push-gateway:recheck': (deviceIds: string[]) => void;
}

/** What the auth middleware learned from the token, plus the live session state. */
export interface DeviceSession {
  deviceId: string;
  userId: string;
  sessionId: string;
  platform?: string;
  topics: string[];
  interval: number;
  network?: string;
  /** The round trip the client announced with its handshake (`auth.rtt`, ms): the first TTL keeps room for it. */
  rtt?: number;
  /**
   * What the session's presence record holds for interval, app state, network, expiresAt and its
   * expiry-index score (written by its start and the heartbeats sent since, which Redis applies in
   * order), so a heartbeat writes only what changed and need not read the record; emptied when a
   * write's outcome is unknown, so the next heartbeat checks the record and writes every field.
   */
  recorded: { interval?: number; appState?: AppState; network?: string; expiresAt?: number; indexAt?: number };
  /** Heartbeats in a row at the current interval; a run of STABLE_BEATS is one learning sample. */
  beatsAtInterval: number;
  /** When the first heartbeat of that run arrived (gateway clock), to check the run took real time. */
  runStartedAt?: number;
  /** When the session's token runs out (ms, the verifier's effective expiry); moved by `auth`. */
  tokenExpiresAt: number;
  /** tokenExpiresAt + TOKEN_EXPIRY_GRACE_MS: from then on the session is over and is sent nothing. */
  tokenDeadline: number;
  /** Settles once presence is recorded and `ready` was sent; false if that failed. */
  ready?: Promise<boolean>;
  /** Set as `ready` settles true: a heartbeat after it need not wait on the promise. */
  started?: boolean;
  /** Set once the server decided to close this session: nothing more is sent or handled. */
  closing?: CloseReason;
}

/** Whether the session's token ran out longer than the grace ago: it may be sent nothing more, and is ended. */
export function tokenRanOut(session: DeviceSession, now: number): boolean {
  return now >= session.tokenDeadline;
}

/** The store's handle on a live session. */
export function sessionRef(s: DeviceSession, instanceId: string): SessionRef {
  return { deviceId: s.deviceId, sessionId: s.sessionId, userId: s.userId, instanceId };
}

export interface SocketData {
  session: DeviceSession;
}

// Client events are validated by hand (payloads are untrusted), so they are typed loosely here.
type ClientToServerEvents = Record<string, (...args: unknown[]) => void>;
export type DeviceServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type DeviceSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

export function errorAck(code: ErrorCode, message: string, details: { topics?: string[] } = {}): ErrorAck {
  return { ok: false, error: { code, message, ...details } };
}
