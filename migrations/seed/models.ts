/**
 * The initial model catalog (admins edit it afterwards). Prices are micro-AUD per million tokens, converted
 * from the providers' USD list prices at about 1.55 AUD/USD and rounded.
 */
export const seedModels = [
  { id: 'gpt-4o', provider: 'openai', upstream_model: 'gpt-4o', input_micro_per_mtok: 3_875_000, output_micro_per_mtok: 15_500_000, max_output_tokens: 16384 },
  { id: 'gpt-4o-mini', provider: 'openai', upstream_model: 'gpt-4o-mini', input_micro_per_mtok: 232_500, output_micro_per_mtok: 930_000, max_output_tokens: 16384 },
  { id: 'gpt-4.1', provider: 'openai', upstream_model: 'gpt-4.1', input_micro_per_mtok: 3_100_000, output_micro_per_mtok: 12_400_000, max_output_tokens: 32768 },
  { id: 'text-embedding-3-small', provider: 'openai', upstream_model: 'text-embedding-3-small', input_micro_per_mtok: 31_000, output_micro_per_mtok: 0, max_output_tokens: 0 },
  { id: 'claude-sonnet-4-5', provider: 'anthropic', upstream_model: 'claude-sonnet-4-5', input_micro_per_mtok: 4_650_000, output_micro_per_mtok: 23_250_000, max_output_tokens: 64000 },
  { id: 'claude-haiku-4-5', provider: 'anthropic', upstream_model: 'claude-haiku-4-5', input_micro_per_mtok: 1_550_000, output_micro_per_mtok: 7_750_000, max_output_tokens: 64000 },
] as const;

/**
 * Prompt-cache prices of the seeded models (micro-AUD per million tokens, the same 1.55 AUD/USD), set by the
 * migration that adds the cache price columns. A price left out (or null) is billed at the model's input price.
 * Sources (USD list prices, 2026-12): Anthropic bills cache reads at 0.1× the input price, 5-minute cache writes at
 * 1.25× and 1-hour writes at 2× (docs.anthropic.com, prompt caching / pricing); OpenAI bills cached input at 50% of
 * the input price for gpt-4o and gpt-4o-mini (openai.com/index/api-prompt-caching: $1.25, $0.075) and 25% for the
 * gpt-4.1 family ($0.50), and has no cache-write price (writes are not reported; embeddings are not cached).
 */
export interface SeedCachePrices {
  cached_input_micro_per_mtok: number | null;
  cache_write_micro_per_mtok: number | null;
  cache_write_1h_micro_per_mtok: number | null;
}

/** Anthropic's cache prices from a model's input price (micro-AUD per Mtok: every seeded price divides exactly). */
export function anthropicCachePrices(inputMicroPerMTok: number): SeedCachePrices {
  return {
    cached_input_micro_per_mtok: inputMicroPerMTok / 10,
    cache_write_micro_per_mtok: (inputMicroPerMTok * 5) / 4,
    cache_write_1h_micro_per_mtok: inputMicroPerMTok * 2,
  };
}

const openaiCached = (microPerMTok: number): SeedCachePrices => ({
  cached_input_micro_per_mtok: microPerMTok, cache_write_micro_per_mtok: null, cache_write_1h_micro_per_mtok: null,
});

export const seedCachePrices: Record<string, SeedCachePrices> = {
  'gpt-4o': openaiCached(1_937_500), // $1.25
  'gpt-4o-mini': openaiCached(116_250), // $0.075
  'gpt-4.1': openaiCached(775_000), // $0.50
  'claude-sonnet-4-5': anthropicCachePrices(4_650_000), // read $0.30, 5m write $3.75, 1h write $6
  'claude-haiku-4-5': anthropicCachePrices(1_550_000), // read $0.10, 5m write $1.25, 1h write $2
};
