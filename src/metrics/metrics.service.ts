import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The gateway's Prometheus metrics, on a registry of its own so tests and several apps don't clash. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly connectedDevices = new Gauge({
    name: 'push_gateway_connected_devices',
    help: 'Devices with a live socket on this instance',
    registers: [this.registry],
  });
  readonly connections = new Counter({
    name: 'push_gateway_connections_total',
    help: 'Socket handshakes by result (accepted, refused) and reason (token problems, unavailable, origin, handshake_rate)',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });
  readonly httpConnectionsDropped = new Counter({
    name: 'push_gateway_http_connections_dropped_total',
    help: 'TCP connections closed on arrival because the process held MAX_CONNECTIONS',
    registers: [this.registry],
  });
  readonly heartbeats = new Counter({
    name: 'push_gateway_heartbeats_total',
    help: 'Heartbeats by result (ok, invalid, expired, replaced, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly presenceExpired = new Counter({
    name: 'push_gateway_presence_expired_total',
    help: 'Sessions removed by the sweeper because their presence TTL ran out',
    registers: [this.registry],
  });
  readonly sessionsReplaced = new Counter({
    name: 'push_gateway_sessions_replaced_total',
    help: 'Sessions closed because the same device connected again',
    registers: [this.registry],
  });
  readonly tokensExpired = new Counter({
    name: 'push_gateway_tokens_expired_total',
    help: 'Sessions ended because their device token ran out more than TOKEN_EXPIRY_GRACE_MS ago',
    registers: [this.registry],
  });
  readonly tokenRefreshes = new Counter({
    name: 'push_gateway_token_refreshes_total',
    help: 'auth events (token refreshes) by result (ok, or the error code)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly pushesSent = new Counter({
    name: 'push_gateway_pushes_sent_total',
    help: 'Notifications emitted to a device socket',
    registers: [this.registry],
  });
  readonly pushesAcked = new Counter({
    name: 'push_gateway_pushes_acked_total',
    help: 'Notifications acknowledged by the device',
    registers: [this.registry],
  });
  readonly pushesUnacked = new Counter({
    name: 'push_gateway_pushes_unacked_total',
    help: 'Notifications not acknowledged within ACK_TIMEOUT_MS',
    registers: [this.registry],
  });
  readonly pushFallbacks = new Counter({
    name: 'push_gateway_push_fallbacks_total',
    help: 'Native pushes of the fallback policy by trigger (offline, unacked), provider (none without a registration), status (sent, failed, no_target) and reason (gone, rejected, unavailable, not_configured; none otherwise)',
    labelNames: ['trigger', 'provider', 'status', 'reason'] as const,
    registers: [this.registry],
  });
  readonly deadlineSweeps = new Counter({
    name: 'push_gateway_notification_deadline_sweeps_total',
    help: 'Claims of due notification deadlines (ack, ttl, native push leases) this instance ran',
    registers: [this.registry],
  });
  readonly dueClaimed = new Counter({
    name: 'push_gateway_notification_deadlines_total',
    help: 'Deadlines of the due-time index fired by this instance, by kind (unacked: notification.unacked recorded; expired: notification.expired ttl recorded)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly pushesRedelivered = new Counter({
    name: 'push_gateway_pushes_redelivered_total',
    help: 'Notifications sent from a device inbox: pending ones when it connected, or held back while its socket was full',
    registers: [this.registry],
  });
  readonly socketsFull = new Counter({
    name: 'push_gateway_socket_full_total',
    help: 'Times sending to a socket paused because it held SOCKET_MAX_BUFFERED_BYTES (the rest waits in its inbox)',
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'push_gateway_slow_consumers_total',
    help: 'Sessions ended because the socket stayed full (SOCKET_MAX_BUFFERED_BYTES) past SLOW_CONSUMER_GRACE_MS',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'push_gateway_rate_limited_total',
    help: 'Requests and socket events refused by a rate limit: api_key (API_RATE_LIMIT), client_address (failed authentications), socket_events (SOCKET_EVENTS_PER_SECOND)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly rateLimitedSockets = new Counter({
    name: 'push_gateway_rate_limited_sockets_total',
    help: 'Sessions ended because the socket stayed over SOCKET_EVENTS_PER_SECOND for 5 seconds in a row',
    registers: [this.registry],
  });
  readonly notifications = new Counter({
    name: 'push_gateway_notifications_total',
    help: 'POST /v1/notifications outcomes (accepted, replayed by Idempotency-Key, conflict)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly queued = new Counter({
    name: 'push_gateway_notifications_queued_total',
    help: 'Targets stored for a device that was offline (ttl > 0)',
    registers: [this.registry],
  });
  readonly inboxEvicted = new Counter({
    name: 'push_gateway_inbox_evicted_total',
    help: 'Pending notifications dropped because a device inbox reached INBOX_MAX_SIZE',
    registers: [this.registry],
  });
  readonly restShed = new Counter({
    name: 'push_gateway_rest_shed_total',
    help: 'REST requests answered 503 because the process was behind on heartbeats (LOAD_SHED_DELAY_MS)',
    registers: [this.registry],
  });
  readonly redisReconnects = new Counter({
    name: 'push_gateway_redis_reconnects_total',
    help: 'Redis connections rebuilt by the watchdog after unanswered probes',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  readonly webhooksDelivered = new Counter({
    name: 'push_gateway_webhook_delivered_total',
    help: 'Events a webhook URL answered with a 2xx',
    labelNames: ['url'] as const,
    registers: [this.registry],
  });
  readonly webhookFailures = new Counter({
    name: 'push_gateway_webhook_failed_attempts_total',
    help: 'Webhook attempts that failed, by reason (the status code, timeout, or error for no answer)',
    labelNames: ['url', 'reason'] as const,
    registers: [this.registry],
  });
  readonly webhooksDropped = new Counter({
    name: 'push_gateway_webhook_dropped_total',
    help: 'Events given up after WEBHOOK_RETRY_HOURS of failed attempts',
    labelNames: ['url'] as const,
    registers: [this.registry],
  });
  readonly webhookBacklogAge = new Gauge({
    name: 'push_gateway_webhook_backlog_age_seconds',
    help: 'Age of the oldest event not yet delivered to a webhook URL (0 when none waits)',
    labelNames: ['url'] as const,
    registers: [this.registry],
  });
  readonly webhookDisabled = new Gauge({
    name: 'push_gateway_webhook_disabled',
    help: '1 while a webhook URL is disabled because it answered 410 (until the gateway is next started)',
    labelNames: ['url'] as const,
    registers: [this.registry],
  });
  readonly ackLatency = new Histogram({
    name: 'push_gateway_push_ack_seconds',
    help: 'Time from emitting a notification to its ack',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly sweepDuration = new Histogram({
    name: 'push_gateway_sweep_seconds',
    help: 'Duration of one presence sweep',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly nativePushes = new Counter({
    name: 'push_gateway_native_pushes_total',
    help: 'Native pushes (Web Push, APNs, FCM) by provider and final result (sent, gone, rejected, unavailable, not_configured)',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });
  readonly nativePushAttempts = new Counter({
    name: 'push_gateway_native_push_attempts_total',
    help: 'Requests to a native push provider by provider and result (sent, gone, rejected, retry)',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });

  constructor() {
    // The event-loop lag histogram samples with a timer: prom-client's default 10 ms woke the
    // process 100 times a second for it alone (1.6 % of a core with nothing connected, and one
    // loop turn in ten at 1k POST/s); every 100 ms still gives a scrape hundreds of samples.
    collectDefaultMetrics({ register: this.registry, prefix: 'push_gateway_', eventLoopMonitoringPrecision: 100 });
  }
}
