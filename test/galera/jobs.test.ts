import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { JOB_NAMES } from '../../src/jobs/job.js';
import { admit, countRows, jobInstance } from '../support/jobs.js';
import { makeKey, makeUser } from '../support/factories.js';
import { createClusterDb, type ClusterDb } from './cluster.js';
import { expectInvariantsOnEveryNode } from './support.js';

describe('two instances on two Galera nodes running every job at the same time', () => {
  let c: ClusterDb;
  beforeAll(async () => {
    c = await createClusterDb();
  });
  afterAll(async () => c?.destroy());

  it('makes each change once: the job_locks lease and the jobs’ own guards hold across nodes', async () => {
    const clock = new ManualClock('2026-11-26T00:00:00.000Z');
    const a = jobInstance(c.nodes[0]!, clock);
    const b = jobInstance(c.nodes[1]!, clock);
    const owner = await makeUser(a.services, { prepaidMicro: 50_000_000 });
    const keys = [];
    for (let i = 0; i < 20; i++) keys.push((await makeKey(a.services, owner, { expiresAt: new Date(clock.now().getTime() + 3_600_000), name: `k${i}` })).key);
    // Holds of requests whose instances died: the release-holds job gives them back.
    for (const key of keys.slice(0, 10)) await admit(b.services, key.id, 1_000);
    expect(await countRows(c.nodes[2]!, 'holds')).toBe(10);
    clock.advance(2 * 3_600_000);

    const runs = [];
    for (let round = 0; round < 5; round++)
      runs.push(...(await Promise.all(JOB_NAMES.flatMap((name) => [a.run(name), b.run(name)]))));

    expect(runs.filter((r) => r.result === 'failed'), JSON.stringify(runs.filter((r) => r.result === 'failed'))).toEqual([]);
    for (const node of c.nodes) {
      expect(await countRows(node, 'holds')).toBe(0);
      expect(await countRows(node, 'api_keys', { status: 'expired' })).toBe(20);
      const expiries = await node('audit_events').where({ action: 'key.expire' }).select('target_id');
      expect(expiries).toHaveLength(20);
      expect(new Set(expiries.map((e) => e.target_id)).size).toBe(20);
    }
    await expectInvariantsOnEveryNode(c);
  });
});
