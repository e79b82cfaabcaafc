import { count, field } from '../json-usage.js';
import type { TokenUsage } from '../types.js';

/**
 * An OpenAI usage object (Chat Completions and embeddings: `prompt_tokens` / `completion_tokens`; the Responses API:
 * `input_tokens` / `output_tokens`). Careful: the prompt count INCLUDES its `cached_tokens` (so the fresh input is the
 * difference), and the completion count includes the hidden `reasoning_tokens`. A detail larger than its total (never
 * from OpenAI) is capped at it, so no token moves to a cheaper kind than the total allows.
 */
export function usageOf(u: Record<string, unknown>): TokenUsage {
  const prompt = count(u.prompt_tokens ?? u.input_tokens);
  const completion = count(u.completion_tokens ?? u.output_tokens);
  const cached = Math.min(prompt, count(field(u.prompt_tokens_details ?? u.input_tokens_details, 'cached_tokens')));
  const reasoning = Math.min(completion, count(field(u.completion_tokens_details ?? u.output_tokens_details, 'reasoning_tokens')));
  // OpenAI charges nothing extra for writing its prompt cache and does not report writes.
  return { inputTokens: prompt - cached, cachedInputTokens: cached, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: completion, reasoningTokens: reasoning };
}
