import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/domain/clock.js';
import { jobInstance } from '../support/jobs.js';
import { toMicro } from '../../src/domain/money.js';
import { makeKey, makeUser } from '../support/factories.js';
import { galera, nodePid } from './cluster.js';
import { expectInvariantsOnEveryNode, expectOnly, request, startCluster, tally, type Cluster } from './support.js';

const waitFor = async (check: () => Promise<boolean>, ms: number) => {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('a Galera node killed with -9 under load', () => {
  let k: Cluster;
  beforeAll(async () => {
    k = await startCluster();
  });
  afterAll(async () => {
    galera('up'); // whatever happened, leave three nodes for the next file
    await k?.close();
  });

  it('survivors serve on after the stall, nothing is lost, the node rejoins, the books agree on all three', async () => {
    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 50_000_000 });
    const { key, secret } = await makeKey(k.apps[0]!.services, owner);
    const started = Date.now();
    const killAt = 2_000;
    const loadMs = 22_000;
    const results: Array<{ at: number; status: number; ms: number }> = [];
    // 8 clients in a loop on each of the instances on nodes 1 and 2.
    const client = async (app: number, i: number) => {
      while (Date.now() - started < loadMs) {
        const t0 = Date.now();
        const status = await request(k.apps[app]!.url, secret, i);
        results.push({ at: t0 - started, status, ms: Date.now() - t0 });
      }
    };
    const load = Promise.all([0, 1].flatMap((app) => Array.from({ length: 8 }, (_, i) => client(app, i))));
    await new Promise((r) => setTimeout(r, killAt));
    process.kill(nodePid(3), 'SIGKILL');
    await load;

    const statuses = results.map((r) => r.status);
    // During the stall a request may get a fast 503 (the database did not answer within its deadline); never more.
    expectOnly(statuses, [200, 503]);
    // The stall (5–6 s until the cluster drops the node; longer on a loaded machine: 10 s was seen overrun), then the
    // backlog commits: from 15 s on, every request succeeds.
    const after = results.filter((r) => r.at > killAt + 15_000);
    expect(after.length).toBeGreaterThan(0);
    // …but for the few 503s a hot row written through two nodes gets anyway (its retries run out on certification
    // conflicts: ~1.5 % measured without any kill, docs/operations.md).
    expectOnly(after.map((r) => r.status), [200, 503]);
    expect(after.filter((r) => r.status === 503).length).toBeLessThanOrEqual(Math.ceil(after.length * 0.03));
    console.log(`node kill: ${JSON.stringify(tally(statuses))}; slowest ${Math.max(...results.map((r) => r.ms))} ms;` +
      ` 503s between ${Math.min(...results.filter((r) => r.status === 503).map((r) => r.at))} and ${Math.max(...results.filter((r) => r.status === 503).map((r) => r.at))} ms`);

    // Nothing lost: every request the upstream served is a usage event and a charge (settlements still being retried
    // finish first).
    await waitFor(async () => k.apps.every((a) => a.services.metering.settlements.pending === 0), 30_000);
    // An admission whose commit was stalled past its query deadline answered 503 and may still have committed once the
    // cluster dropped the node (src/db/deadlines.ts): a hold nobody tracks. The release job frees it once its
    // deadline has passed — here a clock past every deadline, now that no request is in flight.
    expect(k.apps.every((a) => a.services.metering.liveHolds === 0)).toBe(true);
    const late = new ManualClock(new Date(Date.now() + 24 * 3_600_000));
    expect((await jobInstance(k.c.nodes[0]!, late).run('release-holds')).result).toBe('ok');
    expect(toMicro((await k.c.nodes[0]!('api_keys').where({ id: key.id }).first()).held_micro)).toBe(0);
    const events = await k.c.nodes[0]!('usage_events').where({ key_id: key.id });
    const served = events.filter((e) => e.outcome !== 'abandoned');
    console.log(`node kill: ${events.length - served.length} orphaned admissions released as abandoned`);
    expect(served).toHaveLength(k.fake.served);
    expect(events.filter((e) => e.outcome === 'abandoned').every((e) => toMicro(e.cost_micro) === 0)).toBe(true);
    expect(statuses.filter((s) => s === 200)).toHaveLength(k.fake.served);

    const rejoin = Date.now();
    galera('up');
    console.log(`node 3 rejoined in ${Date.now() - rejoin} ms`);
    // Instance 3's pool reconnects by itself.
    await waitFor(async () => (await request(k.apps[2]!.url, secret, 0)) === 200, 20_000);
    await expectInvariantsOnEveryNode(k.c);
    expect((await k.c.nodes[2]!('usage_events').where({ key_id: key.id }).whereNot({ outcome: 'abandoned' })).length).toBe(k.fake.served);
  });
});

describe('a ModelBridge instance killed with -9 mid-load', () => {
  let k: Cluster;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    k = await startCluster();
  });
  afterAll(async () => {
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL'); // only our process group; gone already when the test ran
    } catch { /* already gone */ }
    await k?.close();
  });

  it('leaves the others serving, and its holds are released by the job on another node: the books agree', async () => {
    const port = await freePort();
    // A real process (its own process group, so the kill takes tsx and node together) on node 3.
    child = spawn(path.join('node_modules', '.bin', 'tsx'), ['src/cli.ts', 'serve'], {
      detached: true, stdio: 'ignore',
      env: {
        ...process.env, DATABASE_URL: k.c.url(2), HOST: '127.0.0.1', PORT: String(port), MODELBRIDGE_JOBS: '0', LOG_LEVEL: 'silent',
        OPENAI_BASE_URL: k.fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', MODELBRIDGE_HOLD_TTL_SECONDS: '2',
      },
    });
    const childUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${childUrl}/healthz`).catch(() => null))?.status === 200, 60_000);

    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 50_000_000 });
    const { key, secret } = await makeKey(k.apps[0]!.services, owner);
    const started = Date.now();
    const survivor: number[] = [];
    const client = async (url: string, out: number[] | null, i: number) => {
      while (Date.now() - started < 6_000) {
        const status = await request(url, secret, i);
        out?.push(status);
      }
    };
    const load = Promise.all([
      ...Array.from({ length: 8 }, (_, i) => client(k.apps[0]!.url, survivor, i)),
      ...Array.from({ length: 8 }, (_, i) => client(childUrl, null, i)),
    ]);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(-child.pid!, 'SIGKILL');
    await load;
    expectOnly(survivor, [200]);

    // The dead instance's holds run out (2 s) and the release job, on node 1, settles them as abandoned.
    await new Promise((r) => setTimeout(r, 2_500));
    const jobs = jobInstance(k.c.nodes[0]!, systemClock);
    expect((await jobs.run('release-holds')).result).toBe('ok');
    for (const node of k.c.nodes) {
      expect(Number((await node('holds').where({ key_id: key.id }).count({ n: '*' }).first())?.n)).toBe(0);
      expect(toMicro((await node('api_keys').where({ id: key.id }).first()).held_micro)).toBe(0);
    }
    const ok = await k.c.nodes[1]!('usage_events').where({ key_id: key.id, outcome: 'ok' }).count({ n: '*' }).first();
    expect(Number(ok?.n)).toBeGreaterThanOrEqual(survivor.length);
    await expectInvariantsOnEveryNode(k.c);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
