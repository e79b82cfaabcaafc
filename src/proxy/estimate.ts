import { requestCost, type CatalogModel } from '../domain/models/models.service.js';
import type { Micro } from '../domain/money.js';
import type { MeteredRequest } from './endpoints.js';

/**
 * The estimate behind a request's hold: an UPPER BOUND of what it can cost. The limit guarantee (final spend ≤
 * limit + one request's cost) holds only if no request costs more than its estimate, so every rule here errs high.
 *
 * Input: every token covers at least one byte of UTF-8 text, so the byte length of the body's strings (keys
 * included: they also cover the per-message framing tokens) bounds the text tokens; numbers (token-id inputs)
 * count one each. Images are the exception — a short URL can cost a thousand tokens and a base64 image is far
 * larger in bytes than in tokens — so each image part counts a fixed bound instead.
 */
export const PRIMING_TOKENS = 16;
export const IMAGE_TOKEN_BOUND = 6_000;
/** Anthropic prepends a tool-use system prompt of a few hundred tokens when `tools` are given. */
export const TOOLS_OVERHEAD_TOKENS = 1_024;
/** Output cap for a chat model whose catalog entry has none (0). */
export const DEFAULT_OUTPUT_BOUND = 4_096;

const IMAGE_PART_TYPES = new Set(['image_url', 'image', 'input_image']);

export function inputTokenBound(body: Record<string, unknown>): number {
  let tokens = PRIMING_TOKENS;
  if (Array.isArray(body.tools) && body.tools.length > 0) tokens += TOOLS_OVERHEAD_TOKENS;
  // An explicit stack, not recursion: a deeply nested body must not overflow the call stack.
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') tokens += Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') tokens += 1;
    else if (Array.isArray(value)) for (const item of value) stack.push(item);
    else if (value && typeof value === 'object') {
      const type = (value as { type?: unknown }).type;
      if (typeof type === 'string' && IMAGE_PART_TYPES.has(type)) {
        tokens += IMAGE_TOKEN_BOUND;
        continue;
      }
      for (const [k, v] of Object.entries(value)) {
        tokens += Buffer.byteLength(k, 'utf8');
        stack.push(v);
      }
    }
  }
  return tokens;
}

/** Output: the client's max_tokens, else the model's cap, times the number of completions asked for. */
export function outputTokenBound(request: MeteredRequest, model: Pick<CatalogModel, 'maxOutputTokens'>): number {
  if (request.maxOutputTokens === 0) return 0;
  const cap = request.maxOutputTokens ?? (model.maxOutputTokens > 0 ? model.maxOutputTokens : DEFAULT_OUTPUT_BOUND);
  return cap * request.choices;
}

/**
 * A plausible token count from an upper bound (about four bytes per token), used only when a request ends before
 * the provider reported usage (client abort, broken stream): such charges are flagged `estimated`.
 */
export function approxTokens(bound: number): number {
  return Math.ceil(bound / 4);
}

export interface Estimate {
  inputTokenBound: number;
  outputTokenBound: number;
  costMicro: Micro;
}

export function estimateRequest(model: CatalogModel, request: MeteredRequest, body: Record<string, unknown>): Estimate {
  const input = inputTokenBound(body);
  const output = outputTokenBound(request, model);
  return { inputTokenBound: input, outputTokenBound: output, costMicro: requestCost(model, input, output) };
}
