// Latency with exactly one request in flight, measured with process.hrtime (microseconds), in its own process.
// Input: JSON {url, headers, body, count, warmup, stream}. Output: JSON percentiles in µs (ttfb and total).
import http from 'node:http';

interface Spec {
  url: string;
  headers: Record<string, string>;
  body: string;
  count: number;
  warmup: number;
  stream: boolean;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const target = new URL(spec.url);

function once(): Promise<{ ttfbUs: number; totalUs: number; status: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let ttfb = 0n;
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { ...spec.headers, 'content-length': Buffer.byteLength(spec.body) } },
      (res) => {
        res.on('data', () => {
          if (ttfb === 0n) ttfb = process.hrtime.bigint();
        });
        res.on('end', () => {
          const end = process.hrtime.bigint();
          resolve({ ttfbUs: Number((ttfb || end) - started) / 1000, totalUs: Number(end - started) / 1000, status: res.statusCode ?? 0 });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(spec.body);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

for (let i = 0; i < spec.warmup; i++) await once();
const ttfb: number[] = [];
const total: number[] = [];
let failures = 0;
for (let i = 0; i < spec.count; i++) {
  const r = await once();
  if (r.status !== 200) failures++;
  ttfb.push(r.ttfbUs);
  total.push(r.totalUs);
}
ttfb.sort((a, b) => a - b);
total.sort((a, b) => a - b);
const summary = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) });
process.stdout.write(`${JSON.stringify({ count: spec.count, failures, ttfbUs: summary(ttfb), totalUs: summary(total) })}\n`);
agent.destroy();
