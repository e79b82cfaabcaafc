import { TRPCClientError } from '@trpc/client';
import { expect } from 'vitest';
import { createModelBridgeClient, type ModelBridgeClient } from '../../src/client.js';
import type { TestApp } from './app.js';
import type { TestUser } from './factories.js';

/** Helpers for the tRPC tests: typed clients with management tokens, browser-like sessions, raw HTTP calls. */

export async function tokenFor(app: TestApp, who: TestUser, options: { expiresAt?: Date } = {}): Promise<string> {
  return (await app.services.tokens.create({ name: 'test automation', expiresAt: options.expiresAt ?? null }, who.actor)).secret;
}

export async function clientFor(app: TestApp, who: TestUser): Promise<ModelBridgeClient> {
  return createModelBridgeClient({ url: app.url, token: await tokenFor(app, who) });
}

/** `Cookie:` header value of a fresh session, as the portal's login would set it. */
export async function sessionCookieFor(app: TestApp, who: TestUser): Promise<string> {
  const cookie = await app.deps.sessions.create(who.user.id, { ip: '127.0.0.1', userAgent: 'vitest' });
  return `${cookie.name}=${cookie.value}`;
}

export interface RawResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** One tRPC call over plain HTTP, the way curl or another language would make it (no client library). */
export async function rawCall(
  app: TestApp,
  type: 'query' | 'mutation',
  path: string,
  input: unknown,
  headers: Record<string, string> = {},
): Promise<RawResult> {
  const url = `${app.url}/trpc/${path}`;
  const res =
    type === 'query'
      ? await fetch(input === undefined ? url : `${url}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers })
      : await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: input === undefined ? undefined : JSON.stringify(input) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, text };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Asserts a typed-client call fails with this tRPC code (and so with its HTTP status). */
export async function expectTrpcError(promise: Promise<unknown>, code: string): Promise<TRPCClientError<any>> {
  const err = await promise.then(
    () => {
      throw new Error(`expected ${code}, but the call succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCClientError);
  const e = err as TRPCClientError<any>;
  expect(e.data?.code, e.message).toBe(code);
  return e;
}

/** A date `seconds` from the clock's now, as the API's ISO string. */
export const isoIn = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

/** Every procedure of the API with its type, from the router itself (so a new procedure is walked automatically). */
export async function allProcedures(): Promise<Array<{ path: string; type: 'query' | 'mutation' }>> {
  const { appRouter } = await import('../../src/trpc/router.js');
  return Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: { type: 'query' | 'mutation' } }>).map(([path, p]) => ({ path, type: p._def.type }));
}

let requestSeq = 0;
/** A settled usage event, written straight to the table (the proxy is another door; these tests only read). */
export async function insertUsageEvent(
  app: TestApp,
  key: { id: string; ownerId: string; teamId: string | null },
  e: { model?: string; provider?: string; costMicro?: number; inputTokens?: number; outputTokens?: number; cachedInputTokens?: number; reasoningTokens?: number; at?: Date } = {},
): Promise<void> {
  const at = e.at ?? app.services.clock.now();
  await app.t.db('usage_events').insert({
    request_id: `req_test_${Date.now()}_${++requestSeq}`,
    key_id: key.id,
    user_id: key.ownerId,
    team_id: key.teamId,
    model: e.model ?? 'gpt-4o-mini',
    provider: e.provider ?? 'openai',
    endpoint: 'chat.completions',
    input_tokens: e.inputTokens ?? 10,
    output_tokens: e.outputTokens ?? 5,
    cached_input_tokens: e.cachedInputTokens ?? 0,
    reasoning_tokens: e.reasoningTokens ?? 0,
    cost_micro: e.costMicro ?? 1000,
    included_micro: key.teamId ? 0 : (e.costMicro ?? 1000),
    prepaid_micro: 0,
    overage_micro: 0,
    team_micro: key.teamId ? (e.costMicro ?? 1000) : 0,
    outcome: 'ok',
    estimated: false,
    http_status: 200,
    latency_ms: 12,
    streamed: false,
    started_at: at,
    created_at: at,
  });
}
