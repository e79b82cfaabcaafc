import { tokenCost, type Micro } from '../money.js';

/**
 * Holds that grow with the stream (docs/metering.md, "Holds that grow"). A streaming request is admitted with a hold
 * for its input and one output increment, not for its whole output bound; as its output arrives, the proxy asks for
 * one more increment whenever less than half of one is left, in the metering batches that run anyway, so the
 * answer is there long before the hold is used up. A stream whose hold cannot grow (the key's limit or the payer's
 * balance is used up) is cut where its hold ends. What a stream can cost beyond its hold is what it produced between
 * the last count and the cut: at most one increment — so a key's spend passes its limit by at most one increment per
 * stream cut, plus the one request admitted alone at the end of the headroom.
 */

/**
 * Output tokens per increment: small enough that their cost at the model's output price is a small overshoot
 * (2,048 tokens of Claude Opus 5.5 at US$20/MTok: about A$0.064), large enough that a typical agent turn (a few
 * thousand tokens) grows its hold once or twice.
 */
export const OUTPUT_INCREMENT_TOKENS = 2_048;

export interface HoldGrowthPlan {
  /** Output tokens held at admission, and added by each growth. */
  incrementTokens: number;
  /** Their cost at the model's output price. */
  incrementMicro: Micro;
}

/**
 * How a streaming request is held: its output bound at once when that is at most one increment (nothing to grow),
 * else one increment now and more as it streams. `choices` completions (OpenAI `n`) share the increments.
 */
export function streamHold(outputTokenBound: number, outputMicroPerMTok: Micro): { heldOutputTokens: number; growth: HoldGrowthPlan | null } {
  if (outputTokenBound <= OUTPUT_INCREMENT_TOKENS) return { heldOutputTokens: outputTokenBound, growth: null };
  return {
    heldOutputTokens: OUTPUT_INCREMENT_TOKENS,
    growth: { incrementTokens: OUTPUT_INCREMENT_TOKENS, incrementMicro: tokenCost(OUTPUT_INCREMENT_TOKENS, outputMicroPerMTok) },
  };
}

/** The stream should ask for the next increment now: less than half of one is left of what it holds. */
export function growthDue(usedMicro: Micro, heldMicro: Micro, plan: HoldGrowthPlan): boolean {
  return heldMicro - usedMicro < plan.incrementMicro / 2;
}
