// Preloaded (`node --import ./bench/loop-probe.mjs …`) into a proxy that has no metrics of its own (the Portkey
// peer), for the agent load (bench/agents.ts): the same event-loop delay histogram prom-client keeps for ModelBridge's
// /metrics (perf_hooks.monitorEventLoopDelay, 10 ms resolution, reset at each read), read over the IPC channel.
// Message 'loop' → {type: 'loop', p99Ms, maxMs, meanMs}. Without an IPC channel it does nothing.
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (process.send) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  process.on('message', (message) => {
    if (message !== 'loop') return;
    process.send({ type: 'loop', p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6, meanMs: histogram.mean / 1e6 });
    histogram.reset();
  });
  process.channel?.unref();
}
