import type { Request } from 'express';
import { hashSecret, isWellFormedSecret } from '../auth/secret-format.js';
import { MeteringRefusal } from '../domain/billing/refusal.js';
import type { AuthenticatedKey, KeyIdentity, MeteringService } from '../domain/billing/metering.service.js';

/**
 * The API key of a /v1 request, from `Authorization: Bearer` (OpenAI SDKs, most tools) or `x-api-key` (Anthropic
 * tools). Only proxy keys (`mbk_`) with a valid checksum get this far: a management token, a session cookie or a
 * mistyped key is refused here, before any database lookup. Messages never repeat what was sent.
 *
 * A client may send both headers: Claude Code does when both ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN are set,
 * and only one of them is then for us. The key is taken from whichever header carries a well-formed ModelBridge
 * key; two different ones are refused, since either choice could charge the wrong key.
 */
export function readApiKey(req: Request): string {
  const authorization = req.headers.authorization;
  const bearer = authorization === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  const header = req.headers['x-api-key'];
  const apiKey = typeof header === 'string' ? header.trim() : undefined;
  const keys = new Set([bearer, apiKey].filter((s): s is string => !!s && isWellFormedSecret(s, 'mbk_')));
  if (keys.size > 1) throw new MeteringRefusal('invalid_api_key', 'Two different API keys were sent ("Authorization" and "x-api-key"); send one ModelBridge key.');
  const [secret] = keys;
  if (secret) return secret;
  throw new MeteringRefusal('invalid_api_key', authorization === undefined && !apiKey
    ? 'No API key provided. Send your ModelBridge key as "Authorization: Bearer <key>" or "x-api-key: <key>".'
    : 'Incorrect API key provided.');
}

/**
 * Looks the key up in the database, for the endpoints that do not go through admission (/v1/key, /v1/models,
 * count_tokens), so revocation and expiry apply to the very next request, on every instance. The lookup starts at
 * once; the promise is marked handled so the caller may await it later (after reading the body) without an
 * unhandled rejection in between.
 */
export function lookUpKey(metering: MeteringService, secret: string): Promise<AuthenticatedKey> {
  const lookup = metering.authenticate(hashSecret(secret));
  lookup.catch(() => undefined);
  return lookup;
}

/**
 * Who the key is, for a request that goes on to admission (MeteringService.identify: from memory when known —
 * admission re-checks everything that can change under the key's row lock). Marked handled like lookUpKey.
 */
export function identifyKey(metering: MeteringService, secret: string): Promise<KeyIdentity> {
  const lookup = metering.identify(hashSecret(secret));
  lookup.catch(() => undefined);
  return lookup;
}
