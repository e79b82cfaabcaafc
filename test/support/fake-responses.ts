/**
 * The OpenAI Responses API part of the fake upstream (fake-upstream.ts serves it): the response objects, the JSON
 * and the streaming event sequence of the API reference ("Streaming events": response.created → in_progress →
 * output_item.added → content_part.added → output_text.delta… → output_text.done → content_part.done →
 * output_item.done → response.completed | response.incomplete), tool calls (function_call items with
 * function_call_arguments deltas), compaction, and the store behind GET/DELETE /v1/responses/{id}.
 *
 * Token accounting (deterministic, see responsesTokens()):
 *   chars        = length of `instructions` + of the `input` text: a string, or per item its `content` (a string or
 *                  the `text` of its parts), a tool call's `arguments` or `input`, a tool output's `output`;
 *   prompt       = max(1, ceil(chars / 4)) + the context of `previous_response_id` (that response's input + output);
 *   outputTokens = min(max_output_tokens ?? ∞, replyTokens + details.reasoningTokens);
 *   cached       = min(details.cacheReadTokens, prompt) of the prompt; reasoning = hidden, part of the output.
 *   The visible reply is outputTokens − reasoning times "tok ", or, for a tool call, the call's arguments.
 *   `status` is "incomplete" (reason max_output_tokens) when max_output_tokens cut the reply short.
 * Modes (fake-upstream.ts) apply as for chat, except: `error-mid-stream` ends with `response.failed` (no usage), and
 * `late-usage` pauses after the terminal event, before the stream ends.
 */
import type { TokenKinds, UsageDetails } from './fake-upstream.js';

const TOKEN = 'tok ';

/**
 * What the fake replies with when a request offers a tool of this name and has no tool output in its input yet: a
 * `function_call` with these arguments for a function tool, a `custom_tool_call` with them as its input for a
 * custom (freeform) tool.
 */
export interface FakeToolCall {
  name: string;
  /** The arguments (a JSON text), or a custom tool's input. */
  arguments: string;
}

export interface StoredFakeResponse {
  response: Record<string, any>;
  /** The request's input items, as GET …/input_items lists them. */
  inputItems: Record<string, any>[];
}

function textOf(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) if (typeof part?.text === 'string') n += part.text.length;
  return n;
}

function responsesChars(body: any): number {
  let n = typeof body?.instructions === 'string' ? body.instructions.length : 0;
  const input = body?.input;
  if (typeof input === 'string') return n + input.length;
  if (!Array.isArray(input)) return n;
  for (const item of input) {
    n += textOf(item?.content);
    if (typeof item?.arguments === 'string') n += item.arguments.length;
    if (typeof item?.input === 'string') n += item.input.length;
    n += typeof item?.output === 'string' ? item.output.length : textOf(item?.output);
  }
  return n;
}

/** The tokens by kind the fake reports for a Responses request, given the context of its previous response. */
export function responsesTokens(body: any, replyTokens: number, details: UsageDetails, previousContext = 0): TokenKinds {
  const prompt = Math.max(1, Math.ceil(responsesChars(body) / 4)) + previousContext;
  const reasoningAsked = Math.max(0, Math.floor(details.reasoningTokens ?? 0));
  const limit = typeof body?.max_output_tokens === 'number' ? body.max_output_tokens : Number.MAX_SAFE_INTEGER;
  const output = Math.min(limit, replyTokens + reasoningAsked);
  const cached = Math.min(Math.max(0, Math.floor(details.cacheReadTokens ?? 0)), prompt);
  return { inputTokens: prompt - cached, cachedInputTokens: cached, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: output, reasoningTokens: Math.min(reasoningAsked, output) };
}

/**
 * The tools a request offers, by name: its `tools`, and those Codex sends in `additional_tools` input items,
 * namespaces opened.
 */
function offeredTools(body: any): Map<string, any> {
  const found = new Map<string, any>();
  const visit = (tools: unknown) => {
    if (!Array.isArray(tools)) return;
    for (const t of tools) {
      if (t?.type === 'namespace') visit(t.tools);
      else if (typeof t?.name === 'string') found.set(t.name, t);
    }
  };
  visit(body?.tools);
  if (Array.isArray(body?.input)) for (const item of body.input) if (item?.type === 'additional_tools') visit(item.tools);
  return found;
}

const TOOL_OUTPUTS = new Set(['function_call_output', 'custom_tool_call_output']);

/** The tool call to make: set, offered by the request, and not answered in its input yet; with the tool's type. */
export function toolCallFor(body: any, call: FakeToolCall | null): (FakeToolCall & { custom: boolean }) | null {
  if (!call) return null;
  const tool = offeredTools(body).get(call.name);
  if (!tool) return null;
  if (Array.isArray(body.input) && body.input.some((item: any) => TOOL_OUTPUTS.has(item?.type))) return null;
  return { ...call, custom: tool.type === 'custom' };
}

export function usageObject(k: TokenKinds): Record<string, unknown> {
  const input = k.inputTokens + k.cachedInputTokens;
  return {
    input_tokens: input, input_tokens_details: { cached_tokens: k.cachedInputTokens },
    output_tokens: k.outputTokens, output_tokens_details: { reasoning_tokens: k.reasoningTokens },
    total_tokens: input + k.outputTokens,
  };
}

export interface BuiltResponse {
  /** The final response object (status completed or incomplete, with usage). */
  response: Record<string, any>;
  /** The SSE events of its stream, in order. */
  events: string[];
  /** Index of the first token-delta event, and the tokens each delta carries. */
  firstDelta: number;
  deltaTokens: number[];
  /** Index of the terminal event (response.completed / response.incomplete). */
  terminal: number;
}

/** A response to `body` and its stream, numbered by `seq`. `deltaSizes` splits the visible tokens into deltas. */
export function buildResponse(body: any, kinds: TokenKinds, replyTokens: number, details: UsageDetails, call: (FakeToolCall & { custom: boolean }) | null, seq: number, deltaSizes: (tokens: number) => number[]): BuiltResponse {
  const id = `resp_fake${seq}`;
  const itemId = call ? `fc_fake${seq}` : `msg_fake${seq}`;
  const incomplete = kinds.outputTokens < replyTokens + (details.reasoningTokens ?? 0);
  const visible = kinds.outputTokens - kinds.reasoningTokens;
  const base = {
    id, object: 'response', created_at: Math.floor(Date.now() / 1000), model: body.model,
    instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null,
    previous_response_id: body.previous_response_id ?? null, parallel_tool_calls: body.parallel_tool_calls ?? true,
    store: body.store !== false, temperature: 1, top_p: 1, tool_choice: body.tool_choice ?? 'auto', tools: body.tools ?? [],
    text: { format: { type: 'text' } }, truncation: 'disabled', reasoning: { effort: null, summary: null }, metadata: {},
    error: null, incomplete_details: null as null | { reason: string }, user: null,
  };
  const pieces: string[] = [];
  const deltaTokens: number[] = [];
  let doneItem: Record<string, any>;
  let addedItem: Record<string, any>;
  if (call) {
    for (let i = 0; i < call.arguments.length; i += 8) { pieces.push(call.arguments.slice(i, i + 8)); deltaTokens.push(1); }
    addedItem = call.custom
      ? { id: itemId, type: 'custom_tool_call', status: 'in_progress', input: '', call_id: `call_fake${seq}`, name: call.name }
      : { id: itemId, type: 'function_call', status: 'in_progress', arguments: '', call_id: `call_fake${seq}`, name: call.name };
    doneItem = { ...addedItem, status: 'completed', ...(call.custom ? { input: call.arguments } : { arguments: call.arguments }) };
  } else {
    for (const n of deltaSizes(visible)) { pieces.push(TOKEN.repeat(n)); deltaTokens.push(n); }
    addedItem = { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] };
    doneItem = { ...addedItem, status: incomplete ? 'incomplete' : 'completed', content: [{ type: 'output_text', text: TOKEN.repeat(visible), annotations: [], logprobs: [] }] };
  }
  const response = {
    ...base, status: incomplete ? 'incomplete' : 'completed', incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    output: [doneItem], usage: usageObject(kinds),
  };
  let n = 0;
  const ev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n++, ...data })}\n\n`;
  const inProgress = { ...base, status: 'in_progress', output: [], usage: null };
  const events = [ev('response.created', { response: inProgress }), ev('response.in_progress', { response: inProgress }), ev('response.output_item.added', { output_index: 0, item: addedItem })];
  if (!call) events.push(ev('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
  const firstDelta = events.length;
  for (const piece of pieces) {
    events.push(call
      ? ev(call.custom ? 'response.custom_tool_call_input.delta' : 'response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta: piece })
      : ev('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: piece, logprobs: [] }));
  }
  if (call) {
    events.push(call.custom
      ? ev('response.custom_tool_call_input.done', { item_id: itemId, output_index: 0, input: call.arguments })
      : ev('response.function_call_arguments.done', { item_id: itemId, output_index: 0, arguments: call.arguments }));
  }
  else {
    events.push(ev('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text: TOKEN.repeat(visible), logprobs: [] }));
    events.push(ev('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: doneItem.content[0] }));
  }
  events.push(ev('response.output_item.done', { output_index: 0, item: doneItem }));
  const terminal = events.length;
  events.push(ev(incomplete ? 'response.incomplete' : 'response.completed', { response }));
  return { response, events, firstDelta, deltaTokens, terminal };
}

/** The event a broken Responses stream ends with: response.failed, without usage (the API reference's shape). */
export function failedEvent(id: string): string {
  const response = { id, object: 'response', status: 'failed', error: { code: 'server_error', message: 'The server had an error while processing your request (fake).' }, output: [], usage: null };
  return `event: response.failed\ndata: ${JSON.stringify({ type: 'response.failed', sequence_number: 999, response })}\n\n`;
}

/** The input of a request as input items (a string input is one user message). */
export function inputItems(body: any, seq: number): Record<string, any>[] {
  const input = typeof body?.input === 'string' ? [{ role: 'user', content: [{ type: 'input_text', text: body.input }] }] : Array.isArray(body?.input) ? body.input : [];
  return input.map((item: any, i: number) => ({ id: `item_fake${seq}_${i}`, type: item?.type ?? 'message', ...item }));
}

export function compaction(body: any, kinds: TokenKinds, seq: number): Record<string, unknown> {
  return {
    id: `cmp_fake${seq}`, object: 'response.compaction', created_at: Math.floor(Date.now() / 1000), model: body.model,
    output: [{ id: `cmp_item_fake${seq}`, type: 'compaction', encrypted_content: Buffer.from(`summary of ${responsesChars(body)} chars`).toString('base64') }],
    usage: usageObject(kinds),
  };
}
