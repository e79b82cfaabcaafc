import { tokenCost, tokensCost, type Micro } from '../money.js';
import type { CatalogModel } from './models.service.js';

/**
 * The tokens of one request by how the provider bills them. The kinds are disjoint except reasoning: every input
 * token is exactly one of fresh input, cache read, 5-minute cache write or 1-hour cache write, so the four add up to
 * the whole prompt. Providers spell this differently — OpenAI's `prompt_tokens` INCLUDES its `cached_tokens`, while
 * Anthropic's `input_tokens` EXCLUDES `cache_read_input_tokens` and `cache_creation_input_tokens` — and the upstream
 * readers (src/proxy/upstreams/) turn both into this one shape.
 */
export interface TokenUsage {
  /** Input billed at the input price: neither read from nor written to a prompt cache. */
  inputTokens: number;
  /** Input read from a prompt cache (OpenAI cached input, Anthropic cache reads). */
  cachedInputTokens: number;
  /** Input written to a prompt cache that lives 5 minutes (Anthropic; the default TTL). */
  cacheWrite5mTokens: number;
  /** Input written to a prompt cache that lives 1 hour (Anthropic `ttl: "1h"`). */
  cacheWrite1hTokens: number;
  /** Every output token, reasoning included. */
  outputTokens: number;
  /** The part of outputTokens spent on hidden reasoning, as the provider reports it; recorded, not billed apart. */
  reasoningTokens: number;
}

export const NO_TOKENS: Readonly<TokenUsage> = Object.freeze({
  inputTokens: 0, cachedInputTokens: 0, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: 0, reasoningTokens: 0,
});

/** A whole TokenUsage from the kinds given (the others are 0). */
export function tokenUsage(kinds: Partial<TokenUsage>): TokenUsage {
  return { ...NO_TOKENS, ...kinds };
}

/** The prices requestCost reads; a cache price left out or null is the input price. */
export type Prices = Pick<CatalogModel, 'inputMicroPerMTok' | 'outputMicroPerMTok'> &
  Partial<Pick<CatalogModel, 'cachedInputMicroPerMTok' | 'cacheWriteMicroPerMTok' | 'cacheWrite1hMicroPerMTok'>>;

/**
 * Price of a request at catalog prices: each kind of token times its price. Rounded up once per direction, as
 * always (tokenCost): the input side — fresh input, cache reads, 5-minute and 1-hour cache writes — is summed
 * exactly and rounded up once, the output once. So a request is never billed below its true cost nor more than
 * 2 micro-AUD above it; with no cache tokens it costs what it did before cache prices existed; and with cache prices
 * at or below the input price it never costs more than if every input token were fresh. A cache price the catalog
 * leaves empty (null) is the input price. Reasoning tokens are part of the output and cost nothing more.
 */
export function requestCost(model: Prices, usage: Pick<TokenUsage, 'inputTokens' | 'outputTokens'> & Partial<TokenUsage>): Micro {
  const input = model.inputMicroPerMTok;
  const inputSide = tokensCost([
    [usage.inputTokens, input],
    [usage.cachedInputTokens ?? 0, model.cachedInputMicroPerMTok ?? input],
    [usage.cacheWrite5mTokens ?? 0, model.cacheWriteMicroPerMTok ?? input],
    [usage.cacheWrite1hTokens ?? 0, model.cacheWrite1hMicroPerMTok ?? input],
  ]);
  return inputSide + tokenCost(usage.outputTokens, model.outputMicroPerMTok);
}

/**
 * The highest price any input token of this model can cost: the input price, or a cache write price above it
 * (Anthropic's are 1.25× and 2×). The estimate prices its whole input bound at this, so it stays an upper bound
 * whatever part of the prompt the provider reads from or writes to its cache.
 */
export function highestInputPrice(model: Prices): Micro {
  return Math.max(model.inputMicroPerMTok, model.cachedInputMicroPerMTok ?? 0, model.cacheWriteMicroPerMTok ?? 0, model.cacheWrite1hMicroPerMTok ?? 0);
}
