/**
 * Retry schedule of a delivery (docs/webhooks.md): 30 s after the first failure, doubling, at most 4 h apart, with
 * up to 10 % jitter so endpoints that failed together are not retried in lockstep; none later than a day after the
 * event — then the delivery is `failed`.
 */
export const FIRST_RETRY_MS = 30_000;
export const MAX_RETRY_GAP_MS = 4 * 3600_000;
export const RETRY_WINDOW_MS = 24 * 3600_000;

/** When to try again after `attempts` failed attempts (≥ 1), or null when the window is over. `random` in [0, 1). */
export function nextAttemptAt(createdAt: Date, attempts: number, now: Date, random: number): Date | null {
  const gap = Math.min(MAX_RETRY_GAP_MS, FIRST_RETRY_MS * 2 ** Math.min(attempts - 1, 30));
  const end = createdAt.getTime() + RETRY_WINDOW_MS;
  if (now.getTime() + gap > end) return null;
  // The jitter never costs a retry that fits the window: it is cut at the window's end.
  return new Date(Math.min(end, now.getTime() + Math.round(gap * (1 + random / 10))));
}
