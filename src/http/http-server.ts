import type { Server } from 'node:http';
import type { HttpSettings } from '../config/http-settings';

/**
 * Bounds what one client can hold on the HTTP listener. headersTimeout and requestTimeout end a
 * request whose headers or body trickle in (Node answers 408 and closes); they count until the
 * request is fully received, so Socket.IO's long-polling GETs, which the server itself holds open
 * until it has something to send, are not cut. keepAliveTimeout closes idle keep-alive
 * connections. Node checks the first two on a timer (30 s by default, armed at `listening`), so
 * it is set to check often enough that they hold to about a second. MAX_CONNECTIONS makes Node
 * close connections over the cap as they arrive (counted by `onDrop`).
 */
export function applyServerLimits(server: Server, http: HttpSettings, onDrop: () => void): void {
  server.headersTimeout = http.headersTimeoutMs;
  server.requestTimeout = http.requestTimeoutMs;
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  const checkEvery = Math.max(50, Math.min(1_000, Math.floor(Math.min(http.headersTimeoutMs, http.requestTimeoutMs) / 2)));
  Object.assign(server, { connectionsCheckingInterval: checkEvery });
  if (http.maxConnections > 0) server.maxConnections = http.maxConnections;
  server.on('drop', onDrop);
}
