import type { UsageOutcome } from '../domain/billing/metering.service.js';
import { requestCost } from '../domain/models/models.service.js';
import type { ProxyContext } from './context.js';
import { describeError } from './errors.js';
import type { Charge, Exchange } from './exchange.js';

/**
 * Settles the hold once; a failure is logged and counted and the hold left for the release job. Until then it
 * keeps the hold alive (see MeteringService.extendHold), so only a request whose process died is ever released.
 */
export class Settler {
  done = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly x: Exchange,
  ) {
    this.keepAlive = setInterval(() => {
      ctx.metering.extendHold(x.hold.requestId).catch((err: unknown) =>
        ctx.logger.warn({ requestId: x.hold.requestId, err: describeError(err) }, 'extending a hold failed'));
    }, Math.max(1_000, Math.floor(ctx.metering.holdTtlMs / 3)));
    this.keepAlive.unref();
  }

  async charge(c: Charge): Promise<UsageOutcome> {
    if (this.done) return c.outcome;
    this.done = true;
    clearInterval(this.keepAlive);
    const { ctx, x } = this;
    const end = ctx.metrics.meteringSeconds.startTimer({ phase: 'settle' });
    try {
      await ctx.metering.settle(x.hold, {
        inputTokens: c.usage.inputTokens,
        outputTokens: c.usage.outputTokens,
        costMicro: requestCost(x.model, c.usage.inputTokens, c.usage.outputTokens),
        outcome: c.outcome,
        estimated: c.estimated,
        httpStatus: c.httpStatus,
        latencyMs: performance.now() - x.startedAt,
      });
    } catch (err) {
      ctx.metrics.meteringErrors.inc();
      ctx.logger.error({ requestId: x.hold.requestId, keyId: x.hold.keyId, err: describeError(err) },
        'settlement failed after retries; the hold stays until the release job settles it');
    } finally {
      end();
    }
    return c.outcome;
  }
}

