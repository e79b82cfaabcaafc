import { streamHold, type HoldGrowthPlan } from '../domain/billing/growth.js';
import type { CatalogModel } from '../domain/models/models.service.js';
import { highestInputPrice, requestCost } from '../domain/models/pricing.js';
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
/**
 * Inputs whose size the body does not show: a file or document the provider fetches or stores (OpenAI `file` /
 * `input_file` parts, Anthropic `document` blocks other than plain text, any `source` by URL or file id), and
 * server-side tools, whose searches, fetches and code runs the provider bills as input it adds itself.
 */
const UNSIZED_PART_TYPES = new Set(['file', 'input_file', 'container_upload']);
const SERVER_TOOL_TYPE = /^(web_search|web_fetch|code_execution|code_interpreter|file_search|mcp|image_generation|tool_search)/;

/** The input bound, and whether the body holds input whose size it does not show (see UNSIZED_PART_TYPES). */
function walkInput(body: Record<string, unknown>): { tokens: number; unsized: boolean } {
  let tokens = PRIMING_TOKENS;
  // A stored prompt template (Responses API `prompt: {id}`) is text the provider adds from the operator's account.
  let unsized = body.web_search_options !== undefined || (Array.isArray(body.mcp_servers) && body.mcp_servers.length > 0) || isObject(body.prompt);
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    tokens += TOOLS_OVERHEAD_TOKENS;
    unsized ||= body.tools.some((t) => typeof (t as { type?: unknown })?.type === 'string' && SERVER_TOOL_TYPE.test((t as { type: string }).type));
  }
  // An explicit stack, not recursion: a deeply nested body must not overflow the call stack.
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') tokens += Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') tokens += 1;
    else if (Array.isArray(value)) for (const item of value) stack.push(item);
    else if (value && typeof value === 'object') {
      const part = value as { type?: unknown; source?: { type?: unknown }; image_url?: unknown; file_id?: unknown };
      // Content by file id (a Responses `input_image` or `input_file` with `file_id`): stored upstream, size unknown.
      if (typeof part.file_id === 'string') unsized = true;
      if (typeof part.type === 'string') {
        if (UNSIZED_PART_TYPES.has(part.type) || (part.type === 'document' && part.source?.type !== 'text')) unsized = true;
        if (part.source?.type === 'url' || part.source?.type === 'file') unsized = true;
        if (IMAGE_PART_TYPES.has(part.type)) {
          // An image the provider fetches has a size nobody here knows.
          const url = typeof part.image_url === 'string' ? part.image_url : (part.image_url as { url?: unknown } | undefined)?.url;
          if (typeof url === 'string' && !url.startsWith('data:')) unsized = true;
          tokens += IMAGE_TOKEN_BOUND;
          continue;
        }
      }
      for (const [k, v] of Object.entries(value)) {
        tokens += Buffer.byteLength(k, 'utf8');
        stack.push(v);
      }
    }
  }
  return { tokens, unsized };
}

function isObject(value: unknown): boolean {
  return !!value && typeof value === 'object';
}

export function inputTokenBound(body: Record<string, unknown>): number {
  return walkInput(body).tokens;
}

/**
 * Output: the client's max_tokens, clamped to the model's cap (the provider never produces more), else the model's
 * cap, times the number of completions asked for.
 */
export function outputTokenBound(request: MeteredRequest, model: Pick<CatalogModel, 'maxOutputTokens'>): number {
  if (request.maxOutputTokens === 0) return 0;
  const modelCap = model.maxOutputTokens > 0 ? model.maxOutputTokens : null;
  const cap = request.maxOutputTokens === null ? (modelCap ?? DEFAULT_OUTPUT_BOUND) : Math.min(request.maxOutputTokens, modelCap ?? request.maxOutputTokens);
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
  /** What admission holds: the input bound and the output bound — for a stream, only its first output increment. */
  costMicro: Micro;
  /** The input bound at the highest input-side price: the input part of costMicro. */
  inputCostMicro: Micro;
  /** A stream whose output bound is more than one increment: its hold grows as it streams (src/proxy/hold-growth.ts). */
  growth: HoldGrowthPlan | null;
  /**
   * The body does not bound the cost: input it does not show (files, documents and images by URL or id, server-side
   * tools), or output with neither max_tokens nor a catalog cap. Admission then holds the whole remaining headroom.
   */
  unbounded: boolean;
}

/**
 * `storedContextTokens`: what the provider adds from a stored response the request chains on (previous_response_id):
 * that response's whole input and output, as settled (see StoredResponse.contextTokens), which bounds it.
 */
export function estimateRequest(model: CatalogModel, request: MeteredRequest, body: Record<string, unknown>, storedContextTokens = 0): Estimate {
  const walked = walkInput(body);
  const input = { ...walked, tokens: walked.tokens + storedContextTokens };
  const output = outputTokenBound(request, model);
  const outputUncapped = request.maxOutputTokens === null && model.maxOutputTokens <= 0;
  const { heldOutputTokens, growth } = request.stream ? streamHold(output, model.outputMicroPerMTok) : { heldOutputTokens: output, growth: null };
  // Every input token at the highest input-side price (a cache write may cost more than fresh input): an upper
  // bound whatever the provider reads from or writes to its prompt cache.
  const prices = { inputMicroPerMTok: highestInputPrice(model), outputMicroPerMTok: model.outputMicroPerMTok };
  return {
    inputTokenBound: input.tokens,
    outputTokenBound: output,
    costMicro: requestCost(prices, { inputTokens: input.tokens, outputTokens: heldOutputTokens }),
    inputCostMicro: requestCost(prices, { inputTokens: input.tokens, outputTokens: 0 }),
    growth,
    unbounded: input.unsized || outputUncapped,
  };
}
