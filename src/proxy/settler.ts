import type { SettleResult, UsageOutcome } from '../domain/billing/metering.service.js';
import { requestCost } from '../domain/models/pricing.js';
import type { ProxyContext } from './context.js';
import { describeError } from './errors.js';
import type { Charge, Exchange } from './exchange.js';

/**
 * How long the end of a response waits for its settlement. Settling normally takes a few milliseconds and completes
 * before the answer does ("charged when answered"); when the database is failing, the settlement goes on being
 * retried until it commits (MeteringService.settle) while the client gets the rest of its answer.
 */
const ANSWER_WAITS_FOR_SETTLEMENT_MS = 3_000;

/** Settles the request's hold exactly once, with the charge its relay worked out. */
export class Settler {
  done = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly x: Exchange,
  ) {}

  async charge(c: Charge): Promise<UsageOutcome> {
    if (this.done) return c.outcome;
    this.done = true;
    const { ctx, x } = this;
    const end = ctx.metrics.meteringSeconds.startTimer({ phase: 'settle' });
    const settled: Promise<SettleResult | null> = ctx.metering
      .settle(x.hold, {
        // Every kind apart (fresh input, cache read and writes, output, reasoning), each at its catalog price.
        inputTokens: c.usage.inputTokens,
        cachedInputTokens: c.usage.cachedInputTokens,
        cacheWrite5mTokens: c.usage.cacheWrite5mTokens,
        cacheWrite1hTokens: c.usage.cacheWrite1hTokens,
        outputTokens: c.usage.outputTokens,
        reasoningTokens: c.usage.reasoningTokens,
        costMicro: requestCost(x.model, c.usage),
        outcome: c.outcome,
        estimated: c.estimated,
        httpStatus: c.httpStatus,
        latencyMs: performance.now() - x.startedAt,
      })
      .catch((err: unknown) => {
        // Only a rule's refusal ends the retries, and settlement has none: a bug of ours.
        ctx.metrics.meteringErrors.inc();
        ctx.logger.error({ requestId: x.hold.requestId, keyId: x.hold.keyId, err: describeError(err) }, 'settlement refused');
        return null;
      })
      .finally(() => end())
      .then(async (result) => {
        if (result) await this.recordResponse(c);
        return result;
      });
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      settled.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ANSWER_WAITS_FOR_SETTLEMENT_MS))),
    ]);
    clearTimeout(timer);
    if (!waited) {
      ctx.metrics.meteringErrors.inc();
      ctx.logger.warn({ requestId: x.hold.requestId, keyId: x.hold.keyId }, 'settlement is taking long; it is retried until it commits while the answer completes');
    }
    return c.outcome;
  }

  /**
   * A response the upstream stores is recorded for the account that paid for it, before the answer completes, so
   * that its id works at once on GET/DELETE /v1/responses/{id} and as a previous_response_id — and only for that
   * account. A failed record is logged, not retried: the response is then merely unreadable through ModelBridge.
   */
  private async recordResponse(c: Charge): Promise<void> {
    const { ctx, x } = this;
    if (!c.responseId || !x.request.storesResponse) return;
    try {
      await ctx.storedResponses.record({
        responseId: c.responseId,
        requestId: x.hold.requestId,
        key: { id: x.hold.keyId, ownerId: x.hold.userId, teamId: x.hold.teamId },
        model: x.model.id,
        contextTokens: c.usage.inputTokens + c.usage.cachedInputTokens + c.usage.cacheWrite5mTokens + c.usage.cacheWrite1hTokens + c.usage.outputTokens,
      });
    } catch (err) {
      ctx.logger.error({ requestId: x.hold.requestId, err: describeError(err) }, 'could not record the stored response id');
    }
  }
}
