import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startTestApp, type TestApp } from '../../support/app.js';
import { makeKey, makeUser } from '../../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../../support/fake-upstream.js';
import { expectMeteringInvariants } from '../../support/invariants.js';
import { expectBill, type BillSummary } from './bill.js';

export interface Tier {
  fake: FakeUpstream;
  app: TestApp;
  /** A user's ModelBridge key (mbk_…), with a prepaid balance that every test's requests fit in. */
  secret: string;
  /** ModelBridge's base URLs as each SDK takes them. */
  openaiBaseUrl: string;
  anthropicBaseUrl: string;
  /** The bill check over everything this test did (see expectBill). */
  expectBill(): Promise<BillSummary>;
}

/**
 * One SDK test file's set-up: a fake upstream of both providers on loopback, ModelBridge on it (a real server on
 * loopback with a fresh database), a user with a prepaid balance and one key. Before each test the fake and the
 * usage are cleared; after each, the metering invariants hold.
 */
export function clientTier(): Tier {
  const tier = {} as Tier;
  beforeAll(async () => {
    tier.fake = await startFakeUpstream();
    tier.app = await startTestApp({
      env: { OPENAI_BASE_URL: tier.fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-upstream-openai', ANTHROPIC_BASE_URL: tier.fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-upstream-anthropic' },
    });
    const owner = await makeUser(tier.app.services, { prepaidMicro: 100_000_000 });
    tier.secret = (await makeKey(tier.app.services, owner)).secret;
    tier.openaiBaseUrl = `${tier.app.url}/v1`;
    tier.anthropicBaseUrl = tier.app.url;
  });
  let since = 0;
  beforeEach(async () => {
    tier.fake.reset();
    const last = await tier.app.t.db('usage_events').max({ id: 'id' }).first();
    since = Number(last?.id ?? 0);
  });
  tier.expectBill = async () => expectBill(tier.app.t.db, tier.fake.requests, since);
  afterEach(async () => {
    await expectMeteringInvariants(tier.app.t.db);
  });
  afterAll(async () => {
    await tier.app?.close();
    await tier.fake?.close();
  });
  return tier;
}
