import type { Clock } from '../clock.js';
import type { Hold, MeteringService } from './metering.service.js';

export interface StaleHoldsResult {
  /** Holds this run released, each now an `abandoned` usage event. */
  released: number;
  /** Holds settled by someone else (the proxy, another instance) between listing and releasing them. */
  alreadySettled: number;
  /** Holds whose release failed this time; they stay and the next run tries again. */
  failed: Array<{ requestId: string; error: unknown }>;
}

const BATCH = 500;

/**
 * Releases holds whose deadline has passed: their process died or hung after admission, so the request will never
 * be settled by the proxy. Each goes through ordinary settlement with cost 0 and outcome `abandoned` (estimated: we
 * never learned what the upstream produced). Settlement is idempotent on the request id — it deletes the hold row
 * under the key lock — so when the proxy settles the same request at the same moment, exactly one of the two
 * applies and nothing is charged twice. Releasing gives the key and the payer their headroom back.
 */
export async function releaseStaleHolds(metering: MeteringService, clock: Clock): Promise<StaleHoldsResult> {
  const result: StaleHoldsResult = { released: 0, alreadySettled: 0, failed: [] };
  const tried = new Set<string>();
  for (;;) {
    const page = await metering.staleHolds(BATCH);
    const fresh = page.filter((h) => !tried.has(h.requestId));
    for (const hold of fresh) {
      tried.add(hold.requestId);
      try {
        const settled = await metering.settle(hold, abandonment(hold, clock.now()));
        if (settled.applied) result.released++;
        else result.alreadySettled++;
      } catch (error) {
        result.failed.push({ requestId: hold.requestId, error });
      }
    }
    // A short page means nothing is left; a page of only already-tried holds means the rest keep failing.
    if (page.length < BATCH || fresh.length === 0) return result;
  }
}

function abandonment(hold: Hold, now: Date) {
  return {
    inputTokens: 0,
    outputTokens: 0,
    costMicro: 0,
    outcome: 'abandoned' as const,
    estimated: true,
    // No response was ever recorded for this request.
    httpStatus: 0,
    latencyMs: Math.max(0, now.getTime() - hold.createdAt.getTime()),
  };
}
