import OpenAI from 'openai';
import { expect } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import type { TestDb } from '../support/db.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { createClusterDb, type ClusterDb } from './cluster.js';

/** Three ModelBridge instances, instance i on node i+1 of a fresh schema, all on one fake upstream. */
export interface Cluster {
  c: ClusterDb;
  fake: FakeUpstream;
  apps: TestApp[];
  close(): Promise<void>;
}

export async function startCluster(options: { poolMax?: number; ports?: readonly number[] } = {}): Promise<Cluster> {
  const c = await createClusterDb(options);
  const fake = await startFakeUpstream();
  const apps: TestApp[] = [];
  for (const [i, db] of c.nodes.entries()) {
    const testDb: TestDb = { db, url: c.url(i), sqlitePath: undefined, another: () => c.another(i), destroy: async () => undefined };
    apps.push(await startTestApp({ testDb, env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' } }));
  }
  return {
    c, fake, apps,
    async close() {
      await Promise.allSettled(apps.map((a) => a.close()));
      await fake.close();
      await c.destroy();
    },
  };
}

export const bodyOf = (i: number) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `request ${i} ${'x'.repeat(i % 5)}` }], max_tokens: 8 });

/** One chat request (odd i streamed) through `baseUrl`; its HTTP status, or -1 when there was none. */
export async function request(baseUrl: string, secret: string, i: number): Promise<number> {
  const client = new OpenAI({ apiKey: secret, baseURL: `${baseUrl}/v1`, maxRetries: 0, timeout: 30_000 });
  try {
    if (i % 2) for await (const _ of await client.chat.completions.create({ ...bodyOf(i), stream: true })) { /* drain */ }
    else await client.chat.completions.create(bodyOf(i));
    return 200;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

/** The ledger invariants, read through every node (each node must hold the same, consistent books). */
export async function expectInvariantsOnEveryNode(c: ClusterDb): Promise<void> {
  for (const db of c.nodes) await expectMeteringInvariants(db);
}

/** Counts of statuses, for failure messages. */
export function tally(statuses: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

export const expectOnly = (statuses: number[], allowed: number[]) =>
  expect(statuses.filter((s) => !allowed.includes(s)), JSON.stringify(tally(statuses))).toEqual([]);
