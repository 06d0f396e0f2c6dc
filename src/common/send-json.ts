import type { ServerResponse } from 'node:http';

/**
 * A JSON answer written with Node's own response methods: what Express's `res.json` sends, without
 * its ETag (a hash of the body, for caching answers that are never cached), and usable on a
 * response that has no Express methods (the front path, src/http/fast-publish.ts).
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}
