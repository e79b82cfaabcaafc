import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from './app.js';
import { makeKey, makeUser } from './factories.js';
import { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from './fake-upstream.js';
import { expectMeteringInvariants } from './invariants.js';

export interface ProxyFixture {
  fake: FakeUpstream;
  app: TestApp;
  /** One user's key, and the official SDKs using it (no retries). */
  secret: string;
  keyId: string;
  openai: OpenAI;
  anthropic: Anthropic;
}

/**
 * The usual set-up of a proxy test file: a fake upstream for both providers, an app on it, a user with a prepaid
 * balance and one key, and the metering invariants checked after every test (and, with `nothingHeld`, that the key
 * holds nothing once its requests are over). Registers its own hooks; read the fields inside tests or hooks.
 */
export function proxyFixture(options: {
  fake?: FakeUpstreamOptions;
  env?: Record<string, string>;
  prepaidMicro?: number;
  spendLimitMicro?: number | null;
  nothingHeld?: boolean;
} = {}): ProxyFixture {
  const f = {} as ProxyFixture;
  beforeAll(async () => {
    f.fake = await startFakeUpstream(options.fake);
    f.app = await startTestApp({
      env: {
        OPENAI_BASE_URL: f.fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', ANTHROPIC_BASE_URL: f.fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-a',
        ...options.env,
      },
    });
    const owner = await makeUser(f.app.services, { prepaidMicro: options.prepaidMicro ?? 10_000_000 });
    const { key, secret } = await makeKey(f.app.services, owner, { spendLimitMicro: options.spendLimitMicro ?? null });
    Object.assign(f, { secret, keyId: key.id });
    f.openai = new OpenAI({ apiKey: secret, baseURL: `${f.app.url}/v1`, maxRetries: 0 });
    f.anthropic = new Anthropic({ apiKey: secret, baseURL: f.app.url, maxRetries: 0 });
  });
  beforeEach(() => f.fake.reset());
  afterEach(async () => {
    // Nothing is left held once a request is over, whatever happened to it.
    if (options.nothingHeld) expect(toMicro((await f.app.t.db('api_keys').where({ id: f.keyId }).first()).held_micro)).toBe(0);
    await expectMeteringInvariants(f.app.t.db);
  });
  afterAll(async () => {
    await f.app?.close();
    await f.fake?.close();
  });
  return f;
}
