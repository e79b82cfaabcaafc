import { growthDue, type HoldGrowthPlan } from '../domain/billing/growth.js';
import type { MeteringRefusal } from '../domain/billing/refusal.js';
import { requestCost } from '../domain/models/pricing.js';
import type { Micro } from '../domain/money.js';
import type { ProxyContext } from './context.js';
import { describeError } from './errors.js';
import type { Exchange } from './exchange.js';
import type { StreamMeter } from './upstreams/types.js';

/**
 * The hold of one stream, grown ahead of its output (src/domain/billing/growth.ts has the rule). After every chunk
 * the relay asks `passed`: a few additions — the cost so far from above (the input as reported, else its bound;
 * the output's running bound) against what the stream holds — and, when less than half an increment is left, one
 * more increment asked for in the metering batches, answered while the stream goes on. Only when the output has
 * passed the hold does `mustCut` wait: for the growth asked, then for one more try, then for an exact count of the
 * output (the model's tokenizer where there is one), and says to cut only when even that is past the hold.
 */
export class HoldGrowth {
  /** What the stream may cost: the smaller of its holds on the key's side and the payer's. */
  private heldMicro: Micro;
  private asking: Promise<void> | null = null;
  /** Why the last growth granted less than asked (the limit or balance that ran out, or an unusable key). */
  refusal: MeteringRefusal | null = null;
  private inputMicro: Micro | null = null;
  private inputReported = false;
  /** After a growth failed (the database), the running output bound from which to ask again. */
  private askAgainAt = 0;
  /** The running output bound when the hold was last confirmed passed by an exact count (throttles those counts). */
  private confirmedAt = -Infinity;

  private constructor(
    private readonly ctx: ProxyContext,
    private readonly x: Exchange,
    private readonly plan: HoldGrowthPlan,
  ) {
    this.heldMicro = Math.min(x.hold.keyHoldMicro, x.hold.payerHoldMicro);
  }

  /** The growth of a stream whose output bound is more than its first increment, else null: it holds it all. */
  static of(ctx: ProxyContext, x: Exchange): HoldGrowth | null {
    return x.estimate.growth ? new HoldGrowth(ctx, x, x.estimate.growth) : null;
  }

  /** After each chunk: asks ahead for more when due; true when the output may have passed the hold (see mustCut). */
  passed(stream: StreamMeter): boolean {
    const used = this.usedMicro(stream, stream.outputSoFar);
    if (!this.asking && !this.refusal && stream.outputSoFar >= this.askAgainAt && growthDue(used, this.heldMicro, this.plan)) this.ask(stream);
    return used > this.heldMicro;
  }

  /** The stream has passed its hold and no more can be had: it must be cut here. */
  async mustCut(stream: StreamMeter): Promise<boolean> {
    if (this.asking) await this.asking;
    if (this.usedMicro(stream, stream.outputSoFar) <= this.heldMicro) return false;
    // Refused before: the headroom may have come back since (a request ended); ask once more, then count exactly.
    if (this.refusal) {
      this.ask(stream);
      await this.asking;
      if (this.usedMicro(stream, stream.outputSoFar) <= this.heldMicro) return false;
    }
    if (stream.outputSoFar - this.confirmedAt < this.plan.incrementTokens / 8) return false;
    this.confirmedAt = stream.outputSoFar;
    const exact = await stream.outputTokensBound(this.x.estimate.outputTokenBound);
    return this.usedMicro(stream, exact) > this.heldMicro;
  }

  private ask(stream: StreamMeter): void {
    this.asking = this.ctx.metering
      .grow(this.x.hold, this.plan.incrementMicro)
      .then((grown) => {
        this.heldMicro = Math.min(grown.keyHoldMicro, grown.payerHoldMicro);
        this.refusal = grown.refusal;
      })
      .catch((err: unknown) => {
        // Asked for again a little further on; meanwhile the stream lives on what it holds.
        this.askAgainAt = stream.outputSoFar + this.plan.incrementTokens / 8;
        this.ctx.logger.warn({ requestId: this.x.hold.requestId, err: describeError(err) }, 'hold growth failed');
      })
      .finally(() => {
        this.asking = null;
      });
  }

  /** The cost so far, from above: the input as the provider reported it (else its bound), and `outputTokens`. */
  private usedMicro(stream: StreamMeter, outputTokens: number): Micro {
    if (this.inputMicro === null || (!this.inputReported && stream.reportedInput)) {
      this.inputReported = stream.reportedInput !== null;
      this.inputMicro = stream.reportedInput ? requestCost(this.x.model, { ...stream.reportedInput, outputTokens: 0 }) : this.x.estimate.inputCostMicro;
    }
    return this.inputMicro + requestCost(this.x.model, { inputTokens: 0, outputTokens });
  }
}
