import type { MeteringService } from './metering.service.js';

export interface StaleHoldsResult {
  /** Holds this run released, each now an `abandoned` usage event. */
  released: number;
  /** Holds settled, released or renewed by someone else between listing and releasing them. */
  alreadySettled: number;
  /** Holds whose release failed this time; they stay and the next run tries again. */
  failed: Array<{ requestId: string; error: unknown }>;
}

const BATCH = 500;

/**
 * Releases holds nobody renews: their process died or hung after admission, or the admission's reply never reached
 * the proxy, so the request will never be settled. Each goes through ordinary settlement at cost 0 as `abandoned`
 * (we never learned what the upstream produced), and only if its row, locked, is still past its deadline — so a
 * hold renewed by its live instance meanwhile, or settled by the proxy at the same moment, is left alone and
 * nothing is charged twice. Releasing gives the key and the payer their headroom back.
 */
export async function releaseStaleHolds(metering: MeteringService): Promise<StaleHoldsResult> {
  const result: StaleHoldsResult = { released: 0, alreadySettled: 0, failed: [] };
  const tried = new Set<string>();
  for (;;) {
    const page = await metering.staleHolds(BATCH);
    const fresh = page.filter((h) => !tried.has(h.requestId));
    for (const hold of fresh) {
      tried.add(hold.requestId);
      try {
        const released = await metering.release(hold);
        if (released.applied) result.released++;
        else result.alreadySettled++;
      } catch (error) {
        result.failed.push({ requestId: hold.requestId, error });
      }
    }
    // A short page means nothing is left; a page of only already-tried holds means the rest keep failing.
    if (page.length < BATCH || fresh.length === 0) return result;
  }
}
