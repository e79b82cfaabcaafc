import { ProxyError, upstreamFailed, upstreamOverloaded } from './errors.js';
import { header } from './exchange.js';
import type { UpstreamResponse } from './upstreams/http.js';

/** Retry-After sent with an upstream 429, 503 or 529 that came without one. */
export const UPSTREAM_RETRY_AFTER_SECONDS = 5;

/** The statuses by which providers say "overloaded, back off and retry": Anthropic's 529, everyone's 503. */
const OVERLOADED = new Set([503, 529]);

/** A Retry-After worth passing on: delay-seconds or an HTTP date, nothing that could smuggle anything else. */
const RETRY_AFTER = /^[0-9A-Za-z ,:+-]{1,64}$/;

/**
 * How an upstream error status is answered, for every endpoint alike (metered or not):
 * - 401/403 concern the operator's provider credential: our 502, so nothing about it leaks;
 * - 503 and 529 (overloaded) keep their status — SDKs and tools back off on them, a 502 changes what they do —
 *   with our own body in the endpoint's format (`overloaded_error` for Anthropic), x-should-retry and Retry-After;
 * - any other 5xx, or an error body we could not read: our 502;
 * - null: a 4xx the client should see as the provider sent it (relayed with `passedErrorHeaders`).
 */
export function upstreamErrorAnswer(upstream: UpstreamResponse, body: Buffer | null): ProxyError | null {
  const status = upstream.statusCode;
  if (status === 401 || status === 403) return credentialRefused();
  if (OVERLOADED.has(status)) return upstreamOverloaded(status, retryAfterOf(upstream));
  if (status >= 500 || !body) return upstreamFailed(false);
  return null;
}

/** Retry headers of a passed-through upstream 4xx: a 429 always carries a Retry-After (the upstream's, or ours). */
export function passedErrorHeaders(upstream: UpstreamResponse): Record<string, string> {
  const headers: Record<string, string> = {};
  const retryAfter = header(upstream, 'retry-after');
  if (upstream.statusCode === 429) headers['retry-after'] = retryAfterOf(upstream);
  else if (retryAfter && RETRY_AFTER.test(retryAfter)) headers['retry-after'] = retryAfter;
  const shouldRetry = header(upstream, 'x-should-retry');
  if (shouldRetry === 'true' || shouldRetry === 'false') headers['x-should-retry'] = shouldRetry;
  return headers;
}

function retryAfterOf(upstream: UpstreamResponse): string {
  const value = header(upstream, 'retry-after')?.trim();
  return value && RETRY_AFTER.test(value) ? value : String(UPSTREAM_RETRY_AFTER_SECONDS);
}

export const credentialRefused = () =>
  new ProxyError(502, 'upstream_error', 'The upstream provider refused ModelBridge’s credentials; the operator must check the provider API key. Nothing was charged.');
