// The fake upstream in its own process for benchmarks (so its CPU is not the harness's), driven over IPC:
// it sends {port} when listening and answers 'stats' with the number of 2xx responses it completed, and 'loop' with
// its own event-loop delay since the last 'loop' (so a run can show the fake was not the bottleneck).
// argv[2], optional: JSON fake-upstream options for the agent load (bench/agents.ts): {mode, dripMs, replyTokens,
// tokensPerDelta}; without it, the 16-token instant answers of `npm run bench`.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startFakeUpstream, type FakeUpstreamOptions } from '../test/support/fake-upstream.js';

const options = JSON.parse(process.argv[2] ?? '{}') as Pick<FakeUpstreamOptions, 'mode' | 'dripMs' | 'replyTokens' | 'tokensPerDelta'>;
const fake = await startFakeUpstream({ record: false, replyTokens: 16, ...options });
const port = Number(new URL(fake.url).port);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
process.send?.({ type: 'ready', port });
process.on('message', (message: unknown) => {
  if (message === 'stats') process.send?.({ type: 'stats', served: fake.served });
  if (message === 'loop') {
    process.send?.({ type: 'loop', p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 });
    loop.reset();
  }
  if (message === 'stop') void fake.close().then(() => process.exit(0));
});
process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
