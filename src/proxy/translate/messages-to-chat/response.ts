import { count, field } from '../../upstreams/json-usage.js';
import { isObject, parseJsonObject } from '../shared.js';
import type { Json } from '../types.js';

/** OpenAI finish_reason → Anthropic stop_reason (`stop` does not say whether a stop sequence ended the turn). */
const STOP_REASONS: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

export function stopReason(finish: unknown): string {
  return typeof finish === 'string' ? (STOP_REASONS[finish] ?? 'end_turn') : 'end_turn';
}

/**
 * OpenAI usage → Anthropic usage: OpenAI's prompt_tokens include the cached ones, Anthropic's input_tokens exclude
 * them (cache reads are cache_read_input_tokens). OpenAI writes its cache for free and reports no writes.
 */
export function messagesUsage(usage: unknown): Json {
  const prompt = count(field(usage, 'prompt_tokens'));
  const cached = Math.min(prompt, count(field(field(usage, 'prompt_tokens_details'), 'cached_tokens')));
  return { input_tokens: prompt - cached, cache_creation_input_tokens: 0, cache_read_input_tokens: cached, output_tokens: count(field(usage, 'completion_tokens')) };
}

/** Tool-call arguments as the object Anthropic clients expect; arguments cut off by max_tokens may not parse. */
export function toolInput(args: unknown): Json {
  try {
    const input: unknown = JSON.parse(typeof args === 'string' && args !== '' ? args : '{}');
    return isObject(input) ? input : {};
  } catch {
    return {};
  }
}

/** OpenAI chat.completion → Anthropic message: the content (or refusal) as a text block, tool calls as tool_use. */
export function chatToMessagesResponse(completion: Json): Json {
  const choice = Array.isArray(completion.choices) && isObject(completion.choices[0]) ? completion.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const content: Json[] = [];
  for (const text of [message.content, message.refusal]) if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  if (Array.isArray(message.tool_calls))
    for (const call of message.tool_calls.filter(isObject)) {
      const fn = isObject(call.function) ? call.function : {};
      content.push({ type: 'tool_use', id: call.id, name: fn.name, input: toolInput(fn.arguments) });
    }
  return {
    id: completion.id,
    type: 'message',
    role: 'assistant',
    model: completion.model,
    content,
    stop_reason: stopReason(choice.finish_reason),
    stop_sequence: null,
    usage: messagesUsage(completion.usage),
  };
}

/** OpenAI error (by status, as the SDKs classify them) → Anthropic error type. */
export function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

/** An OpenAI error body `{error:{message, type, code}}` → Anthropic's `{type:"error", error:{type, message}}`. */
export function messagesError(status: number, body: Buffer): Json {
  const error = parseJsonObject(body)?.error;
  const message = isObject(error) && typeof error.message === 'string' ? error.message : `The upstream provider answered ${status}.`;
  return { type: 'error', error: { type: anthropicErrorType(status), message } };
}
