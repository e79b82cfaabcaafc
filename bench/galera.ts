// A bounded Galera scenario (not part of `npm run bench`): three ModelBridge instances in this process, instance i on
// node i of the 3-node cluster of test/galera/galera.sh (which must be up), against the same on the single MariaDB
// on :3306 (three instances on one server), in the same run. Prints one-in-flight latency, throughput on one hot key
// and over 100 keys, and the cluster's certification failures and brute-force aborts per 1,000 requests.
// Knobs: GALERA_BENCH_ONLY (a part of a scenario's label), GALERA_BENCH_REQUESTS (per load, default 1500), GALERA_BENCH_CONNECTIONS (24), GALERA_BENCH_LATENCY (300).
// Run: npx tsx bench/galera.ts
import knexFactory from 'knex';
import { makeKey, makeUser } from '../test/support/factories.js';
import { NODE_PORTS, STANDALONE_PORT } from '../test/galera/cluster.js';
import { request, startCluster, tally } from '../test/galera/support.js';
import { expectInvariantsOnEveryNode } from '../test/galera/support.js';

const requests = Number(process.env.GALERA_BENCH_REQUESTS ?? 1500);
const connections = Number(process.env.GALERA_BENCH_CONNECTIONS ?? 24);
const latencyCount = Number(process.env.GALERA_BENCH_LATENCY ?? 300);

async function wsrepCounters(ports: readonly number[]): Promise<number> {
  let total = 0;
  for (const port of new Set(ports)) {
    const k = knexFactory({ client: 'mysql2', connection: { host: '127.0.0.1', port, user: 'root', password: '' } });
    const [rows] = await k.raw("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')");
    total += (rows as Array<{ Value: string }>).reduce((s, r) => s + Number(r.Value), 0);
    await k.destroy();
  }
  return total;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function scenario(label: string, ports: readonly number[]) {
  const k = await startCluster({ ports });
  try {
    const owner = await makeUser(k.apps[0]!.services, { prepaidMicro: 900_000_000 });
    const hot = (await makeKey(k.apps[0]!.services, owner)).secret;
    const many = await Promise.all(Array.from({ length: 100 }, async (_, i) => (await makeKey(k.apps[i % 3]!.services, owner, { name: `k${i}` })).secret));

    const lat: number[] = [];
    for (let i = 0; i < latencyCount; i++) {
      const t0 = performance.now();
      await request(k.apps[i % 3]!.url, hot, 0);
      lat.push(performance.now() - t0);
    }
    const load = async (secretOf: (i: number) => string) => {
      const before = await wsrepCounters(ports);
      let next = 0;
      const statuses: number[] = [];
      const t0 = performance.now();
      await Promise.all(Array.from({ length: connections }, async () => {
        for (let i = next++; i < requests; i = next++) statuses.push(await request(k.apps[i % 3]!.url, secretOf(i), 0));
      }));
      const seconds = (performance.now() - t0) / 1000;
      const aborts = (await wsrepCounters(ports)) - before;
      return { rps: Math.round(requests / seconds), statuses: tally(statuses), abortsPer1000: Math.round((aborts / requests) * 10_000) / 10 };
    };
    const hotLoad = await load(() => hot);
    const spread = await load((i) => many[i % 100]!);
    await expectInvariantsOnEveryNode(k.c);
    console.log(JSON.stringify({
      label, latencyMs: { p50: +pct(lat, 0.5).toFixed(2), p99: +pct(lat, 0.99).toFixed(2) }, connections, requests, hotKey: hotLoad, hundredKeys: spread,
    }));
  } finally {
    await k.close();
  }
}

const only = process.env.GALERA_BENCH_ONLY;
const scenarios: Array<[string, readonly number[]]> = [
  ['single MariaDB :3306, three instances', [STANDALONE_PORT, STANDALONE_PORT, STANDALONE_PORT]],
  ['Galera 3 nodes, one instance per node', NODE_PORTS],
  ['Galera 3 nodes, all three instances writing to node 1', [NODE_PORTS[0], NODE_PORTS[0], NODE_PORTS[0]]],
];
for (const [label, ports] of scenarios) if (!only || label.includes(only)) await scenario(label, ports);
process.exit(0);
