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
