// One client process of the agent load (bench/agents.ts): holds many long streaming requests open at once, in its own
// process so the client's event loop is not the proxy's or the harness's. Driven over IPC:
//   {type: 'step', step: AgentStep} → opens step.streams streams, spread over step.rampMs, and answers
//   {type: 'done', result: AgentClientResult} once every one has ended.
// Each stream counts as completed when it got a 200 and its body ended with `data: [DONE]`. It records the time to
// the first byte and every gap between two reads of the body (what an agent sees as a stall), and its own
// event-loop delay over the step, to show the client was not the bottleneck.
import { createHistogram, monitorEventLoopDelay, type RecordableHistogram } from 'node:perf_hooks';
import { Agent, request } from 'undici';

export interface AgentStep {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** When set, stream i carries bearer rotateBearer[i mod length] (streams spread over many keys). */
  rotateBearer?: string[];
  /** Offset into rotateBearer, so several clients do not all start on the same key. */
  firstIndex: number;
  streams: number;
  rampMs: number;
  /** A stream still open after this long is aborted and counted as failed (the load stops by itself). */
  timeoutMs: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

export interface AgentClientResult {
  started: number;
  completed: number;
  /** Streams that answered something else than 200, broke off, or did not end with [DONE]. */
  failed: number;
  statuses: Record<string, number>;
  firstErrors: string[];
  ttfbMs: Percentiles;
  /** Gaps between two reads of one stream's body, all streams. */
  gapMs: Percentiles;
  /** The largest gap of each stream. */
  worstGapPerStreamMs: Percentiles;
  clientLoopP99Ms: number;
  bytes: number;
}

const agent = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

function summary(h: RecordableHistogram): Percentiles {
  // Recorded in microseconds (the histogram takes integers ≥ 1).
  return h.count === 0 ? { p50: 0, p99: 0, max: 0, count: 0 } : { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000, count: h.count };
}

async function runStep(step: AgentStep): Promise<AgentClientResult> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ttfb = createHistogram();
  const gaps = createHistogram();
  const worst = createHistogram();
  const statuses: Record<string, number> = {};
  const firstErrors: string[] = [];
  let completed = 0;
  let failed = 0;
  let bytes = 0;
  const micros = (ms: number) => Math.max(1, Math.round(ms * 1000));

  async function one(i: number): Promise<void> {
    const headers = { ...step.headers };
    if (step.rotateBearer) headers.authorization = `Bearer ${step.rotateBearer[(step.firstIndex + i) % step.rotateBearer.length]}`;
    const signal = AbortSignal.timeout(step.timeoutMs);
    const startedAt = performance.now();
    try {
      const res = await request(step.url, { method: 'POST', headers, body: step.body, dispatcher: agent, signal });
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      let last = 0;
      let worstGap = 0;
      let tail = '';
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        const now = performance.now();
        if (last === 0) ttfb.record(micros(now - startedAt));
        else {
          gaps.record(micros(now - last));
          worstGap = Math.max(worstGap, now - last);
        }
        last = now;
        bytes += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-32);
      }
      worst.record(micros(worstGap));
      if (res.statusCode === 200 && tail.trimEnd().endsWith('data: [DONE]')) completed++;
      else {
        failed++;
        if (firstErrors.length < 5) firstErrors.push(`status ${res.statusCode}, ends ${JSON.stringify(tail)}`);
      }
    } catch (err) {
      failed++;
      statuses.error = (statuses.error ?? 0) + 1;
      if (firstErrors.length < 5) firstErrors.push(String((err as Error).message ?? err));
    }
  }

  const running: Promise<void>[] = [];
  const gap = step.streams > 1 ? step.rampMs / step.streams : 0;
  const t0 = performance.now();
  for (let i = 0; i < step.streams; i++) {
    const due = t0 + i * gap - performance.now();
    if (due > 1) await new Promise((r) => setTimeout(r, due));
    running.push(one(i));
  }
  await Promise.all(running);
  loop.disable();
  return {
    started: step.streams,
    completed,
    failed,
    statuses,
    firstErrors,
    ttfbMs: summary(ttfb),
    gapMs: summary(gaps),
    worstGapPerStreamMs: summary(worst),
    clientLoopP99Ms: loop.percentile(99) / 1e6,
    bytes,
  };
}

process.on('message', (message: { type: string; step?: AgentStep }) => {
  if (message.type === 'step' && message.step) void runStep(message.step).then((result) => process.send?.({ type: 'done', result }));
  if (message.type === 'stop') void agent.close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
