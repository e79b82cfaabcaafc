import request from 'supertest';
import type { TestApp } from './app.js';
import { NO_TOKENS, type TokenUsage } from '../../src/domain/models/pricing.js';

/**
 * A browser-like client for the portal: keeps the session cookie, sends a same-origin Origin header on every
 * state change (as browsers do), and can log in through the real form.
 */
export interface PortalClient {
  get(path: string, headers?: Record<string, string>): request.Test;
  post(path: string, form?: Record<string, string>, headers?: Record<string, string>): request.Test;
  cookie: string | null;
}

export function portalClient(app: TestApp, cookie: string | null = null): PortalClient {
  const client: PortalClient = {
    cookie,
    get(path, headers = {}) {
      const r = request(app.url).get(path).set(headers);
      return client.cookie ? r.set('Cookie', client.cookie) : r;
    },
    post(path, form = {}, headers = {}) {
      let r = request(app.url).post(path).type('form').set('Origin', app.url).set(headers);
      if (client.cookie) r = r.set('Cookie', client.cookie);
      return r.send(form);
    },
  };
  return client;
}

/** Signs in through POST /login and returns a client carrying the new session cookie. */
export async function signIn(app: TestApp, email: string, password: string): Promise<PortalClient> {
  const res = await portalClient(app).post('/login', { email, password });
  if (res.status !== 303) throw new Error(`sign-in failed: ${res.status}`);
  return portalClient(app, sessionCookieOf(res));
}

export function sessionCookieOf(res: request.Response): string {
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const session = cookies.find((c) => c.startsWith('mb_session=') && !c.startsWith('mb_session=;'));
  if (!session) throw new Error('no session cookie in the response');
  return session.split(';')[0]!;
}

export const htmx = { 'HX-Request': 'true' };

/** The token counts among recordUsage's options (the model name left out). */
function tokensOf({ model: _model, ...tokens }: { model?: string } & Partial<TokenUsage>): Partial<TokenUsage> {
  return tokens;
}

/** Records one metered request for a key straight through the metering service (no proxy, no upstream). */
export async function recordUsage(
  services: TestApp['services'],
  keyId: string,
  costMicro: number,
  options: { model?: string } & Partial<TokenUsage> = {},
): Promise<void> {
  const requestId = `req_${Math.random().toString(36).slice(2)}${Date.now()}`;
  const hold = await services.metering.admit({
    requestId, keyId, estimateMicro: costMicro, model: options.model ?? 'gpt-4o-mini', provider: 'openai',
    endpoint: 'chat.completions', streamed: false,
  });
  await services.metering.settle(hold, {
    ...NO_TOKENS, inputTokens: 10, outputTokens: 20, ...tokensOf(options), costMicro, outcome: 'ok',
    estimated: false, httpStatus: 200, latencyMs: 42,
  });
}
