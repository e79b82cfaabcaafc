import type { Request } from 'express';
import { hashSecret, isWellFormedSecret } from '../auth/secret-format.js';
import { MeteringRefusal } from '../domain/billing/refusal.js';
import type { ApiKey } from '../domain/keys/key.js';
import type { KeyIdentity, MeteringService } from '../domain/billing/metering.service.js';

/**
 * The API key of a /v1 request, from `Authorization: Bearer` (OpenAI SDKs, most tools) or `x-api-key` (Anthropic
 * tools). Only proxy keys (`mbk_`) with a valid checksum get this far: a management token, a session cookie or a
 * mistyped key is refused here, before any database lookup. Messages never repeat what was sent.
 */
export function readApiKey(req: Request): string {
  const authorization = req.headers.authorization;
  let secret: string | undefined;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    secret = match?.[1];
  } else {
    const header = req.headers['x-api-key'];
    secret = typeof header === 'string' ? header.trim() : undefined;
  }
  if (!secret) {
    throw new MeteringRefusal('invalid_api_key', authorization === undefined
      ? 'No API key provided. Send your ModelBridge key as "Authorization: Bearer <key>" or "x-api-key: <key>".'
      : 'Incorrect API key provided.');
  }
  if (!isWellFormedSecret(secret, 'mbk_')) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
  return secret;
}

/**
 * Looks the key up in the database, for the endpoints that do not go through admission (/v1/key, /v1/models,
 * count_tokens), so revocation and expiry apply to the very next request, on every instance. The lookup starts at
 * once; the promise is marked handled so the caller may await it later (after reading the body) without an
 * unhandled rejection in between.
 */
export function lookUpKey(metering: MeteringService, secret: string): Promise<ApiKey> {
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
