// `npm run bench -- agents` (or BENCH_SCENARIO=agents npm run bench): many long streaming requests at once, as agents
// make them (issue #19), against one ModelBridge instance (MySQL, metering on, every key control set, holds that
// grow) and then the Portkey peer, in one run. Concurrency ramps in steps; each step opens its streams over a short
// ramp, holds them all open while it measures, then checks the counts once every stream has ended. The ramp stops at
// the first step whose event-loop delay p99 passes the limit, that fails a stream, or when the time budget is spent.
// Knobs (env): BENCH_AGENTS_STEPS (100,250,500,1000,2000), BENCH_AGENTS_TOKENS_PER_SECOND (40),
// BENCH_AGENTS_TOKENS_PER_CHUNK (2), BENCH_AGENTS_SECONDS (30: how long each stream lasts), BENCH_AGENTS_RAMP_SECONDS
// (5), BENCH_AGENTS_CLIENTS (2 client processes), BENCH_AGENTS_LOOP_LIMIT_MS (50), BENCH_AGENTS_BUDGET_SECONDS (600
// per proxy), BENCH_AGENTS_CPU_PROF=1 (ModelBridge under --cpu-prof; the top step's window is summarised),
// BENCH_AGENTS_SQL_COUNT=0 (ModelBridge straight to MariaDB, not through the counting relay bench/sql-counter.ts),
// BENCH_SKIP_PEER=1, BENCH_DATABASE_URL (as `npm run bench`: dropped and re-created).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from '../src/db/knex.js';
import { checkInvariants, seedBench } from './seed.js';
import type { AgentClientResult, AgentStep, Percentiles } from './agent-client.js';
import { summariseCpuProfile, type CpuProfileSummary } from './cpu-profile.js';
import { freePort, killAll, track, waitForHttp } from './processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const knobs = {
  steps: (process.env.BENCH_AGENTS_STEPS ?? '100,250,500,1000,2000').split(',').map(Number).filter((n) => n > 0),
  tokensPerSecond: env('BENCH_AGENTS_TOKENS_PER_SECOND', 40),
  tokensPerChunk: env('BENCH_AGENTS_TOKENS_PER_CHUNK', 2),
  streamSeconds: env('BENCH_AGENTS_SECONDS', 30),
  rampSeconds: env('BENCH_AGENTS_RAMP_SECONDS', 5),
  clients: env('BENCH_AGENTS_CLIENTS', 2),
  loopLimitMs: env('BENCH_AGENTS_LOOP_LIMIT_MS', 50),
  budgetSeconds: env('BENCH_AGENTS_BUDGET_SECONDS', 600),
  cpuProf: process.env.BENCH_AGENTS_CPU_PROF === '1',
  sqlCount: process.env.BENCH_AGENTS_SQL_COUNT !== '0',
  skipPeer: process.env.BENCH_SKIP_PEER === '1',
};
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/modelbridge_bench';
const dripMs = (1000 * knobs.tokensPerChunk) / knobs.tokensPerSecond;
const replyTokens = Math.round(knobs.tokensPerSecond * knobs.streamSeconds);
// Chunks: the role chunk, the token deltas, the finish chunk, the usage chunk and [DONE], one drip apart.
const streamMs = (Math.ceil(replyTokens / knobs.tokensPerChunk) + 3) * dripMs;
const UPSTREAM_KEY = 'sk-bench-upstream';
// A max_tokens above one hold increment (2,048), so ModelBridge holds one increment at admission and grows it as the
// output passes half of it (src/domain/billing/growth.ts).
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Work through the task step by step.' }],
  max_tokens: Math.max(8192, replyTokens),
  stream: true,
  stream_options: { include_usage: true },
});
const resultsDir = path.join(root, 'bench', 'results');
const profileDir = path.join(resultsDir, 'agents-cpu-prof');


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `message` to an IPC child and resolves with its next message of type `type`. */
function ask<T>(child: ChildProcess, message: unknown, type: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== type) return;
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
    if (message !== undefined) child.send(message as object);
  });
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) / 1024;
}

/** The proxy under test: how to read its event-loop delay (and reset it), and its process. */
interface Target {
  name: 'modelbridge' | 'portkey';
  url: string;
  headers: Record<string, string>;
  rotateBearer?: string[];
  pid: number;
  /** Event-loop delay since the last read, in ms; each read starts a new window. */
  loop(): Promise<{ p99Ms: number; maxMs: number }>;
  meteringTransactions?(): Promise<number>;
}

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

async function startModelBridge(fakePort: number, keys: string[], viaDatabaseUrl: string): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort();
  const execArgv = knobs.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = track(
    spawn(process.execPath, [...execArgv, '--import', 'tsx', 'src/cli.ts', 'serve'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        DATABASE_URL: viaDatabaseUrl,
        HOST: '127.0.0.1',
        PORT: String(port),
        OPENAI_BASE_URL: `http://127.0.0.1:${fakePort}/v1`,
        OPENAI_API_KEY: UPSTREAM_KEY,
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${fakePort}`,
        ANTHROPIC_API_KEY: UPSTREAM_KEY,
        MODELBRIDGE_JOBS: '0',
        METRICS_ALLOW: 'loopback',
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
      },
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/healthz`);
  const scrape = async () => (await fetch(`${base}/metrics`)).text();
  return {
    child,
    target: {
      name: 'modelbridge',
      url: `${base}/v1/chat/completions`,
      headers: { 'content-type': 'application/json' },
      rotateBearer: keys,
      pid: child.pid!,
      // prom-client's default metrics: monitorEventLoopDelay at 10 ms resolution, reset at every scrape.
      loop: async () => {
        const text = await scrape();
        return { p99Ms: 1000 * metric(text, 'nodejs_eventloop_lag_p99_seconds'), maxMs: 1000 * metric(text, 'nodejs_eventloop_lag_max_seconds') };
      },
      meteringTransactions: async () => {
        const text = await scrape();
        return metric(text, 'modelbridge_metering_transactions\\{path="one_round_trip"\\}') + metric(text, 'modelbridge_metering_transactions\\{path="read_then_write"\\}');
      },
    },
  };
}

async function startPortkey(fakePort: number): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort();
  const child = track(
    spawn(process.execPath, ['--import', path.join(root, 'bench', 'loop-probe.mjs'), path.join(root, 'bench', 'peer', 'start.mjs'), String(port)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'ignore', 'ipc'],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`peer exited ${code}; run npm --prefix bench/peer ci`)));
  });
  return {
    child,
    target: {
      name: 'portkey',
      url: `http://127.0.0.1:${port}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${fakePort}/v1`, authorization: `Bearer ${UPSTREAM_KEY}` },
      pid: child.pid!,
      // bench/loop-probe.mjs: the same histogram, read over IPC.
      loop: () => ask(child, 'loop', 'loop'),
    },
  };
}

/** MariaDB's global counters: the whole server's, so other work on it shows too (see backgroundPerSecond). */
const STATUS_NAMES = ['Questions', 'Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_commit', 'Com_begin', 'Handler_commit'] as const;
type DbStatus = Record<(typeof STATUS_NAMES)[number], number>;

interface StepResult {
  streams: number;
  loopP99Ms: number;
  loopMaxMs: number;
  fakeLoopP99Ms: number;
  clientLoopP99Ms: number;
  windowSeconds: number;
  rssIdleMb: number;
  rssPeakMb: number;
  rssPerStreamKb: number;
  ttfbMs: Percentiles;
  gapMs: Percentiles;
  worstGapPerStreamMs: Percentiles;
  completed: number;
  failed: number;
  statuses: Record<string, number>;
  firstErrors: string[];
  upstreamServed: number;
  usageEvents?: number;
  okEvents?: number;
  holdsLeft?: number;
  invariants?: { ok: boolean; violations: string[] };
  exact: boolean;
  /**
   * ModelBridge: database work over the whole step (admissions to the last settlement), per stream and per
   * stream-minute: `sql` counted by the relay (this instance only, exact), `globalStatus` MariaDB's global counters
   * minus the background rate (the whole server: noisy on a shared one).
   */
  db?: {
    sql?: { perStream: Record<string, number>; perStreamMinute: Record<string, number> };
    globalStatus: { perStream: Record<string, number>; perStreamMinute: Record<string, number> };
    meteringTransactionsPerStream: number;
  };
  /** process.hrtime µs (the clock of V8's CPU profile) of the measuring window, and of the whole step. */
  windowUs: [number, number];
  stepUs: [number, number];
  seconds: number;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const runStart = Date.now();
  console.error(`agents: steps ${knobs.steps.join(', ')}; ${knobs.tokensPerSecond} tokens/s in chunks of ${knobs.tokensPerChunk} (one every ${dripMs} ms), ${replyTokens} tokens = ~${(streamMs / 1000).toFixed(0)} s per stream; ${knobs.clients} client processes; ulimit -n ${await ulimit()}`);
  fs.mkdirSync(resultsDir, { recursive: true });
  if (knobs.cpuProf) fs.rmSync(profileDir, { recursive: true, force: true });

  const fakeChild = track(fork(path.join(root, 'bench', 'fake-server.ts'), [JSON.stringify({ mode: 'drip', dripMs, replyTokens, tokensPerDelta: knobs.tokensPerChunk })], { execArgv: ['--import', 'tsx'], cwd: root }));
  const fakePort = (await ask<{ port: number }>(fakeChild, undefined, 'ready')).port;
  const served = async () => (await ask<{ served: number }>(fakeChild, 'stats', 'stats')).served;
  const clients = await Promise.all(
    Array.from({ length: knobs.clients }, async () => {
      const child = track(fork(path.join(root, 'bench', 'agent-client.ts'), [], { execArgv: ['--import', 'tsx'], cwd: root }));
      await ask(child, undefined, 'ready');
      return child;
    }),
  );
  const seed = await seedBench(databaseUrl, 100);
  let sqlCounts: (() => Promise<Record<string, number>>) | undefined;
  let viaDatabaseUrl = databaseUrl;
  if (knobs.sqlCount) {
    const url = new URL(databaseUrl);
    const relay = track(fork(path.join(root, 'bench', 'sql-counter.ts'), [JSON.stringify({ host: url.hostname, port: Number(url.port || 3306) })], { execArgv: ['--import', 'tsx'], cwd: root }));
    url.port = String((await ask<{ port: number }>(relay, undefined, 'ready')).port);
    url.hostname = '127.0.0.1';
    viaDatabaseUrl = url.toString();
    sqlCounts = async () => (await ask<{ counts: Record<string, number> }>(relay, 'counts', 'counts')).counts;
  }
  const db = createDb({ databaseUrl, poolMax: 1 });
  const status = async (): Promise<DbStatus> => {
    const [rows] = (await db.raw(`SHOW GLOBAL STATUS WHERE Variable_name IN (${STATUS_NAMES.map(() => '?').join(',')})`, [...STATUS_NAMES])) as [Array<{ Variable_name: string; Value: string }>];
    return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)])) as DbStatus;
  };
  const holds = async () => Number((await db('holds').count({ n: '*' }).first())?.n ?? 0);
  // Other work on the same MariaDB (this machine is shared) counts in its global status: measure its rate while
  // nothing of ours runs, and subtract it from each step.
  const idleSeconds = 10;
  const idleBefore = await status();
  await sleep(idleSeconds * 1000);
  const idleAfter = await status();
  const backgroundPerSecond = Object.fromEntries(STATUS_NAMES.map((n) => [n, (idleAfter[n] - idleBefore[n]) / idleSeconds])) as DbStatus;

  async function runSteps(target: Target): Promise<{ steps: StepResult[]; stoppedBecause: string; heldUnderLimit: number }> {
    const steps: StepResult[] = [];
    const started = Date.now();
    let stoppedBecause = 'every step passed';
    for (const streams of knobs.steps) {
      if ((Date.now() - started) / 1000 + streamMs / 1000 + knobs.rampSeconds > knobs.budgetSeconds) {
        stoppedBecause = `time budget (${knobs.budgetSeconds} s) reached before ${streams}`;
        break;
      }
      console.error(`${target.name}: ${streams} streams`);
      await sleep(1000);
      // Before each step, after the previous one ended: the first step's figure includes the JIT and pools warming up.
      const rssIdleMb = rssMb(target.pid);
      const stepStart = Date.now();
      const stepStartUs = Number(process.hrtime.bigint() / 1000n);
      const servedBefore = await served();
      const eventsBefore = target.name === 'modelbridge' ? await seed.countEvents() : undefined;
      const statusBefore = target.name === 'modelbridge' ? await status() : undefined;
      const txBefore = await target.meteringTransactions?.();
      const sqlBefore = target.name === 'modelbridge' ? await sqlCounts?.() : undefined;
      const perClient = Math.ceil(streams / clients.length);
      const done = clients.map((child, c) => {
        const count = Math.max(0, Math.min(perClient, streams - c * perClient));
        const step: AgentStep = { url: target.url, headers: target.headers, body: BODY, rotateBearer: target.rotateBearer, firstIndex: c * perClient, streams: count, rampMs: knobs.rampSeconds * 1000, timeoutMs: streamMs * 3 + 60_000 };
        return ask<{ result: AgentClientResult }>(child, { type: 'step', step }, 'done').then((m) => m.result);
      });
      // The window: every stream open (after the ramp and a second), until a second before the first ones end.
      await sleep(knobs.rampSeconds * 1000 + 1000);
      await target.loop();
      await ask(fakeChild, 'loop', 'loop');
      const windowStart = Date.now();
      const windowStartUs = Number(process.hrtime.bigint() / 1000n);
      const windowEnd = stepStart + Math.max(streamMs - 1000, knobs.rampSeconds * 1000 + 4000);
      let rssPeakMb = 0;
      while (Date.now() < windowEnd) {
        rssPeakMb = Math.max(rssPeakMb, rssMb(target.pid));
        await sleep(500);
      }
      const windowEndUs = Number(process.hrtime.bigint() / 1000n);
      const loop = await target.loop();
      const fakeLoop = await ask<{ p99Ms: number }>(fakeChild, 'loop', 'loop');
      const windowSeconds = (Date.now() - windowStart) / 1000;
      const results = await Promise.all(done);
      const sum = (f: (r: AgentClientResult) => number) => results.reduce((a, r) => a + f(r), 0);
      const worstOf = (f: (r: AgentClientResult) => Percentiles): Percentiles => ({
        p50: Math.max(...results.map((r) => f(r).p50)),
        p99: Math.max(...results.map((r) => f(r).p99)),
        max: Math.max(...results.map((r) => f(r).max)),
        count: results.reduce((a, r) => a + f(r).count, 0),
      });
      const statuses: Record<string, number> = {};
      for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      const completed = sum((r) => r.completed);
      const result: StepResult = {
        streams,
        loopP99Ms: loop.p99Ms,
        loopMaxMs: loop.maxMs,
        fakeLoopP99Ms: fakeLoop.p99Ms,
        clientLoopP99Ms: Math.max(...results.map((r) => r.clientLoopP99Ms)),
        windowSeconds,
        rssIdleMb,
        rssPeakMb,
        rssPerStreamKb: ((rssPeakMb - rssIdleMb) * 1024) / streams,
        ttfbMs: worstOf((r) => r.ttfbMs),
        gapMs: worstOf((r) => r.gapMs),
        worstGapPerStreamMs: worstOf((r) => r.worstGapPerStreamMs),
        completed,
        failed: sum((r) => r.failed),
        statuses,
        firstErrors: results.flatMap((r) => r.firstErrors).slice(0, 5),
        upstreamServed: 0,
        exact: false,
        seconds: 0,
        windowUs: [windowStartUs, windowEndUs],
        stepUs: [stepStartUs, 0],
      };
      if (target.name === 'modelbridge') {
        for (let i = 0; i < 600 && (await holds()) > 0; i++) await sleep(100);
        result.holdsLeft = await holds();
        const eventsAfter = await seed.countEvents();
        result.usageEvents = eventsAfter.total - eventsBefore!.total;
        result.okEvents = eventsAfter.ok - eventsBefore!.ok;
        result.invariants = await checkInvariants(databaseUrl);
        const statusAfter = await status();
        const elapsed = (Date.now() - stepStart) / 1000;
        const rates = (deltas: Record<string, number>) => ({
          perStream: Object.fromEntries(Object.entries(deltas).map(([n, d]) => [n, d / streams])),
          perStreamMinute: Object.fromEntries(Object.entries(deltas).map(([n, d]) => [n, d / streams / (streamMs / 60_000)])),
        });
        const globalDeltas = Object.fromEntries(STATUS_NAMES.map((n) => [n, statusAfter[n] - statusBefore![n] - backgroundPerSecond[n] * elapsed]));
        const sqlAfter = await sqlCounts?.();
        const sqlDeltas = sqlAfter && sqlBefore ? Object.fromEntries(Object.entries(sqlAfter).map(([n, v]) => [n, v - (sqlBefore[n] ?? 0)])) : undefined;
        result.db = {
          ...(sqlDeltas && { sql: rates(sqlDeltas) }),
          globalStatus: rates(globalDeltas),
          meteringTransactionsPerStream: ((await target.meteringTransactions!()) - txBefore!) / streams,
        };
      }
      result.upstreamServed = (await served()) - servedBefore;
      result.exact =
        result.failed === 0 &&
        completed === streams &&
        result.upstreamServed === completed &&
        (target.name !== 'modelbridge' || (result.usageEvents === completed && result.okEvents === completed && result.holdsLeft === 0 && result.invariants!.ok));
      result.seconds = (Date.now() - stepStart) / 1000;
      result.stepUs[1] = Number(process.hrtime.bigint() / 1000n);
      steps.push(result);
      console.error(`  loop p99 ${loop.p99Ms.toFixed(1)} ms, rss ${rssPeakMb.toFixed(0)} MB, completed ${completed}/${streams}, exact ${result.exact}`);
      if (!result.exact) {
        stoppedBecause = `a stream failed or a count did not match at ${streams}`;
        break;
      }
      if (loop.p99Ms >= knobs.loopLimitMs) {
        stoppedBecause = `event-loop delay p99 ${loop.p99Ms.toFixed(1)} ms ≥ ${knobs.loopLimitMs} ms at ${streams}`;
        break;
      }
    }
    const passing = steps.filter((s) => s.exact && s.loopP99Ms < knobs.loopLimitMs);
    return { steps, stoppedBecause, heldUnderLimit: passing.length ? Math.max(...passing.map((s) => s.streams)) : 0 };
  }

  const runs: Record<string, Awaited<ReturnType<typeof runSteps>>> = {};
  const mb = await startModelBridge(fakePort, seed.controlledKeys, viaDatabaseUrl);
  runs.modelbridge = await runSteps(mb.target);
  await stopChild(mb.child);
  let profile: (CpuProfileSummary & { streams: number }) | undefined;
  if (knobs.cpuProf) {
    const file = fs.readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    const top = runs.modelbridge.steps.at(-1);
    if (file && top) profile = { streams: top.streams, ...summariseCpuProfile(JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8')), root, top.stepUs) };
  }
  if (!knobs.skipPeer) {
    const peer = await startPortkey(fakePort);
    runs.portkey = await runSteps(peer.target);
    await stopChild(peer.child);
  }
  const results = {
    startedAt,
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadavgAtEnd: os.loadavg() },
    knobs: { ...knobs, dripMs, replyTokens, streamMs },
    backgroundDbPerSecond: backgroundPerSecond,
    runs,
    profile,
    totalSeconds: (Date.now() - runStart) / 1000,
  };
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(resultsDir, `agents-${stamp}.json`), JSON.stringify(results, null, 2));
  const summary = renderSummary(results);
  fs.writeFileSync(path.join(resultsDir, `agents-${stamp}.md`), summary);
  fs.writeFileSync(path.join(resultsDir, 'agents-latest.md'), summary);
  process.stdout.write(summary);
  await db.destroy();
  await seed.close();
}

async function ulimit(): Promise<string> {
  return new Promise((resolve) => {
    const sh = spawn('sh', ['-c', 'ulimit -n'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout.on('data', (d) => (out += d));
    sh.on('exit', () => resolve(out.trim()));
  });
}

/** SIGTERM, then wait for the exit (ModelBridge writes its CPU profile as it exits). */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000)]);
}

function renderSummary(r: { startedAt: Date; machine: unknown; knobs: Record<string, unknown>; backgroundDbPerSecond: DbStatus; runs: Record<string, { steps: StepResult[]; stoppedBecause: string; heldUnderLimit: number }>; profile?: CpuProfileSummary & { streams: number }; totalSeconds: number }): string {
  const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d));
  const lines = [
    `# Agent load ${r.startedAt.toISOString()}`,
    '',
    `machine: ${JSON.stringify(r.machine)}`,
    `knobs: ${JSON.stringify(r.knobs)}`,
    `run took ${f(r.totalSeconds, 0)} s; MariaDB background (other work on the server, subtracted) per second: ${JSON.stringify(r.backgroundDbPerSecond)}`,
    '',
  ];
  for (const [name, run] of Object.entries(r.runs)) {
    lines.push(`## ${name}: held ${run.heldUnderLimit} concurrent streams with event-loop delay p99 < ${knobs.loopLimitMs} ms (stopped: ${run.stoppedBecause})`, '');
    lines.push(
      '| streams | loop p99 ms | loop max ms | RSS MB (before → peak) | RSS KiB/stream | ttfb p50/p99 ms | chunk gap p50/p99/max ms | worst gap/stream p50/p99 ms | client loop p99 ms | fake loop p99 ms | completed | upstream served | usage events | holds left | invariants | exact |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const s of run.steps)
      lines.push(
        `| ${s.streams} | ${f(s.loopP99Ms)} | ${f(s.loopMaxMs)} | ${f(s.rssIdleMb, 0)} → ${f(s.rssPeakMb, 0)} | ${f(s.rssPerStreamKb, 0)} | ${f(s.ttfbMs.p50)}/${f(s.ttfbMs.p99)} | ${f(s.gapMs.p50)}/${f(s.gapMs.p99)}/${f(s.gapMs.max)} | ${f(s.worstGapPerStreamMs.p50)}/${f(s.worstGapPerStreamMs.p99)} | ${f(s.clientLoopP99Ms)} | ${f(s.fakeLoopP99Ms)} | ${s.completed}/${s.streams} | ${s.upstreamServed} | ${s.usageEvents ?? '–'} | ${s.holdsLeft ?? '–'} | ${s.invariants ? (s.invariants.ok ? 'ok' : s.invariants.violations.length) : '–'} | ${s.exact ? 'yes' : 'NO'} |`,
      );
    const withDb = run.steps.filter((s) => s.db);
    if (withDb.length) {
      lines.push('', 'Database work over each step, admissions to the last settlement: statements counted by the relay (this instance only), per stream and per stream-minute; metering transactions from /metrics; MariaDB\'s global Questions and Handler_commit minus the background rate (whole server, noisy) as a cross-check:', '');
      lines.push('| streams | round trips /stream | statements /stream | /stream-min | select | insert | update | delete | begin | commit /stream | commit /stream-min | metering tx /stream | global Questions /stream | global Handler_commit /stream |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      for (const s of withDb) {
        const p = s.db!.sql?.perStream ?? {};
        const m = s.db!.sql?.perStreamMinute ?? {};
        const g = s.db!.globalStatus.perStream;
        lines.push(`| ${s.streams} | ${f(p.commands, 2)} | ${f(p.statements, 2)} | ${f(m.statements, 2)} | ${f(p.select ?? 0, 2)} | ${f(p.insert ?? 0, 2)} | ${f(p.update ?? 0, 2)} | ${f(p.delete ?? 0, 2)} | ${f(p.begin ?? 0, 2)} | ${f(p.commit ?? 0, 2)} | ${f(m.commit ?? 0, 2)} | ${f(s.db!.meteringTransactionsPerStream, 2)} | ${f(g.Questions)} | ${f(g.Handler_commit)} |`);
      }
    }
    const errors = run.steps.flatMap((s) => s.firstErrors);
    if (errors.length) lines.push('', `first errors: ${JSON.stringify(errors.slice(0, 5))}`);
    lines.push('');
  }
  if (r.profile) {
    lines.push(`## ModelBridge CPU profile: the whole top step, ramp and settlement included (${r.profile.streams} streams), ${f(r.profile.totalMs / 1000)} s sampled, ${f(100 * r.profile.idleShare)}% idle`, '', '| where | self ms | share of busy |', '|---|---|---|');
    for (const g of r.profile.byPlace) lines.push(`| ${g.place} | ${f(g.selfMs, 0)} | ${f(100 * g.share)}% |`);
    lines.push('', '| function | self ms | share of busy |', '|---|---|---|');
    for (const g of r.profile.topFunctions) lines.push(`| ${g.place} | ${f(g.selfMs, 0)} | ${f(100 * g.share)}% |`);
    lines.push('');
  }
  return lines.join('\n');
}

main().then(
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
