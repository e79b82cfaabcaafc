// `npm run bench`: ModelBridge (MySQL, metering on, jobs off) and the Portkey gateway side by side, against the same
// fake upstream on loopback, in one run. Writes raw results and a markdown summary to bench/results/.
// Knobs: BENCH_DURATION (s, default 10, for the direct load), BENCH_REQUESTS (requests per proxy load, default
// 20000: a fixed count, so every request is answered before the load ends and the counts compare exactly),
// BENCH_CONNECTIONS (32), BENCH_LATENCY_COUNT (2000),
// BENCH_DATABASE_URL (mysql://root@127.0.0.1:3306/modelbridge_bench — dropped and re-created), BENCH_SKIP_PEER=1,
// BENCH_LATENCY_ONLY=1 (only the one-in-flight scenarios: the floor, ModelBridge and Portkey, in ~1 minute).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkInvariants, seedBench, type BenchSeed } from './seed.js';
import type { LoadSpec } from './load.js';
import { freePort, killAll, track, waitForHttp } from './processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const durationSeconds = Number(process.env.BENCH_DURATION ?? 10);
const requestsPerLoad = Number(process.env.BENCH_REQUESTS ?? 20_000);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const latencyCount = Number(process.env.BENCH_LATENCY_COUNT ?? 2000);
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/modelbridge_bench';
const skipPeer = process.env.BENCH_SKIP_PEER === '1';
const latencyOnly = process.env.BENCH_LATENCY_ONLY === '1';
const UPSTREAM_KEY = 'sk-bench-upstream';
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 });
const STREAM_BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16, stream: true });


function runJson<T>(script: string, arg: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', script), JSON.stringify(arg)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as T) : reject(new Error(`${script} exited ${code}`))));
  });
}

interface FakeHandle {
  port: number;
  served(): Promise<number>;
}
async function startFake(): Promise<FakeHandle> {
  const child = track(fork(path.join(root, 'bench', 'fake-server.ts'), [], { execArgv: ['--import', 'tsx'], cwd: root }));
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    port,
    served: () =>
      new Promise((resolve) => {
        child.once('message', (m: { served: number }) => resolve(m.served));
        child.send('stats');
      }),
  };
}

/** A floor pass-through (bench/floor.ts) to the fake upstream: its port. */
async function startFloor(mode: 'bare' | 'durable', fakePort: number): Promise<number> {
  const arg = JSON.stringify({ mode, upstream: `http://127.0.0.1:${fakePort}`, databaseUrl });
  const child = track(fork(path.join(root, 'bench', 'floor.ts'), [arg], { execArgv: ['--import', 'tsx'], cwd: root }));
  return new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`floor (${mode}) exited ${code}`)));
  });
}

async function startModelBridge(port: number, fakePort: number): Promise<void> {
  track(
    spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        HOST: '127.0.0.1',
        PORT: String(port),
        OPENAI_BASE_URL: `http://127.0.0.1:${fakePort}/v1`,
        OPENAI_API_KEY: UPSTREAM_KEY,
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${fakePort}`,
        ANTHROPIC_API_KEY: UPSTREAM_KEY,
        MODELBRIDGE_JOBS: '0',
        // The bench reads the metering counters from /metrics, which is opt-in.
        METRICS_ALLOW: 'loopback',
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
      },
    }),
  );
  await waitForHttp(`http://127.0.0.1:${port}/healthz`);
}

async function startPeer(port: number): Promise<void> {
  const child = track(spawn(process.execPath, [path.join(root, 'bench', 'peer', 'start.mjs'), String(port)], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`peer exited ${code}; run npm --prefix bench/peer ci`)));
  });
}

interface LoadResult {
  requestsPerSecond: number;
  total: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number };
}
/** What the metering did during a scenario, from ModelBridge's own /metrics (this instance, since it started). */
interface MeteringCounters {
  admits: number;
  admitSeconds: number;
  settles: number;
  settleSeconds: number;
  oneRoundTrip: number;
  readThenWrite: number;
}
interface MeteringStats {
  transactions: number;
  oneRoundTrip: number;
  /** Admissions + settlements per transaction. */
  opsPerTransaction: number;
  admitMsAvg: number;
  settleMsAvg: number;
}

async function meteringCounters(base: string): Promise<MeteringCounters> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    admits: value(/^modelbridge_metering_duration_seconds_count\{phase="admit"\} (\S+)$/m),
    admitSeconds: value(/^modelbridge_metering_duration_seconds_sum\{phase="admit"\} (\S+)$/m),
    settles: value(/^modelbridge_metering_duration_seconds_count\{phase="settle"\} (\S+)$/m),
    settleSeconds: value(/^modelbridge_metering_duration_seconds_sum\{phase="settle"\} (\S+)$/m),
    oneRoundTrip: value(/^modelbridge_metering_transactions\{path="one_round_trip"\} (\S+)$/m),
    readThenWrite: value(/^modelbridge_metering_transactions\{path="read_then_write"\} (\S+)$/m),
  };
}

function meteringDelta(a: MeteringCounters, b: MeteringCounters): MeteringStats {
  const transactions = b.oneRoundTrip + b.readThenWrite - a.oneRoundTrip - a.readThenWrite;
  const ops = b.admits + b.settles - a.admits - a.settles;
  return {
    transactions,
    oneRoundTrip: b.oneRoundTrip - a.oneRoundTrip,
    opsPerTransaction: transactions ? ops / transactions : 0,
    admitMsAvg: b.admits > a.admits ? (1000 * (b.admitSeconds - a.admitSeconds)) / (b.admits - a.admits) : 0,
    settleMsAvg: b.settles > a.settles ? (1000 * (b.settleSeconds - a.settleSeconds)) / (b.settles - a.settles) : 0,
  };
}

interface LatencyResult {
  count: number;
  failures: number;
  ttfbUs: { p50: number; p90: number; p99: number };
  totalUs: { p50: number; p90: number; p99: number };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  console.error(`bench: ${durationSeconds}s per load, ${connections} connections, ${latencyCount} sequential requests for latency`);
  const fake = await startFake();
  const seed: BenchSeed = await seedBench(databaseUrl, 100);
  const mbPort = await freePort();
  await startModelBridge(mbPort, fake.port);
  const peerPort = await freePort();
  if (!skipPeer) await startPeer(peerPort);
  const bare = `http://127.0.0.1:${await startFloor('bare', fake.port)}/v1/chat/completions`;
  const durable = `http://127.0.0.1:${await startFloor('durable', fake.port)}/v1/chat/completions`;

  const direct = `http://127.0.0.1:${fake.port}/v1/chat/completions`;
  const mb = `http://127.0.0.1:${mbPort}/v1/chat/completions`;
  const peer = `http://127.0.0.1:${peerPort}/v1/chat/completions`;
  const json = { 'content-type': 'application/json' };
  const peerHeaders = { ...json, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${fake.port}/v1`, authorization: `Bearer ${UPSTREAM_KEY}` };
  const directHeaders = { ...json, authorization: `Bearer ${UPSTREAM_KEY}` };

  const loads: Record<string, LoadResult> = {};
  const checks: Record<string, unknown> = {};
  const metering: Record<string, MeteringStats> = {};
  const mbBase = `http://127.0.0.1:${mbPort}`;
  /** Runs a ModelBridge scenario and records what the metering did meanwhile. */
  async function metered<T>(name: string, run: () => Promise<T>): Promise<T> {
    const before = await meteringCounters(mbBase);
    const result = await run();
    metering[name] = meteringDelta(before, await meteringCounters(mbBase));
    return result;
  }
  const load = (url: string, headers: Record<string, string>, rotateBearer?: string[], byDuration = false) =>
    runJson<LoadResult>('load.ts', { url, connections, ...(byDuration ? { durationSeconds } : { amount: requestsPerLoad }), headers, body: BODY, rotateBearer } satisfies LoadSpec);

  // Warm every path once (JIT, pools) so the first measured scenario is not penalised.
  await runJson<LatencyResult>('latency.ts', { url: mb, headers: { ...json, authorization: `Bearer ${seed.hotKey}` }, body: BODY, count: 200, warmup: 50, stream: false });

  /** A ModelBridge scenario: the load, then the correctness check (a fast wrong answer does not count). */
  async function meteredLoad(name: string, headers: Record<string, string>, rotate?: string[]) {
    const servedBefore = await fake.served();
    const eventsBefore = await seed.countEvents();
    loads[name] = await metered(name, () => load(mb, headers, rotate));
    const eventsAfter = await seed.countEvents();
    const served = (await fake.served()) - servedBefore;
    const events = eventsAfter.total - eventsBefore.total;
    const okEvents = eventsAfter.ok - eventsBefore.ok;
    const ok2xx = loads[name]!.ok2xx;
    // A fast wrong answer does not count: every 200 the clients got is one charged usage event and one request
    // the upstream served, and nothing else was charged.
    const correct = ok2xx === requestsPerLoad && ok2xx === okEvents && okEvents === events && events === served;
    checks[name] = { correct, ok2xx, usageEvents: events, okEvents, upstreamServed: served, invariants: await checkInvariants(databaseUrl) };
  }

  if (!latencyOnly) {
    console.error('scenario: direct');
    loads.direct = await load(direct, directHeaders, undefined, true);
    // Each load is followed by the same load on keys with every control set (bench/seed.ts BENCH_CONTROLS), so the
    // pair shows what the controls cost.
    console.error('scenario: ModelBridge, 100 keys');
    await meteredLoad('modelbridge_100_keys', json, seed.keys);
    console.error('scenario: ModelBridge, 100 keys with every control');
    await meteredLoad('modelbridge_100_keys_controls', json, seed.controlledKeys);
    console.error('scenario: ModelBridge, one hot key');
    await meteredLoad('modelbridge_hot_key', { ...json, authorization: `Bearer ${seed.hotKey}` });
    console.error('scenario: ModelBridge, one hot key with every control');
    await meteredLoad('modelbridge_hot_key_controls', { ...json, authorization: `Bearer ${seed.controlledHotKey}` });
    if (!skipPeer) {
      console.error('scenario: Portkey');
      loads.portkey = await load(peer, peerHeaders);
    }
  }

  console.error('scenario: one request in flight');
  const latency: Record<string, LatencyResult> = {};
  const seq = (url: string, headers: Record<string, string>, stream: boolean) =>
    runJson<LatencyResult>('latency.ts', { url, headers, body: stream ? STREAM_BODY : BODY, count: latencyCount, warmup: 200, stream });
  latency.direct = await seq(direct, directHeaders, false);
  latency.floor_bare = await seq(bare, directHeaders, false);
  latency.floor_durable = await seq(durable, directHeaders, false);
  latency.modelbridge = await metered('one_in_flight', () => seq(mb, { ...json, authorization: `Bearer ${seed.hotKey}` }, false));
  if (!skipPeer) latency.portkey = await seq(peer, peerHeaders, false);
  console.error('scenario: streaming, one request in flight');
  latency.direct_stream = await seq(direct, directHeaders, true);
  latency.floor_bare_stream = await seq(bare, directHeaders, true);
  latency.floor_durable_stream = await seq(durable, directHeaders, true);
  latency.modelbridge_stream = await metered('one_in_flight_stream', () => seq(mb, { ...json, authorization: `Bearer ${seed.hotKey}` }, true));
  if (!skipPeer) latency.portkey_stream = await seq(peer, peerHeaders, true);
  checks.final = { invariants: await checkInvariants(databaseUrl) };

  const results = { startedAt, machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version }, durationSeconds, connections, loads, latency, metering, checks };
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(results, null, 2));
  const summary = renderSummary(results);
  fs.writeFileSync(path.join(dir, `${stamp}.md`), summary);
  fs.writeFileSync(path.join(dir, 'latest.md'), summary);
  process.stdout.write(summary);
  await seed.close();
}

function renderSummary(r: { loads: Record<string, LoadResult>; latency: Record<string, LatencyResult>; metering: Record<string, MeteringStats>; checks: Record<string, unknown>; machine: unknown; startedAt: Date }): string {
  const lines = [`# Benchmark ${r.startedAt.toISOString()}`, '', `machine: ${JSON.stringify(r.machine)}; ${connections} connections; ${requestsPerLoad} requests per proxy load, ${durationSeconds}s direct`, ''];
  lines.push('| load | req/s | p50 ms | p90 ms | p99 ms | 2xx | non-2xx | errors |', '|---|---|---|---|---|---|---|---|');
  for (const [name, l] of Object.entries(r.loads))
    lines.push(`| ${name} | ${l.requestsPerSecond.toFixed(0)} | ${l.latencyMs.p50} | ${l.latencyMs.p90} | ${l.latencyMs.p99} | ${l.ok2xx} | ${l.non2xx} | ${l.errors + l.timeouts} |`);
  const pk = r.loads.portkey?.requestsPerSecond;
  if (pk) {
    lines.push('', `ratio to Portkey: 100 keys ${(r.loads.modelbridge_100_keys!.requestsPerSecond / pk).toFixed(2)}×, hot key ${(r.loads.modelbridge_hot_key!.requestsPerSecond / pk).toFixed(2)}×`);
    lines.push(`with every key control set: 100 keys ${(r.loads.modelbridge_100_keys_controls!.requestsPerSecond / pk).toFixed(2)}×, hot key ${(r.loads.modelbridge_hot_key_controls!.requestsPerSecond / pk).toFixed(2)}×`);
  }
  const withControls = (name: string) => (r.loads[`${name}_controls`]!.requestsPerSecond / r.loads[name]!.requestsPerSecond).toFixed(2);
  if (r.loads.modelbridge_100_keys)
    lines.push('', `throughput with every key control set, relative to none: 100 keys ${withControls('modelbridge_100_keys')}×, hot key ${withControls('modelbridge_hot_key')}×`);
  lines.push('', '| one in flight | ttfb p50 µs | ttfb p99 µs | total p50 µs | total p90 µs | total p99 µs | failures |', '|---|---|---|---|---|---|---|');
  for (const [name, l] of Object.entries(r.latency))
    lines.push(`| ${name} | ${l.ttfbUs.p50.toFixed(0)} | ${l.ttfbUs.p99.toFixed(0)} | ${l.totalUs.p50.toFixed(0)} | ${l.totalUs.p90.toFixed(0)} | ${l.totalUs.p99.toFixed(0)} | ${l.failures} |`);
  const added = (a?: LatencyResult, b?: LatencyResult, f: 'ttfbUs' | 'totalUs' = 'totalUs') => (a && b ? `p50 +${(a[f].p50 - b[f].p50).toFixed(0)} µs, p99 +${(a[f].p99 - b[f].p99).toFixed(0)} µs` : 'n/a');
  lines.push('', `added latency, ModelBridge: ${added(r.latency.modelbridge, r.latency.direct)}; Portkey: ${added(r.latency.portkey, r.latency.direct)}`);
  lines.push(`added streaming time to first byte, ModelBridge: ${added(r.latency.modelbridge_stream, r.latency.direct_stream, 'ttfbUs')}; Portkey: ${added(r.latency.portkey_stream, r.latency.direct_stream, 'ttfbUs')}`);
  // The floor (bench/floor.ts): what a bare pass-through, and one with the least durable admission and settlement,
  // add in the same run; ModelBridge's added p50 as a multiple of the durable floor's.
  const p50Added = (name: string, base: string, f: 'ttfbUs' | 'totalUs') => r.latency[name]![f].p50 - r.latency[base]![f].p50;
  const floorLine = (suffix: string, f: 'ttfbUs' | 'totalUs', what: string) => {
    const floor = p50Added(`floor_durable${suffix}`, `direct${suffix}`, f);
    const ours = p50Added(`modelbridge${suffix}`, `direct${suffix}`, f);
    return `${what}: bare pass-through +${p50Added(`floor_bare${suffix}`, `direct${suffix}`, f).toFixed(0)} µs, durable floor +${floor.toFixed(0)} µs, ModelBridge +${ours.toFixed(0)} µs = ${(ours / floor).toFixed(2)}× the durable floor`;
  };
  if (r.latency.floor_durable && r.latency.floor_durable_stream) {
    lines.push('', floorLine('', 'totalUs', 'added p50 against the floor (JSON)'));
    lines.push(floorLine('_stream', 'ttfbUs', 'added p50 time to first byte against the floor (streaming)'));
  }
  lines.push('', '| metering during | transactions | one round trip | admissions + settlements per transaction | admit ms (avg) | settle ms (avg) |', '|---|---|---|---|---|---|');
  for (const [name, m] of Object.entries(r.metering))
    lines.push(`| ${name} | ${m.transactions} | ${m.oneRoundTrip} | ${m.opsPerTransaction.toFixed(1)} | ${m.admitMsAvg.toFixed(2)} | ${m.settleMsAvg.toFixed(2)} |`);
  lines.push('', '## Correctness', '', '```json', JSON.stringify(r.checks, null, 2), '```', '');
  return lines.join('\n');
}

// `npm run bench -- agents` (or BENCH_SCENARIO=agents): the agent load of bench/agents.ts instead.
const scenario = process.argv[2] ?? process.env.BENCH_SCENARIO;
if (scenario === 'agents') await import('./agents.js');
else main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
