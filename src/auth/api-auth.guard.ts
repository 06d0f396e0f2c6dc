import { CanActivate, ExecutionContext, HttpException, HttpStatus, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { addressKey, clientAddress, TrustFn, trustFn } from '../http/client-address';
import { MetricsService } from '../metrics/metrics.service';
import { ApiKeys, KeyCheck } from './api-keys';
import { AdmitDecision, FoldedAdmit, RateDecision, RateLimiter, RateRule } from './rate-limiter';

/** An API-key admission (ApiAuthGuard.foldable) waiting to be run with a store write, or alone. */
export interface PendingAdmission {
  /** For the store's write script to run first. */
  fold: FoldedAdmit;
  /** Runs it on its own, as canActivate does: throws 429 when refused. */
  alone(): Promise<void>;
  /** The 429 for a refusal the write's script answered (AdmissionRefused's decision). */
  refused(decision: AdmitDecision): HttpException;
}

export interface ApiRequest extends Request {
  /** A short, non-secret id of the key used, for rate limiting, idempotency and logs. */
  apiKeyId?: string;
  /** Which credential let the request in: an API key, or OPS_TOKEN on a route that takes it (OpsTokenReads). */
  credential?: 'api_key' | 'ops_token';
}

/** Metadata key: the route also accepts OPS_TOKEN (read-only operator access, see OpsTokenReads). */
export const OPS_TOKEN_READS = 'push-gateway:ops-token-reads';

/** The window failed authentications are counted in, per client address. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;

/**
 * Every /v1 request, in this order:
 * 1. a client address over API_AUTH_FAILURES_PER_MINUTE failed authentications gets 429 before
 *    its key is looked at, so guessing keys from there learns nothing (a right key included);
 * 2. a missing or wrong key is counted against its address and gets 401;
 * 3. the key's rate limit (API_RATE_LIMIT per API_RATE_WINDOW_MS, across routes and instances)
 *    is counted; over it, 429.
 * Both counts live in Redis when it is configured; when it cannot answer, the request fails with
 * 503 (StoreUnavailableError) rather than going through unlimited.
 */
@Injectable()
export class ApiAuthGuard implements CanActivate {
  private readonly keys: ApiKeys;
  private readonly opsToken?: ApiKeys;
  private readonly perKey: RateRule;
  private readonly failures: RateRule;
  private readonly trust: TrustFn;

  constructor(
    config: AppConfig,
    private readonly limiter: RateLimiter,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly reflector: Reflector,
  ) {
    this.keys = new ApiKeys(config.apiKeys);
    if (config.http.opsToken) this.opsToken = new ApiKeys([config.http.opsToken]);
    this.perKey = { name: 'api-key', limit: config.apiRateLimit, windowMs: config.apiRateWindowMs };
    this.failures = { name: 'auth-failures', limit: config.apiAuthFailuresPerMinute, windowMs: AUTH_FAILURE_WINDOW_MS };
    this.trust = trustFn(config.http.trustProxy);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<ApiRequest>();
    const response = http.getResponse<Response>();
    // The client as Express's req.ip sees it (TRUST_PROXY decides whether X-Forwarded-For counts),
    // the rule socket handshakes use too; an IPv6 client counts per /64.
    const address = addressKey(clientAddress(request, this.trust));
    const now = this.clock.now();

    // The key is looked at only after the address's block is read; identifying it is local and
    // cheap, so for a good key both limits are decided in one call (one Redis round trip).
    const key = this.identify(context, request);
    if (!key.ok) {
      const block = await this.limiter.check(this.failures, address, now);
      if (!block.allowed) throw this.tooMany(response, block, 'client_address', this.failureMessage());
      const counted = await this.limiter.hit(this.failures, address, now);
      // Racing requests from one address: never more than the limit of 401s per window.
      if (!counted.allowed) throw this.tooMany(response, counted, 'client_address', this.failureMessage());
      throw new UnauthorizedException(key.reason);
    }
    this.decided(request, response, key.keyId, await this.limiter.admit(this.failures, address, this.perKey, key.keyId, now));
    return true;
  }

  /**
   * For a route that writes to the store: canActivate's admission, to be folded into the write
   * (one Redis round trip fewer), for a request with a right API key when the limiter can fold
   * it; undefined otherwise, and the caller runs canActivate as usual. The request counts as
   * admitted (apiKeyId set) until the write says otherwise.
   */
  foldable(request: ApiRequest, response: Response): PendingAdmission | undefined {
    if (!this.limiter.folds) return undefined;
    const key = this.keys.identify(request.headers.authorization);
    if (!key.ok) return undefined;
    const address = addressKey(clientAddress(request, this.trust));
    const now = this.clock.now();
    const fold = this.limiter.fold(this.failures, address, this.perKey, key.keyId, now);
    request.credential = 'api_key';
    request.apiKeyId = key.keyId;
    return {
      fold,
      alone: async () => this.decided(request, response, key.keyId, await this.limiter.admit(this.failures, address, this.perKey, key.keyId, now)),
      refused: (decision) => this.refusal(request, response, decision),
    };
  }

  /** Applies an admission's decision: 429 when refused (by the address's block or the key's limit). */
  private decided(request: ApiRequest, response: Response, keyId: string, decision: AdmitDecision): void {
    if (decision.refusedBy !== 'gate') request.apiKeyId = keyId;
    if (!decision.allowed) throw this.refusal(request, response, decision);
  }

  private refusal(request: ApiRequest, response: Response, decision: AdmitDecision): HttpException {
    if (decision.refusedBy === 'gate') {
      request.apiKeyId = undefined;
      return this.tooMany(response, decision, 'client_address', this.failureMessage());
    }
    const { limit, windowMs } = this.perKey;
    return this.tooMany(response, decision, 'api_key', `rate limit of ${limit} requests per ${windowMs} ms for this API key exceeded`);
  }

  /**
   * The API key, or on an OpsTokenReads route OPS_TOKEN (counted against the per-key limit as a
   * key of its own). A wrong OPS_TOKEN is a failed authentication like a wrong key.
   */
  private identify(context: ExecutionContext, request: ApiRequest): KeyCheck {
    const key = this.keys.identify(request.headers.authorization);
    if (key.ok) {
      request.credential = 'api_key';
      return key;
    }
    const opsReads = this.reflector.getAllAndOverride<boolean>(OPS_TOKEN_READS, [context.getHandler(), context.getClass()]);
    if (!opsReads || !this.opsToken) return key;
    const ops = this.opsToken.identify(request.headers.authorization);
    if (!ops.ok) {
      const sent = /^Bearer\s+\S+$/i.test(request.headers.authorization ?? '');
      return { ok: false, reason: sent ? 'API key or OPS_TOKEN is not valid' : 'Authorization: Bearer <api key or OPS_TOKEN> is required' };
    }
    request.credential = 'ops_token';
    return { ok: true, keyId: `ops-${ops.keyId}` };
  }

  private failureMessage(): string {
    return `too many failed authentications from this address (at most ${this.failures.limit} per ${this.failures.windowMs} ms)`;
  }

  private tooMany(response: Response, decision: RateDecision, limit: 'api_key' | 'client_address', message: string): HttpException {
    this.metrics.rateLimited.inc({ limit });
    response.setHeader('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
    return new HttpException({ message }, HttpStatus.TOO_MANY_REQUESTS);
  }
}
