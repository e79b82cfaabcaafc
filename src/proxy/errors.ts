import type { Response } from 'express';
import { isDatabaseUnavailable } from '../db/errors.js';
import { MeteringRefusal, type RefusalReason } from '../domain/billing/refusal.js';
import type { RateStatus } from '../domain/keys/controls.js';
import { echo, MESSAGE_MAX } from '../http/echo.js';
import type { Logger } from '../logger.js';
import type { ApiFormat, TokenUsage } from './upstreams/types.js';

/** Codes of the proxy's own errors (the refusals of authentication and admission are MeteringRefusal reasons). */
export type ProxyErrorCode =
  | 'invalid_request'
  | 'request_too_large'
  | 'model_not_found'
  | 'response_not_found'
  | 'unknown_url'
  | 'upstream_error'
  | 'upstream_overloaded'
  | 'service_unavailable'
  | 'internal_error';

/** A refusal decided by the proxy itself: bad input, unknown model, an upstream that failed. */
export class ProxyError extends Error {
  constructor(
    readonly status: number,
    readonly code: ProxyErrorCode,
    message: string,
    /** `Retry-After` of the answer (seconds or an HTTP date), when retrying later can help. */
    readonly retryAfter?: string,
  ) {
    super(message);
    this.name = 'ProxyError';
  }
}

export const invalidRequest = (message: string) => new ProxyError(400, 'invalid_request', message);


export const requestTooLarge = (limitBytes: number) =>
  new ProxyError(413, 'request_too_large', `The request body is larger than ${Math.round(limitBytes / 1_048_576)} MB.`);
export const modelNotFound = (model: string) =>
  new ProxyError(404, 'model_not_found', `The model '${echo(model)}' does not exist or is not enabled on this ModelBridge.`);
/**
 * A stored response the caller may not see: not created through ModelBridge, or by another account. Both read the
 * same, so an id of someone else's response is not confirmed to exist.
 */
export const responseNotFound = (id: string) =>
  new ProxyError(404, 'response_not_found', `No response with id '${echo(id)}' was found for this API key's account.`);
/** The header's value is not quoted back (header values can carry credentials): only what is accepted. */
export const unsupportedEncoding = () =>
  new ProxyError(415, 'invalid_request', 'This Content-Encoding is not supported; send JSON plain or with gzip, deflate or br.');
/** `Unknown request URL: GET /v1/…` with the path (never the query string) capped. */
export const unknownUrl = (method: string, originalUrl: string, advice = '') =>
  new ProxyError(404, 'unknown_url', `Unknown request URL: ${method} ${echo(originalUrl.split('?')[0]!)}.${advice ? ` ${advice}` : ''}`);
export const upstreamFailed = (timeout: boolean) =>
  timeout
    ? new ProxyError(504, 'upstream_error', 'The upstream provider did not answer in time. Nothing was charged.')
    : new ProxyError(502, 'upstream_error', 'The upstream provider could not be reached or failed. Nothing was charged.');
/** The text of the error event that ends a stream the upstream broke: what was charged for it, if anything. */
export function upstreamFailedMidStream(timeout: boolean, charged: TokenUsage): string {
  const what = timeout ? 'The upstream stopped answering mid-stream' : 'The upstream failed mid-stream';
  if (charged.inputTokens === 0 && charged.outputTokens === 0) return `${what}. Nothing was charged.`;
  return `${what}; you were charged for what you received: ${charged.inputTokens} input and ${charged.outputTokens} output tokens.`;
}
/** An upstream that says it is overloaded (503, 529): its status, retryable, never a 502 (which SDKs treat apart). */
export const upstreamOverloaded = (status: number, retryAfter: string) =>
  new ProxyError(status, 'upstream_overloaded', 'The upstream provider is overloaded right now. Nothing was charged; retry shortly.', retryAfter);
export const serviceUnavailable = () =>
  new ProxyError(503, 'service_unavailable', 'ModelBridge cannot reach its database right now. Nothing was charged; retry shortly.');

/** Retry-After of a 503 service_unavailable: about how long the database deadlines take to notice it is back. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;
/**
 * Retry-After of a 429 spend_limit_reached. It lifts only when someone raises the limit (x-should-retry: false, so
 * the SDKs do not retry at all); a client that retries on Retry-After alone should at least not hammer.
 */
const LIMIT_REACHED_RETRY_AFTER_SECONDS = 60;

interface Shape {
  status: number;
  /** `type` in an OpenAI error body. */
  openai: string;
  /** `error.type` in an Anthropic error body. */
  anthropic: string;
  /** false: retrying the same request cannot succeed, so the official SDKs must not (x-should-retry: false). */
  retry: boolean;
}

const REFUSALS: Record<RefusalReason, Shape> = {
  invalid_api_key: { status: 401, openai: 'invalid_request_error', anthropic: 'authentication_error', retry: false },
  key_revoked: { status: 401, openai: 'invalid_request_error', anthropic: 'authentication_error', retry: false },
  key_expired: { status: 401, openai: 'invalid_request_error', anthropic: 'authentication_error', retry: false },
  spend_limit_reached: { status: 429, openai: 'insufficient_quota', anthropic: 'rate_limit_error', retry: false },
  spend_limit_pending: { status: 429, openai: 'rate_limit_error', anthropic: 'rate_limit_error', retry: true },
  insufficient_balance: { status: 402, openai: 'insufficient_quota', anthropic: 'billing_error', retry: false },
  key_disabled: { status: 401, openai: 'invalid_request_error', anthropic: 'authentication_error', retry: false },
  model_not_allowed: { status: 403, openai: 'invalid_request_error', anthropic: 'permission_error', retry: false },
  rate_limit_exceeded: { status: 429, openai: 'rate_limit_error', anthropic: 'rate_limit_error', retry: true },
  member_budget_reached: { status: 429, openai: 'insufficient_quota', anthropic: 'rate_limit_error', retry: false },
};

const PROXY_ERRORS: Record<ProxyErrorCode, Omit<Shape, 'status'>> = {
  invalid_request: { openai: 'invalid_request_error', anthropic: 'invalid_request_error', retry: false },
  request_too_large: { openai: 'invalid_request_error', anthropic: 'request_too_large', retry: false },
  model_not_found: { openai: 'invalid_request_error', anthropic: 'not_found_error', retry: false },
  response_not_found: { openai: 'invalid_request_error', anthropic: 'not_found_error', retry: false },
  unknown_url: { openai: 'invalid_request_error', anthropic: 'not_found_error', retry: false },
  upstream_error: { openai: 'server_error', anthropic: 'api_error', retry: true },
  upstream_overloaded: { openai: 'server_error', anthropic: 'overloaded_error', retry: true },
  // Anthropic's "temporarily unable to serve, back off and retry" type.
  service_unavailable: { openai: 'server_error', anthropic: 'overloaded_error', retry: true },
  internal_error: { openai: 'server_error', anthropic: 'api_error', retry: true },
};

/**
 * THE place where a refusal or failure becomes an HTTP response, in the endpoint's own error format. Messages are
 * written by us and never contain the key. Anything unexpected is logged (without request data) and answered 500.
 */
/** Answers a refused or failed request in the endpoint's format; returns the status and code it answered with. */
export function sendProxyError(res: Response, format: ApiFormat, err: unknown, logger: Logger): { status: number; code: string } {
  let status: number;
  let code: string;
  let shape: Omit<Shape, 'status'>;
  let message: string;
  const headers: Record<string, string> = {};
  // A database that does not answer (in time) is no fault of the request: 503, retry later.
  if (isDatabaseUnavailable(err)) {
    logger.warn({ err: describeError(err) }, 'proxy request refused: database unavailable');
    err = serviceUnavailable();
  }
  if (err instanceof MeteringRefusal) {
    ({ status, ...shape } = REFUSALS[err.reason]);
    code = err.reason;
    message = err.message;
    if (err.details.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.details.retryAfterSeconds);
    else if (err.reason === 'spend_limit_reached') headers['retry-after'] = String(LIMIT_REACHED_RETRY_AFTER_SECONDS);
    if (err.details.resetsAt) headers['x-modelbridge-limit-resets-at'] = err.details.resetsAt.toISOString();
    if (err.details.rate) Object.assign(headers, rateLimitHeaders(err.details.rate));
  } else if (err instanceof ProxyError) {
    status = err.status;
    code = err.code;
    shape = PROXY_ERRORS[err.code];
    message = err.message;
    if (err.retryAfter !== undefined) headers['retry-after'] = err.retryAfter;
    else if (err.code === 'service_unavailable') headers['retry-after'] = String(UNAVAILABLE_RETRY_AFTER_SECONDS);
  } else if (isClientHttpError(err)) {
    // Express's own 4xx (a path parameter that is not valid percent-encoding is a URIError with status 400).
    ({ status, code, message } = { status: err.status, code: 'invalid_request', message: err instanceof URIError ? 'The request URL is not valid percent-encoding.' : 'The request could not be read.' });
    shape = PROXY_ERRORS.invalid_request;
  } else {
    logger.error({ err: describeError(err) }, 'proxy request failed unexpectedly');
    status = 500;
    code = 'internal_error';
    shape = PROXY_ERRORS.internal_error;
    message = 'ModelBridge could not process this request. Retry shortly.';
  }
  if (status === 504 && format === 'anthropic') shape = { ...shape, anthropic: 'timeout_error' };
  headers['x-should-retry'] = String(shape.retry);
  if (message.length > MESSAGE_MAX) message = `${message.slice(0, MESSAGE_MAX)}…`;
  if (res.headersSent) {
    res.destroy();
    return { status, code };
  }
  const body = format === 'anthropic'
    ? { type: 'error', error: { type: shape.anthropic, message } }
    : { error: { message, type: shape.openai, code, param: null } };
  sendJson(res, status, body, headers);
  return { status, code };
}

/**
 * OpenAI's x-ratelimit-* headers for a key's rate status: limits and what is left of them, and when the window
 * resets as a duration ("12s", "1m0s" style, as OpenAI sends it). Only the limits the key has are sent.
 */
export function rateLimitHeaders(rate: RateStatus): Record<string, string> {
  const headers: Record<string, string> = {};
  const reset = `${rate.resetSeconds}s`;
  if (rate.limits.rpmLimit !== null && rate.remainingRequests !== null) {
    headers['x-ratelimit-limit-requests'] = String(rate.limits.rpmLimit);
    headers['x-ratelimit-remaining-requests'] = String(rate.remainingRequests);
    headers['x-ratelimit-reset-requests'] = reset;
  }
  if (rate.limits.tpmLimit !== null && rate.remainingTokens !== null) {
    headers['x-ratelimit-limit-tokens'] = String(rate.limits.tpmLimit);
    headers['x-ratelimit-remaining-tokens'] = String(rate.remainingTokens);
    headers['x-ratelimit-reset-tokens'] = reset;
  }
  return headers;
}

function isClientHttpError(err: unknown): err is Error & { status: number } {
  const status = (err as { status?: unknown } | null)?.status;
  return err instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}

export function sendJson(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

/** An error for a log line: its kind and message, never the request it came from (which may hold a key). */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & { code?: unknown; errno?: unknown };
  return { name: e.name, message: e.message.slice(0, 500), code: e.code, errno: e.errno };
}
