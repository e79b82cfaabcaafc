import type { Request, RequestHandler, Response } from 'express';
import { upstreamModelFor } from '../domain/models/models.service.js';
import { lookUpKey, readApiKey } from './authenticate.js';
import { readJsonBody } from './body.js';
import type { ProxyContext } from './context.js';
import { COUNT_TOKENS_MAX_BODY_BYTES, ENDPOINTS } from './endpoints.js';
import { collect, header, MAX_ERROR_BODY_BYTES } from './exchange.js';
import { describeError, invalidRequest, modelNotFound, sendJson, sendProxyError, upstreamFailed } from './errors.js';
import { translatorFor } from './translate/index.js';
import { passedErrorHeaders, upstreamErrorAnswer } from './upstream-errors.js';
import { isUpstreamTimeout, type UpstreamResponse } from './upstreams/http.js';
import { PROVIDERS } from './upstreams/index.js';

/** Token counting answers quickly; a stuck upstream should not hold the client for the full request timeout. */
const COUNT_TIMEOUT_MS = 30_000;

/**
 * POST /v1/messages/count_tokens (Anthropic; Claude Code calls it): forwarded to the configured Anthropic upstream
 * and answered as it answers; for an OpenAI model (served on /v1/messages translated), counted here with its
 * tokenizer. Counting is free upstream, so nothing is held or charged; it still needs a usable
 * key (revoked and expired keys get 401), like every /v1 route, and a model of the catalog.
 */
export function countTokens(ctx: ProxyContext): RequestHandler {
  return async (req: Request, res: Response) => {
    try {
      const secret = readApiKey(req);
      PROVIDERS.anthropic.checkHeaders?.(req.headers);
      const key = lookUpKey(ctx.metering, secret);
      const body = await readJsonBody(req, COUNT_TOKENS_MAX_BODY_BYTES);
      await key;
      const id = body.json.model;
      if (typeof id !== 'string' || id.length === 0 || id.length > 200) throw invalidRequest('Invalid request: model: a model id is required.');
      if (!Array.isArray(body.json.messages)) throw invalidRequest('Invalid request: messages: an array is required.');
      const model = await ctx.models.lookup(id);
      if (!model || !model.enabled) throw modelNotFound(id);
      const upstreamModel = upstreamModelFor(model, id);
      body.json.model = upstreamModel;
      if (model.provider !== ENDPOINTS.messages.provider) {
        // A model of another provider, served on /v1/messages translated: counted here, as its upstream has no
        // counting endpoint (a parameter that cannot be translated is refused as /v1/messages would refuse it).
        const translator = translatorFor('messages', model.provider);
        if (!translator?.countInputTokens) throw invalidRequest(`The model '${model.id}' is served in the ${model.provider} format: token counting is for anthropic models.`);
        const { body: translated } = translator.request(body.json, { defaultMaxTokens: 0 });
        sendJson(res, 200, { input_tokens: await translator.countInputTokens(translated, upstreamModel) });
        return;
      }
      const target = ctx.upstreams.resolve('anthropic', req.socket);
      let upstream: UpstreamResponse;
      let answer: Buffer;
      try {
        upstream = await ctx.http.send(target, 'countTokens', {
          body: JSON.stringify(body.json),
          clientHeaders: req.headers,
          signal: AbortSignal.timeout(COUNT_TIMEOUT_MS),
        });
        answer = await collect(upstream.body, MAX_ERROR_BODY_BYTES);
      } catch (err) {
        ctx.logger.warn({ model: model.id, err: describeError(err) }, 'token counting upstream request failed');
        throw upstreamFailed(isUpstreamTimeout(err) || (err as Error).name === 'TimeoutError');
      }
      const status = upstream.statusCode;
      // As for metered requests (relayUpstreamError): the credential refused or a failing upstream is our 502,
      // overloaded keeps its status, a 4xx passes through with its retry headers.
      if (status >= 400) {
        const refusal = upstreamErrorAnswer(upstream, answer);
        if (refusal) {
          ctx.logger.warn({ model: model.id, status }, 'token counting upstream error');
          throw refusal;
        }
      }
      res.writeHead(status, {
        ...(status >= 400 ? passedErrorHeaders(upstream) : {}),
        'content-type': header(upstream, 'content-type') ?? 'application/json',
        'content-length': answer.length,
      });
      res.end(answer);
    } catch (err) {
      sendProxyError(res, 'anthropic', err, ctx.logger);
    }
  };
}
