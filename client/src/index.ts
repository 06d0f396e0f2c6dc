export { createPushClient, PushClient, FAILED_BEATS_FOR_DEAD_LINK, REFRESH_LEAD_MS, refreshDelay } from './push-client';
export type { PushClientOptions, PushClientEvents, PushClientError, NotificationContext, ClientState, TokenSource } from './push-client';
export { HeartbeatTuner, SUCCESSES_TO_GROW, GROWTH_FACTOR, REPROBE_AFTER_MS } from './heartbeat-tuner';
export type { HeartbeatBounds, NetworkState } from './heartbeat-tuner';
export { Backoff, RECONNECT_BASE_MS, RECONNECT_MAX_MS } from './backoff';
export { DedupeWindow } from './dedupe';
export { memoryStorage, localStorageStorage } from './storage';
export type { IntervalStorage } from './storage';
export type { ReadyPayload, Notification, HeartbeatReply, TopicsReply, AuthReply, SessionEnded, SessionEndReason } from './protocol';
