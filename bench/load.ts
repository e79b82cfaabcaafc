// One autocannon load, run as a separate process so the load generator does not share the harness's event loop.
// Input: a JSON LoadSpec as argv[2]. Output: one JSON line with the summary.
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  connections: number;
  /** Either a duration, or an exact number of requests (all answered before the load ends: exact counts). */
  durationSeconds?: number;
  amount?: number;
  headers: Record<string, string>;
  body: string;
  /** When set, each request carries the next of these bearer keys (round-robin): traffic spread over many keys. */
  rotateBearer?: string[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
// Many keys: one pre-built request per key, which every connection cycles through (cheaper for the load generator
// than rewriting each request).
const result = await autocannon({
  url: spec.url,
  method: 'POST',
  connections: spec.connections,
  ...(spec.amount ? { amount: spec.amount } : { duration: spec.durationSeconds }),
  headers: spec.headers,
  body: spec.body,
  ...(spec.rotateBearer && {
    requests: spec.rotateBearer.map((key) => ({ method: 'POST' as const, body: spec.body, headers: { ...spec.headers, authorization: `Bearer ${key}` } })),
  }),
});
process.stdout.write(
  `${JSON.stringify({
    // Requests over the run's elapsed time: autocannon's own average is per whole second, coarse for short runs.
    requestsPerSecond: result.requests.total / result.duration,
    elapsedSeconds: result.duration,
    total: result.requests.total,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, mean: result.latency.mean },
  })}\n`,
);
