import { count } from '../../upstreams/json-usage.js';
import { isObject, parseJsonObject } from '../shared.js';
import type { Json } from '../types.js';

/**
 * Anthropic stop_reason → OpenAI finish_reason. A stop sequence is OpenAI's `stop` too; a refusal is what OpenAI
 * reports as `content_filter`; a context window that ran out is a `length`. pause_turn (a server tool's long turn)
 * cannot occur: server tools are never sent from an OpenAI request.
 */
export const FINISH_REASONS: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

export function finishReason(stopReason: unknown): string | null {
  return typeof stopReason === 'string' ? (FINISH_REASONS[stopReason] ?? 'stop') : null;
}

/**
 * Anthropic usage → OpenAI usage. Anthropic's input_tokens excludes the cache, OpenAI's prompt_tokens includes it:
 * prompt = fresh + cache reads + cache writes, of which cached_tokens are the reads (and cache_write_tokens, as
 * OpenRouter reports them, the writes).
 */
export function chatUsage(usage: Json): Json {
  const reads = count(usage.cache_read_input_tokens);
  const writes = count(usage.cache_creation_input_tokens);
  const prompt = count(usage.input_tokens) + reads + writes;
  const completion = count(usage.output_tokens);
  const thinking = isObject(usage.output_tokens_details) ? count(usage.output_tokens_details.thinking_tokens) : 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: reads, cache_write_tokens: writes },
    completion_tokens_details: { reasoning_tokens: thinking },
  };
}

/**
 * Thinking blocks with their signatures, as `thinking_blocks` (LiteLLM's field): a client that sends the assistant
 * message back as it got it lets Claude continue a tool-use loop with its thinking, which Anthropic requires.
 */
export function isThinkingBlock(block: Json): boolean {
  return block.type === 'thinking' || block.type === 'redacted_thinking';
}

export function toolCall(block: Json, index?: number): Json {
  return {
    ...(index === undefined ? {} : { index }),
    id: block.id,
    type: 'function',
    function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
  };
}

/**
 * Anthropic Messages response → OpenAI chat.completion. Text blocks make the content, tool_use blocks the
 * tool_calls, thinking the `reasoning_content` (the field DeepSeek, LiteLLM and OpenRouter clients read).
 */
export function messagesToChatResponse(message: Json): Json {
  const content = Array.isArray(message.content) ? message.content.filter(isObject) : [];
  const text = content.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const thinking = content.filter((b) => b.type === 'thinking').map((b) => String(b.thinking ?? '')).join('');
  const calls = content.filter((b) => b.type === 'tool_use').map((b) => toolCall(b));
  const reply: Json = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text, refusal: null };
  if (thinking !== '') reply.reasoning_content = thinking;
  const thinkingBlocks = content.filter(isThinkingBlock);
  if (thinkingBlocks.length > 0) reply.thinking_blocks = thinkingBlocks;
  if (calls.length > 0) reply.tool_calls = calls;
  return {
    id: message.id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: message.model,
    choices: [{ index: 0, message: reply, logprobs: null, finish_reason: finishReason(message.stop_reason) ?? 'stop' }],
    usage: chatUsage(isObject(message.usage) ? message.usage : {}),
  };
}

/** Anthropic error type → OpenAI error type (the SDKs pick their error class by HTTP status; `type` is for people). */
const ERROR_TYPES: Record<string, string> = {
  invalid_request_error: 'invalid_request_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  not_found_error: 'invalid_request_error',
  request_too_large: 'invalid_request_error',
  rate_limit_error: 'rate_limit_error',
  billing_error: 'insufficient_quota',
  api_error: 'server_error',
  overloaded_error: 'server_error',
  timeout_error: 'server_error',
};

/** An Anthropic error body `{type:"error", error:{type, message}}` → OpenAI's `{error:{message, type, code, param}}`. */
export function chatError(status: number, body: Buffer): Json {
  const error = parseJsonObject(body)?.error;
  const type = isObject(error) && typeof error.type === 'string' ? error.type : status >= 500 ? 'api_error' : 'invalid_request_error';
  const message = isObject(error) && typeof error.message === 'string' ? error.message : `The upstream provider answered ${status}.`;
  return { error: { message, type: ERROR_TYPES[type] ?? 'invalid_request_error', code: type, param: null } };
}
