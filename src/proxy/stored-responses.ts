import type { Request, RequestHandler, Response } from 'express';
import { lookUpKey, readApiKey } from './authenticate.js';
import type { ProxyContext } from './context.js';
import { responseNotFound, sendProxyError, upstreamFailed } from './errors.js';
import { collect, header, MAX_ERROR_BODY_BYTES } from './exchange.js';
import { passedErrorHeaders, upstreamErrorAnswer } from './upstream-errors.js';
import { isUpstreamTimeout, type UpstreamResponse } from './upstreams/http.js';

export type StoredResponseAction = 'retrieve' | 'delete' | 'inputItems';

/** A stored response (with its input items) is a few MB at most; a larger answer is not ours to relay whole. */
const MAX_STORED_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Query parameters these endpoints take (OpenAI API reference): `include`, and list paging for input_items. */
const PASSED_QUERY = new Set(['include', 'include[]', 'after', 'before', 'limit', 'order']);

/**
 * GET /v1/responses/{id}, DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items. Stored responses live in
 * the operator's upstream account, where the operator's credential reads any of them, so a request is forwarded
 * only for a response its key's own account created through ModelBridge (StoredResponsesService.findFor); any
 * other id is a 404 in the OpenAI format and never reaches the upstream. Not metered: the provider charges nothing
 * for these. A revoked or expired key (or one whose owner is disabled) is refused as everywhere; a key at its spend
 * limit may still read.
 */
export function storedResponse(ctx: ProxyContext, action: StoredResponseAction): RequestHandler {
  return async function handleStoredResponse(req: Request, res: Response): Promise<void> {
    try {
      const key = await lookUpKey(ctx.metering, readApiKey(req));
      const id = String(req.params.id);
      const stored = await ctx.storedResponses.findFor(id, key);
      if (!stored) throw responseNotFound(id);
      const target = ctx.upstreams.resolve('openai', req.socket);
      const abort = new AbortController();
      res.once('close', () => abort.abort());
      let upstream: UpstreamResponse;
      try {
        upstream = await ctx.http.call(target, {
          method: action === 'delete' ? 'DELETE' : 'GET',
          path: `/responses/${encodeURIComponent(stored.responseId)}${action === 'inputItems' ? '/input_items' : ''}${passedQuery(req)}`,
          clientHeaders: req.headers,
          signal: abort.signal,
        });
      } catch (err) {
        throw upstreamFailed(isUpstreamTimeout(err));
      }
      await relay(ctx, res, upstream, action === 'delete' ? () => ctx.storedResponses.forget(stored.responseId) : null);
    } catch (err) {
      sendProxyError(res, 'openai', err, ctx.logger);
    }
  };
}

async function relay(ctx: ProxyContext, res: Response, upstream: UpstreamResponse, onSuccess: (() => Promise<void>) | null): Promise<void> {
  const status = upstream.statusCode;
  let body: Buffer | null;
  try {
    body = await collect(upstream.body, status >= 400 ? MAX_ERROR_BODY_BYTES : MAX_STORED_RESPONSE_BYTES);
  } catch (err) {
    if (status < 400) throw upstreamFailed(isUpstreamTimeout(err));
    body = null;
  }
  if (status >= 400) {
    const answer = upstreamErrorAnswer(upstream, body);
    if (status === 401 || status === 403) ctx.logger.error({ provider: 'openai', status }, 'the upstream provider refused the configured credential');
    if (answer || !body) throw answer ?? upstreamFailed(false);
  } else if (onSuccess) await onSuccess();
  if (!body) throw upstreamFailed(false);
  const passed: Record<string, string> = status >= 400 ? passedErrorHeaders(upstream) : {};
  const requestId = header(upstream, 'x-request-id');
  if (requestId) passed['x-request-id'] = requestId;
  res.writeHead(status, { ...passed, 'content-type': header(upstream, 'content-type') ?? 'application/json', 'content-length': body.length });
  res.end(body);
}

/** The client's query, keeping only the parameters these endpoints take, re-encoded. */
function passedQuery(req: Request): string {
  const at = req.originalUrl.indexOf('?');
  if (at < 0) return '';
  const kept = new URLSearchParams();
  for (const [name, value] of new URLSearchParams(req.originalUrl.slice(at + 1))) if (PASSED_QUERY.has(name)) kept.append(name, value);
  const query = kept.toString();
  return query ? `?${query}` : '';
}
