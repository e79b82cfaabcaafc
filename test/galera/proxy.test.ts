import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { actorOf, makeKey, makeTeam, makeUser } from '../support/factories.js';
import { bodyOf, expectInvariantsOnEveryNode, expectOnly, request, startCluster, tally, type Cluster } from './support.js';

describe('three instances on three Galera nodes', () => {
  let k: Cluster;
  let mini: CatalogModel;
  beforeAll(async () => {
    k = await startCluster();
    mini = (await k.apps[0]!.services.models.find('gpt-4o-mini'))!;
  });
  beforeEach(() => k.fake.reset());
  afterEach(async () => expectInvariantsOnEveryNode(k.c));
  afterAll(async () => k?.close());

  const maxCost = () => Math.max(...Array.from({ length: 10 }, (_, i) => requestCost(mini, k.fake.expectedUsage(bodyOf(i)))));
  const chargedEvents = async (where: Record<string, string>) => {
    const events = await k.c.nodes[2]!('usage_events').where(where);
    expect(events.every((e) => e.outcome === 'ok')).toBe(true);
    return events.filter((e) => toMicro(e.cost_micro) > 0);
  };
  /** Waves of n concurrent requests, request i through instance i mod 3, until `done`; every status seen. */
  const spread = async (n: number, secret: string | ((i: number) => string), done: () => Promise<boolean>) => {
    const statuses: number[] = [];
    for (let wave = 0; wave < 10 && !(await done()); wave++)
      statuses.push(...(await Promise.all(Array.from({ length: n }, (_, i) => request(k.apps[i % 3]!.url, typeof secret === 'string' ? secret : secret(i), i)))));
    return statuses;
  };

  it('holds one hot key to its limit plus one request with 200 concurrent requests over three nodes', async () => {
    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 50_000_000 });
    const limit = 150;
    const { key, secret } = await makeKey(k.apps[0]!.services, owner, { spendLimitMicro: limit });
    const statuses = await spread(200, secret, async () => (await k.c.nodes[2]!('api_keys').where({ id: key.id }).first()).status === 'limit_reached');

    const final = await k.c.nodes[1]!('api_keys').where({ id: key.id }).first();
    expect(final.status).toBe('limit_reached');
    const spend = toMicro(final.spend_micro);
    expect(spend).toBeGreaterThanOrEqual(limit);
    expect(spend).toBeLessThanOrEqual(limit + maxCost());
    // Three instances on three nodes fail certification against each other on the key's row; the retries keep the
    // books exact, and a request whose retries run out (2 s) gets a 503: 1.5 % to 9 % of them here, depending on
    // the machine's load (docs/benchmarks.md; write to one node to have none). Never a 500, never an overspend.
    expectOnly(statuses, [200, 429, 503]);
    console.log(`hot key over three nodes: ${JSON.stringify(tally(statuses))}`);
    const charged = await chargedEvents({ key_id: key.id });
    expect(k.fake.served).toBe(charged.length);
    expect(statuses.filter((s) => s === 200)).toHaveLength(charged.length);
  });

  it('holds a team balance shared by keys used on different nodes to zero minus at most one request', async () => {
    const owner = await makeUser(k.apps[0]!.services);
    const team = await makeTeam(k.apps[0]!.services, owner, { balanceMicro: 200 });
    const secrets = await Promise.all([0, 1, 2].map(async (i) => (await makeKey(k.apps[i]!.services, owner, { teamId: team.id, name: `node ${i + 1}` })).secret));
    const balance0 = async () => toMicro((await k.c.nodes[1]!('teams').where({ id: team.id }).first()).balance_micro);
    const statuses = await spread(150, (i) => secrets[i % 3]!, async () => (await balance0()) <= 0);

    const balance = toMicro((await k.c.nodes[0]!('teams').where({ id: team.id }).first()).balance_micro);
    expect(balance).toBeLessThanOrEqual(0);
    expect(balance).toBeGreaterThanOrEqual(-maxCost());
    expectOnly(statuses, [200, 402, 429, 503]); // 503: retries that ran out, as on the hot key above
    expect(k.fake.served).toBe((await chargedEvents({ team_id: team.id })).length);
  });

  it('refuses a key revoked through node 1 on the very next request through node 3', async () => {
    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 5_000_000 });
    for (let round = 0; round < 20; round++) {
      const { key, secret } = await makeKey(k.apps[0]!.services, owner);
      // Node 3's instance has seen and remembered the key (its metering batch guesses its row).
      expect(await request(k.apps[2]!.url, secret, round * 2)).toBe(200);
      await k.apps[0]!.services.keys.revoke(key.id, owner.actor);
      const next = await new OpenAI({ apiKey: secret, baseURL: `${k.apps[2]!.url}/v1`, maxRetries: 0 }).chat.completions.create(bodyOf(0)).catch((e: unknown) => e);
      expect(next, `round ${round}`).toMatchObject({ status: 401 });
    }
  });

  it('shows a spend limit raised through node 2 to a request through node 1 at once', async () => {
    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 5_000_000 });
    const { key, secret } = await makeKey(k.apps[0]!.services, owner, { spendLimitMicro: 1 });
    expect(await request(k.apps[0]!.url, secret, 0)).toBe(200);
    expect(await request(k.apps[0]!.url, secret, 0)).toBe(429);
    await k.apps[1]!.services.keys.update(key.id, { spendLimitMicro: 10_000_000 }, actorOf(owner.user));
    expect(await request(k.apps[0]!.url, secret, 0)).toBe(200);
  });
});
