import http from 'node:http';
import https from 'node:https';

export interface AttemptResult {
  /** The answer's status; undefined when there was none (refused, reset, timed out). */
  status?: number;
  retryAfter?: string;
  /** Why there was no answer. */
  error?: string;
}

/**
 * POSTs webhook bodies over kept-alive connections (a new TLS handshake per event would cap the
 * rate well below what a receiver can take). The whole attempt, from connect to the end of the
 * answer, is bounded by `timeoutMs`; the answer's body is read and discarded.
 */
export class WebhookSender {
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(maxSockets: number) {
    this.agents = { http: new http.Agent({ keepAlive: true, maxSockets }), https: new https.Agent({ keepAlive: true, maxSockets }) };
  }

  post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<AttemptResult> {
    const secure = url.protocol === 'https:';
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const request = (secure ? https : http).request(
        url,
        {
          method: 'POST',
          agent: secure ? this.agents.https : this.agents.http,
          headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const retryAfter = response.headers['retry-after'];
          response.on('error', () => finish({ error: 'answer interrupted' }));
          response.on('end', () => finish({ status: response.statusCode, retryAfter }));
          response.resume();
        },
      );
      const timer = setTimeout(() => {
        request.destroy();
        finish({ error: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      request.on('error', (err) => finish({ error: err.message }));
      request.end(body);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
