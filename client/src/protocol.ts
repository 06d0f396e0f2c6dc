/** The gateway's socket protocol, as the client sees it (see the gateway README / asyncapi.json). */
export interface ReadyPayload {
  sessionId: string;
  deviceId: string;
  userId: string;
  heartbeat: { interval: number; min: number; max: number; ttl: number; recommended?: number };
  serverTime: number;
}

export interface Notification<T = unknown> {
  id: string;
  data: T;
  title?: string;
  body?: string;
  topic?: string;
  collapseKey?: string;
  createdAt: number;
  expiresAt?: number;
}

export interface ErrorReply {
  ok: false;
  error: { code: string; message: string; topics?: string[] };
}

export type HeartbeatReply = { ok: true; interval: number; ttl: number; serverTime: number } | ErrorReply;
export type TopicsReply = { ok: true; topics: string[] } | ErrorReply;
