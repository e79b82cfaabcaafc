import type { Request, RequestHandler, Response } from 'express';
import type { CatalogListing } from '../domain/models/models.service.js';
import { microToAud } from '../domain/money.js';
import { isModelAllowed } from '../domain/keys/controls.js';
import { lookUpKey, readApiKey } from './authenticate.js';
import type { ProxyContext } from './context.js';
import { modelNotFound, sendJson, sendProxyError } from './errors.js';
import type { ApiFormat } from './upstreams/types.js';

/** GET routes answer in Anthropic's format when the client says it speaks it (the Anthropic SDKs always do). */
export function formatOf(req: Request): ApiFormat {
  return req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
}

/**
 * GET /v1/models: the names clients may ask for — every enabled entry's id and its aliases — in the OpenAI list
 * format; Anthropic clients get the Anthropic list of those they can call on /v1/messages. Dated snapshots
 * (`<id>-YYYYMMDD`) are served but not listed. Needs a key (revoked and expired keys are refused), but no balance.
 */
export function listModels(ctx: ProxyContext): RequestHandler {
  return async (req: Request, res: Response) => {
    const format = formatOf(req);
    try {
      const key = await lookUpKey(ctx.metering, readApiKey(req));
      // Only what this key may call (its allow-list, narrowed by its team's).
      const models = (await ctx.models.list()).filter((m) => m.enabled && isModelAllowed(m.id, key.mayCall));
      const names = (m: CatalogListing) => [m.id, ...m.aliases];
      if (format === 'anthropic') {
        const data = models.filter((m) => m.provider === 'anthropic').flatMap((m) => names(m).map((id) => ({
          type: 'model', id, display_name: m.id, created_at: '2025-01-01T00:00:00Z',
        })));
        return sendJson(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
      }
      sendJson(res, 200, {
        object: 'list',
        data: models.flatMap((m) => names(m).map((id) => ({ id, object: 'model', created: 0, owned_by: m.provider }))),
      });
    } catch (err) {
      sendProxyError(res, format, err, ctx.logger);
    }
  };
}

/** GET /v1/models/<id>: one enabled catalog model in the OpenAI format (ids may contain slashes). */
export function getModel(ctx: ProxyContext): RequestHandler {
  return async (req: Request, res: Response) => {
    const format = formatOf(req);
    try {
      await lookUpKey(ctx.metering, readApiKey(req));
      const segments = (req.params as { id?: string[] }).id ?? [];
      const id = segments.join('/');
      const model = id.length <= 200 ? await ctx.models.lookup(id) : null;
      if (!model || !model.enabled) throw modelNotFound(id);
      if (format === 'anthropic') return sendJson(res, 200, { type: 'model', id: model.id, display_name: model.id, created_at: '2025-01-01T00:00:00Z' });
      sendJson(res, 200, { id: model.id, object: 'model', created: 0, owned_by: model.provider });
    } catch (err) {
      sendProxyError(res, format, err, ctx.logger);
    }
  };
}

/**
 * GET /v1/key: the calling key's own status, spend, limit and expiry, so a tool or script can check its budget.
 * Works for a key that reached its limit (that is when it is most wanted); revoked and expired keys get 401.
 * Amounts are AUD decimal strings, like the rest of the API.
 */
export function keyStatus(ctx: ProxyContext): RequestHandler {
  return async (req: Request, res: Response) => {
    try {
      const key = await lookUpKey(ctx.metering, readApiKey(req));
      const limit = key.spendLimitMicro;
      const rotateBy = await ctx.metering.rotateBy(key);
      sendJson(res, 200, {
        object: 'api_key',
        id: key.id,
        name: key.name,
        last4: key.last4,
        status: key.status,
        currency: 'AUD',
        spend_aud: microToAud(key.spendMicro),
        limit_aud: limit === null ? null : microToAud(limit),
        limit_reset: key.limitReset,
        period_spend_aud: key.limitReset ? microToAud(key.periodSpendMicro) : null,
        next_reset_at: key.nextResetAt?.toISOString() ?? null,
        remaining_aud: limit === null ? null : microToAud(Math.max(0, limit - key.periodSpendMicro)),
        allowed_models: key.mayCall,
        rate_limits: { rpm: key.rpmLimit, tpm: key.tpmLimit, max_parallel: key.maxParallel },
        tags: key.tags,
        held_aud: microToAud(key.heldMicro),
        request_count: key.requestCount,
        team_id: key.teamId,
        expires_at: key.expiresAt?.toISOString() ?? null,
        rotate_by: rotateBy?.toISOString() ?? null,
        auto_rotate: key.autoRotate,
        created_at: key.createdAt.toISOString(),
        last_used_at: key.lastUsedAt?.toISOString() ?? null,
      });
    } catch (err) {
      sendProxyError(res, formatOf(req), err, ctx.logger);
    }
  };
}
