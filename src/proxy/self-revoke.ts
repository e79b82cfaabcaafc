import type { Request, RequestHandler, Response } from 'express';
import { MeteringRefusal } from '../domain/billing/refusal.js';
import { readApiKey } from './authenticate.js';
import type { ProxyContext } from './context.js';
import { sendJson, sendProxyError } from './errors.js';
import { formatOf } from './info.js';

/**
 * POST /v1/key/revoke: the calling key revokes itself, for good (incident response: whoever finds a leaked key can
 * kill it without an account). The key is its own credential, read like on every /v1 route; no body is needed.
 * Idempotent: revoking a revoked key again answers the same 200 (holding the secret proves nothing new), so a
 * script may run twice. Every instance refuses the key from its very next request (see markKeyRevoked).
 */
export function revokeOwnKey(ctx: ProxyContext): RequestHandler {
  return async (req: Request, res: Response) => {
    const format = formatOf(req);
    try {
      const revoked = await ctx.leaks.selfRevoke(readApiKey(req), { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
      if (!revoked) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
      const revokedAt = revoked.revokedAt.toISOString();
      sendJson(res, 200, format === 'anthropic'
        ? { type: 'api_key', id: revoked.id, status: 'revoked', revoked_at: revokedAt }
        : { object: 'api_key', id: revoked.id, status: 'revoked', revoked: true, revoked_at: revokedAt });
    } catch (err) {
      sendProxyError(res, format, err, ctx.logger);
    }
  };
}
