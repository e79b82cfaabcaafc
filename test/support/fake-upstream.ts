/**
 * Fake upstream: a real HTTP server on 127.0.0.1 that imitates the OpenAI API and the Anthropic Messages API
 * closely enough for ModelBridge (and the official SDKs) to talk to it. Used by tests and benchmarks.
 *
 * Endpoints
 *   POST /v1/chat/completions          OpenAI; JSON, or SSE chunks + `data: [DONE]` when `stream: true`
 *                                      (final usage chunk with `choices: []` when stream_options.include_usage)
 *   POST /v1/embeddings                OpenAI; `encoding_format` float (default) or base64
 *   GET  /v1/models                    OpenAI list, or Anthropic list when the request has `anthropic-version`
 *   POST /v1/messages                  Anthropic; JSON, or the real event sequence when `stream: true`
 *   POST /v1/messages/count_tokens     Anthropic; {input_tokens}
 *   POST /v1/responses                 OpenAI Responses API; JSON, or its event sequence when `stream: true`
 *                                      (see fake-responses.ts; stored unless `store: false`)
 *   POST /v1/responses/compact         OpenAI; a `response.compaction` with usage
 *   GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items   the stored responses
 *
 * Token accounting (deterministic, see expectedUsage()):
 *   chars        = total string length (UTF-16 code units) of all text content in the request:
 *                  chat/messages: every message `content` (a string, or the `text` of each part of an array,
 *                  recursing into parts' own `content`) plus a top-level `system` (string or text blocks);
 *                  embeddings: `input` string(s); token-array inputs count 4 chars per token.
 *   inputTokens  = max(1, ceil(chars / 4))
 *   outputTokens = embeddings: 0; otherwise min(limit, replyTokens) where
 *                  limit = max_completion_tokens ?? max_tokens ?? 16 and replyTokens = opts.replyTokens (default 8).
 *   The reply is outputTokens times the word "tok " (streamed one delta per token, or opts.tokensPerDelta per delta). finish_reason/stop_reason is
 *   "length"/"max_tokens" when the limit cut the reply short, else "stop"/"end_turn".
 *   Anthropic streams report usage like the real API: message_start has input_tokens (and output_tokens 1),
 *   message_delta has the final cumulative output_tokens (and repeats the input counts, without the TTL split).
 *
 * Prompt caching and reasoning (setUsageDetails(), see reportedTokens()): of the inputTokens above, the fake reports
 *   `cacheReadTokens` as read from the cache (OpenAI `prompt_tokens_details.cached_tokens`, a part of prompt_tokens;
 *   Anthropic `cache_read_input_tokens`), then `cacheWrite5mTokens` / `cacheWrite1hTokens` as written (Anthropic only:
 *   `cache_creation_input_tokens` with its `cache_creation` split, apart from `input_tokens`, which counts the rest);
 *   OpenAI reports `reasoningTokens` more output tokens as `completion_tokens_details.reasoning_tokens` (hidden: not
 *   in the reply text), within the output limit. Off by default.
 *
 * Modes (setMode(), optionally for one model only; the request header `x-fake-mode` wins over both):
 *   ok | slow | error | status:<code> | hang | abort-mid-stream | error-mid-stream | drip | late-usage | no-usage — see
 *   FakeMode.
 *   Each recorded request says how it ended (`outcome`: 'client-closed' when the proxy went away first, e.g.
 *   because it aborted the upstream request) and how many token deltas were written (`tokensSent`).
 *
 * Reply content (setReplyContent()): instead of "tok " words, a given text (e.g. JSON for a structured-output test) or a
 *   call of a tool (OpenAI `tool_calls`, finish_reason "tool_calls"; Anthropic a `tool_use` block, stop_reason
 *   "tool_use"), streamed in pieces of opts.contentPieceChars (8) characters — arguments as `tool_calls` deltas or
 *   `input_json_delta` events. The usage reported stays the formula above.
 *
 * Optional auth: with opts.apiKey, requests whose `Authorization: Bearer` / `x-api-key` differ get 401.
 *
 * Scripted replies (setResponder()): a function that sees each chat/messages request and may answer it with content
 *   blocks of its choosing — thinking (Anthropic `thinking` blocks with a signature; OpenAI: hidden, reported as
 *   reasoning tokens), text, and tool calls (Anthropic `tool_use` streamed as `input_json_delta`; OpenAI `tool_calls`
 *   streamed as argument deltas) — in each provider's real JSON and SSE shapes. The input kinds are those of
 *   reportedTokens() with the current usage details; the output is the reply's `outputTokens`, else one token per 4
 *   characters of everything the reply writes (a script is not cut at max_tokens). Every answered request records the
 *   usage it reported (`reported`).
 *   setModeForNext() queues modes for the next requests (e.g. one 429, then normal answers).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildResponse, compaction, failedEvent, inputItems, responsesTokens, toolCallFor, type FakeToolCall, type StoredFakeResponse } from './fake-responses.js';

/**
 * - `ok`: answer normally.
 * - `slow`: wait opts.slowMs (300) before the response headers, and opts.slowChunkMs (30) between stream chunks.
 * - `error`: HTTP 500 with an OpenAI- or Anthropic-format error body (depending on the endpoint).
 * - `status:<code>`: HTTP <code> (400..599) with an error body in the endpoint's format.
 * - `hang`: read the request and never answer, until the client disconnects or close() is called.
 * - `abort-mid-stream`: send headers and the first opts.abortAfterTokens (2) token chunks, then destroy the
 *   socket (non-streaming: half of the JSON body, then destroy).
 * - `error-mid-stream`: like abort-mid-stream, but then send an error event in the stream's format (Anthropic:
 *   `event: error` with an overloaded_error; OpenAI: a `data:` chunk with `error`) and end the response normally.
 *   Non-streaming: like `ok`.
 * - `drip`: send one stream chunk every opts.dripMs (50); non-streaming: the JSON body in pieces at that pace.
 * - `no-usage`: an OpenAI chat JSON answer without `usage` (some compatible servers).
 * - `late-usage`: stream every event up to the one that says generation finished (OpenAI: the chunk with
 *   `finish_reason`; Anthropic: `message_delta` with `stop_reason`), then wait opts.lateUsageMs (300) before the
 *   rest (OpenAI: the usage chunk and `[DONE]`; Anthropic: `message_stop`). Non-streaming: like `ok`.
 */
export type FakeMode = 'ok' | 'slow' | 'error' | 'hang' | 'abort-mid-stream' | 'error-mid-stream' | 'drip' | 'late-usage' | 'no-usage' | `status:${number}`;

export interface FakeUpstreamOptions {
  /** Fixed reply length in tokens before max_tokens caps it. Default 8. */
  replyTokens?: number;
  slowMs?: number;
  slowChunkMs?: number;
  dripMs?: number;
  abortAfterTokens?: number;
  /** Tokens per streamed delta (real providers batch several at times). Default 1. */
  tokensPerDelta?: number;
  /** `late-usage`: the pause between the end of generation and the rest of the stream. Default 300. */
  lateUsageMs?: number;
  /** If set, requests must carry this key (Bearer or x-api-key) or get 401. */
  apiKey?: string;
  /** Initial mode. Default 'ok'. */
  mode?: FakeMode;
  /** Model ids listed by GET /v1/models. */
  models?: string[];
  /** Length of embedding vectors when the request has no `dimensions`. Default 8. */
  embeddingDims?: number;
  /** Record requests in `requests` (default true; benchmarks may turn it off to keep memory flat). */
  record?: boolean;
  /** Characters per streamed delta of a reply set with setReplyContent. Default 8. */
  contentPieceChars?: number;
}

/** What the reply says instead of "tok " words (setReplyContent): a text, or a call of a tool. */
export type ReplyContent = { text: string } | { toolCall: { id: string; name: string; arguments: string } };

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Raw URL (path + query). */
  url: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined when empty, the raw string when it is not JSON). */
  body: any;
  mode: FakeMode;
  /** pending → completed (response ended) | client-closed (client went away first) | aborted (by the fake). */
  outcome: 'pending' | 'completed' | 'client-closed' | 'aborted';
  /** Token deltas written to the response so far (streams only). */
  tokensSent: number;
  /** late-usage: how long the fake paused between the end of generation and the rest of the stream. */
  lateUsagePauseMs?: number;
  at: number;
  /** The tokens by kind this request's answer reported (set once a chat/messages answer with usage is produced). */
  reported?: TokenKinds;
}

/** One content block of a scripted reply (setResponder). */
export type ScriptedBlock =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

export interface ScriptedReply {
  blocks: ScriptedBlock[];
  /** The output tokens to report (OpenAI: reasoning added on top). Default: ceil(characters written / 4), at least 1. */
  outputTokens?: number;
}

/** Decides the answer to a chat/messages request; undefined leaves it to the default reply. */
export type Responder = (body: any, api: Format, rec: RecordedRequest) => ScriptedReply | undefined;

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** What the fake reports about prompt caching and hidden reasoning (setUsageDetails). */
export interface UsageDetails {
  cacheReadTokens?: number;
  cacheWrite5mTokens?: number;
  cacheWrite1hTokens?: number;
  /** OpenAI only: hidden reasoning tokens, reported in completion_tokens and its details. */
  reasoningTokens?: number;
  /** Anthropic: report writes as `cache_creation_input_tokens` only, without the TTL split (older API versions). */
  unsplitCacheWrites?: boolean;
}

/** A request's tokens by kind as ModelBridge should read them from the fake's report (see reportedTokens). */
export interface TokenKinds {
  /** The input neither read from nor written to the cache. */
  inputTokens: number;
  cachedInputTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  /** Reasoning included. */
  outputTokens: number;
  reasoningTokens: number;
}

export interface FakeUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/v1' (what the OpenAI SDK / OPENAI_BASE_URL takes). */
  openaiBaseUrl: string;
  /** url (what the Anthropic SDK / ANTHROPIC_BASE_URL takes). */
  anthropicBaseUrl: string;
  requests: RecordedRequest[];
  /** Number of 2xx responses completed (ended) by the fake. */
  readonly served: number;
  /** Set the mode for every request, or only for requests whose body `model` equals `model`. */
  setMode(mode: FakeMode, model?: string): void;
  /** `retry-after` sent with error statuses (`status:<code>`, `error`), or none (the default; reset() restores it). */
  setRetryAfter(value: string | null): void;
  /** Answer chat/messages requests with the responder's replies (null: the default replies again; reset() too). */
  setResponder(responder: Responder | null): void;
  /** The next requests (any endpoint, one each, in order) get these modes, before any other mode applies; reset() clears them. */
  setModeForNext(...modes: FakeMode[]): void;
  /** Change the reply length (reset() restores opts.replyTokens). */
  setReplyTokens(n: number): void;
  /** The usage this fake will report for `body` with its current reply length. */
  expectedUsage(body: unknown): Usage;
  /** Report prompt-cache reads and writes and reasoning tokens from now on (reset() turns it off). */
  setUsageDetails(details: UsageDetails): void;
  /** The tokens by kind this fake will report for `body` in `api`'s format, with its current reply length and details. */
  expectedTokens(body: unknown, api: Format): TokenKinds;
  /** Reply with this content from now on instead of "tok " words (null: the words again; reset() restores them). */
  setReplyContent(content: ReplyContent | null): void;
  /** Responses API: reply with this tool call to a request that offers it and has no output for it (reset() clears it). */
  setResponsesToolCall(call: FakeToolCall | null): void;
  /** Responses API: the tokens by kind this fake will report for `body` (its previous response's context included). */
  expectedResponseTokens(body: unknown): TokenKinds;
  /** Responses API: the responses stored so far, by id (reset() clears them). */
  readonly storedResponses: Map<string, StoredFakeResponse>;
  /** Clear recorded requests and `served`; restore the modes (opts.mode, default ok) and the reply length. */
  reset(): void;
  /** Stop listening and destroy every open socket. */
  close(): Promise<void>;
}

export const DEFAULT_REPLY_TOKENS = 8;
const DEFAULT_MAX_TOKENS = 16;
const TOKEN = 'tok ';
const DEFAULT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'claude-sonnet-4-6', 'claude-haiku-4-5'];

/**
 * What the fake charges for a file the request only names (an OpenAI `file` / `input_file` part, an Anthropic
 * `document` block): like a real provider, the content's tokens — which the request's bytes do not show.
 */
export const FILE_PART_TOKENS = 100_000;
const FILE_PART_TYPES = new Set(['file', 'input_file', 'document']);

function contentChars(c: unknown): number {
  if (typeof c === 'string') return c.length;
  if (!Array.isArray(c)) return 0;
  let n = 0;
  for (const part of c) {
    if (typeof part === 'string') n += part.length;
    else if (part && typeof part === 'object') {
      const p = part as { text?: unknown; content?: unknown; type?: unknown };
      if (typeof p.type === 'string' && FILE_PART_TYPES.has(p.type)) n += 4 * FILE_PART_TOKENS;
      if (typeof p.text === 'string') n += p.text.length;
      if (p.content !== undefined) n += contentChars(p.content);
    }
  }
  return n;
}

function inputChars(body: any): number {
  if (!body || typeof body !== 'object') return 0;
  let n = 0;
  if (Array.isArray(body.messages)) for (const m of body.messages) n += contentChars(m?.content);
  if (body.system !== undefined) n += contentChars(body.system);
  const input = body.input;
  if (typeof input === 'string') n += input.length;
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'string') n += item.length;
      else if (typeof item === 'number') n += 4;
      else if (Array.isArray(item)) n += 4 * item.length;
    }
  }
  return n;
}

function isEmbeddingsBody(body: any): boolean {
  return !!body && typeof body === 'object' && body.input !== undefined && !Array.isArray(body.messages);
}

function outputLimit(body: any): number {
  const l = typeof body?.max_completion_tokens === 'number' ? body.max_completion_tokens
    : typeof body?.max_tokens === 'number' ? body.max_tokens : DEFAULT_MAX_TOKENS;
  return Math.max(0, Math.floor(l));
}

/** The {inputTokens, outputTokens} the fake reports for a request body (see the formula at the top). */
export function expectedUsage(body: unknown, replyTokens: number = DEFAULT_REPLY_TOKENS): Usage {
  const inputTokens = Math.max(1, Math.ceil(inputChars(body) / 4));
  if (isEmbeddingsBody(body)) return { inputTokens, outputTokens: 0 };
  return { inputTokens, outputTokens: Math.min(outputLimit(body), replyTokens) };
}

/**
 * The tokens by kind the fake reports for a request body (see the top): the prompt of expectedUsage split into cache
 * reads, then cache writes (Anthropic only; OpenAI writes its cache for free and reports no writes), then the rest;
 * and OpenAI's hidden reasoning added to the output, within its limit. Embeddings are never cached.
 */
export function reportedTokens(body: unknown, api: Format, replyTokens: number = DEFAULT_REPLY_TOKENS, details: UsageDetails = {}): TokenKinds {
  const { inputTokens: prompt, outputTokens } = expectedUsage(body, replyTokens);
  const none = { inputTokens: prompt, cachedInputTokens: 0, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens, reasoningTokens: 0 };
  if (isEmbeddingsBody(body)) return none;
  const take = (wanted: number | undefined, left: number) => Math.min(Math.max(0, Math.floor(wanted ?? 0)), left);
  const read = take(details.cacheReadTokens, prompt);
  const write5m = api === 'anthropic' ? take(details.cacheWrite5mTokens, prompt - read) : 0;
  const write1h = api === 'anthropic' ? take(details.cacheWrite1hTokens, prompt - read - write5m) : 0;
  const reasoningAsked = api === 'openai' ? take(details.reasoningTokens, Number.MAX_SAFE_INTEGER) : 0;
  const output = Math.min(outputLimit(body), replyTokens + reasoningAsked);
  return {
    inputTokens: prompt - read - write5m - write1h,
    cachedInputTokens: read,
    // Without the TTL split every write reads as a 5-minute one (the default TTL).
    cacheWrite5mTokens: details.unsplitCacheWrites ? write5m + write1h : write5m,
    cacheWrite1hTokens: details.unsplitCacheWrites ? 0 : write1h,
    outputTokens: output,
    reasoningTokens: Math.min(reasoningAsked, output),
  };
}

function parseMode(m: string): FakeMode | undefined {
  if (m === 'ok' || m === 'slow' || m === 'error' || m === 'hang' || m === 'abort-mid-stream' || m === 'error-mid-stream' || m === 'drip' || m === 'late-usage' || m === 'no-usage') return m;
  const match = /^status:(\d{3})$/.exec(m);
  if (match && Number(match[1]) >= 400 && Number(match[1]) <= 599) return m as FakeMode;
  return undefined;
}

export type Format = 'openai' | 'anthropic';

const OPENAI_ERR: Record<number, [type: string, code: string | null]> = {
  400: ['invalid_request_error', null], 401: ['invalid_request_error', 'invalid_api_key'],
  403: ['invalid_request_error', 'unsupported_country_region_territory'], 404: ['invalid_request_error', 'model_not_found'],
  429: ['requests', 'rate_limit_exceeded'],
};
const ANTHROPIC_ERR: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error',
  413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 529: 'overloaded_error',
};

function errorBody(format: Format, status: number, message: string): string {
  if (format === 'anthropic') {
    const type = ANTHROPIC_ERR[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
    return JSON.stringify({ type: 'error', error: { type, message } });
  }
  const [type, code] = OPENAI_ERR[status] ?? [status >= 500 ? 'server_error' : 'invalid_request_error', null];
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/** A streamed string in pieces of up to 8 characters, as providers split text, thinking and tool arguments. */
function scriptedPieces(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 8) out.push(s.slice(i, i + 8));
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => { if (!req.complete) reject(new Error('request aborted')); });
  });
}

/** Resolves after `ms`, or early (with false) when the response is closed. */
function sleep(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onClose = () => { clearTimeout(t); resolve(false); };
    const t = setTimeout(() => { res.off('close', onClose); resolve(!res.destroyed); }, ms);
    res.once('close', onClose);
  });
}

function writeAndFlush(res: ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => { res.write(data, () => resolve()); });
}

function embeddingVector(seed: number, dims: number): number[] {
  const v = new Array<number>(dims);
  for (let i = 0; i < dims; i++) v[i] = Math.round(Math.sin(seed * 31 + i + 1) * 1e4) / 1e4;
  return v;
}

/** `text` in pieces of `size` characters (at least one piece). */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

function openaiReplyMessage(reply: ReplyContent): Record<string, unknown> {
  if ('text' in reply) return { role: 'assistant', content: reply.text, refusal: null, annotations: [] };
  const { id, name, arguments: args } = reply.toolCall;
  return { role: 'assistant', content: null, refusal: null, annotations: [], tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] };
}

/** The deltas of a reply: text pieces as `content`, a tool call as its first delta (id, name) and `arguments` pieces. */
function openaiReplyDeltas(reply: ReplyContent, size: number): Record<string, unknown>[] {
  if ('text' in reply) return pieces(reply.text, size).map((content) => ({ content }));
  const { id, name, arguments: args } = reply.toolCall;
  return [
    { tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] },
    ...pieces(args, size).map((part) => ({ tool_calls: [{ index: 0, function: { arguments: part } }] })),
  ];
}

function anthropicReplyBlock(reply: ReplyContent): Record<string, unknown> {
  if ('text' in reply) return { type: 'text', text: reply.text };
  const { id, name, arguments: args } = reply.toolCall;
  return { type: 'tool_use', id, name, input: JSON.parse(args || '{}') };
}

function anthropicReplyDeltas(reply: ReplyContent, size: number): Record<string, unknown>[] {
  if ('text' in reply) return pieces(reply.text, size).map((text) => ({ type: 'text_delta', text }));
  return pieces(reply.toolCall.arguments, size).map((partial_json) => ({ type: 'input_json_delta', partial_json }));
}

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const cfg = {
    replyTokens: opts.replyTokens ?? DEFAULT_REPLY_TOKENS,
    slowMs: opts.slowMs ?? 300,
    slowChunkMs: opts.slowChunkMs ?? 30,
    dripMs: opts.dripMs ?? 50,
    abortAfterTokens: opts.abortAfterTokens ?? 2,
    lateUsageMs: opts.lateUsageMs ?? 300,
    tokensPerDelta: Math.max(1, Math.floor(opts.tokensPerDelta ?? 1)),
    embeddingDims: opts.embeddingDims ?? 8,
    models: opts.models ?? DEFAULT_MODELS,
  };
  const record = opts.record ?? true;
  const initialMode = opts.mode ?? 'ok';
  if (!parseMode(initialMode)) throw new Error(`unknown fake mode: ${initialMode}`);
  let mode: FakeMode = initialMode;
  let modeByModel = new Map<string, FakeMode>();
  let replyTokens = cfg.replyTokens;
  let retryAfter: string | null = null;
  let details: UsageDetails = {};
  let replyContent: ReplyContent | null = null;
  const pieceChars = Math.max(1, Math.floor(opts.contentPieceChars ?? 8));
  let served = 0;
  let seq = 0;
  let responder: Responder | null = null;
  let nextModes: FakeMode[] = [];
  const requests: RecordedRequest[] = [];
  const open = new Set<ServerResponse>(); // responses not yet closed
  const storedResponses = new Map<string, StoredFakeResponse>();
  let toolCall: FakeToolCall | null = null;

  function sendJson(res: ServerResponse, rec: RecordedRequest, status: number, format: Format, json: string): void {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
      [format === 'anthropic' ? 'request-id' : 'x-request-id']: `req_fake${++seq}`,
      ...(status >= 400 && retryAfter !== null ? { 'retry-after': retryAfter } : {}),
    });
    if (status >= 200 && status < 300) served++;
    rec.outcome = 'completed';
    res.end(json);
  }

  /** Non-2xx JSON bodies and 2xx bodies in the modes that shape the non-streaming response. */
  async function deliverJson(res: ServerResponse, rec: RecordedRequest, format: Format, json: string): Promise<void> {
    if (rec.mode === 'abort-mid-stream') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      await writeAndFlush(res, json.slice(0, json.length >> 1));
      rec.outcome = 'aborted';
      res.destroy();
    } else if (rec.mode === 'drip') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      const pieces = Math.max(2, replyTokens);
      const size = Math.ceil(json.length / pieces);
      for (let i = 0; i < json.length; i += size) {
        if (i > 0 && !(await sleep(res, cfg.dripMs))) return;
        res.write(json.slice(i, i + size));
      }
      served++;
      rec.outcome = 'completed';
      res.end();
    } else sendJson(res, rec, 200, format, json);
  }

  /** A reply of `tokens` tokens as stream deltas of opts.tokensPerDelta tokens each (the last may hold fewer). */
  function deltaSizes(tokens: number): number[] {
    const sizes: number[] = [];
    for (let left = tokens; left > 0; left -= cfg.tokensPerDelta) sizes.push(Math.min(cfg.tokensPerDelta, left));
    return sizes;
  }

  /**
   * Streams SSE `events`: the token deltas from index `firstToken` on, holding `deltaTokens[i]` tokens each (counted
   * in rec.tokensSent; abort-mid-stream stops after opts.abortAfterTokens of them), then the rest; the events from
   * index `afterFinish` on follow the end of generation (the pause of late-usage).
   */
  async function deliverStream(res: ServerResponse, rec: RecordedRequest, format: Format, events: string[], firstToken: number, deltaTokens: number[], afterFinish: number, failure?: string): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      [format === 'anthropic' ? 'request-id' : 'x-request-id']: `req_fake${++seq}`,
    });
    const gap = rec.mode === 'slow' ? cfg.slowChunkMs : rec.mode === 'drip' ? cfg.dripMs : 0;
    const aborting = rec.mode === 'abort-mid-stream' || rec.mode === 'error-mid-stream';
    // when aborting, never send the final event, even if the reply has fewer tokens than abortAfterTokens
    const count = aborting ? Math.min(firstToken + cfg.abortAfterTokens, events.length - 1) : events.length;
    for (let i = 0; i < count; i++) {
      if (gap > 0 && i > 0 && !(await sleep(res, gap))) return;
      if (rec.mode === 'late-usage' && i === afterFinish) {
        const pausedFrom = performance.now();
        if (!(await sleep(res, cfg.lateUsageMs))) return;
        rec.lateUsagePauseMs = performance.now() - pausedFrom;
      }
      if (res.destroyed) return;
      if (aborting) await writeAndFlush(res, events[i]!);
      else res.write(events[i]!);
      rec.tokensSent += deltaTokens[i - firstToken] ?? 0;
    }
    if (res.destroyed) return;
    if (rec.mode === 'error-mid-stream') {
      rec.outcome = 'completed';
      res.end(failure ?? (format === 'anthropic'
        ? 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded (fake)"}}\n\n'
        : 'data: {"error":{"message":"The server had an error while processing your request (fake).","type":"server_error","param":null,"code":null}}\n\n'));
      return;
    }
    if (aborting) {
      rec.outcome = 'aborted';
      res.destroy();
      return;
    }
    served++;
    rec.outcome = 'completed';
    res.end();
  }

  async function chatCompletions(res: ServerResponse, rec: RecordedRequest, body: any): Promise<void> {
    const kinds = reportedTokens(body, 'openai', replyTokens, details);
    rec.reported = kinds;
    const prompt = kinds.inputTokens + kinds.cachedInputTokens;
    const { outputTokens, reasoningTokens } = kinds;
    const visibleTokens = outputTokens - reasoningTokens;
    const finish = replyContent && 'toolCall' in replyContent ? 'tool_calls' : outputTokens < replyTokens + (details.reasoningTokens ?? 0) ? 'length' : 'stop';
    const id = `chatcmpl-fake${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model;
    const usage = { prompt_tokens: prompt, completion_tokens: outputTokens, total_tokens: prompt + outputTokens,
      prompt_tokens_details: { cached_tokens: kinds.cachedInputTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } };
    if (!body.stream) {
      return deliverJson(res, rec, 'openai', JSON.stringify({
        id, object: 'chat.completion', created, model, system_fingerprint: 'fp_fake', service_tier: 'default',
        choices: [{ index: 0, message: replyContent ? openaiReplyMessage(replyContent) : { role: 'assistant', content: TOKEN.repeat(visibleTokens), refusal: null, annotations: [] },
          logprobs: null, finish_reason: finish }],
        ...(rec.mode === 'no-usage' ? {} : { usage }),
      }));
    }
    const withUsage = body.stream_options?.include_usage === true;
    const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"fp_fake","choices":`;
    const tail = withUsage ? ',"usage":null}' : '}';
    const chunk = (delta: string, finishReason: string | null) =>
      `data: ${head}[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finishReason ? `"${finishReason}"` : 'null'}}]${tail}\n\n`;
    const events = [chunk('{"role":"assistant","content":"","refusal":null}', null)];
    const deltas = replyContent ? [] : deltaSizes(visibleTokens);
    for (const n of deltas) events.push(chunk(`{"content":"${TOKEN.repeat(n)}"}`, null));
    if (replyContent) for (const delta of openaiReplyDeltas(replyContent, pieceChars)) events.push(chunk(JSON.stringify(delta), null));
    events.push(chunk('{}', finish));
    const afterFinish = events.length;
    if (withUsage) events.push(`data: ${head}[],"usage":${JSON.stringify(usage)}}\n\n`);
    events.push('data: [DONE]\n\n');
    return deliverStream(res, rec, 'openai', events, 1, deltas, afterFinish);
  }

  async function messages(res: ServerResponse, rec: RecordedRequest, body: any): Promise<void> {
    const kinds = reportedTokens(body, 'anthropic', replyTokens, details);
    rec.reported = kinds;
    const { outputTokens } = kinds;
    const stop = replyContent && 'toolCall' in replyContent ? 'tool_use' : outputTokens < replyTokens ? 'max_tokens' : 'end_turn';
    const id = `msg_fake${++seq}`;
    const writes = kinds.cacheWrite5mTokens + kinds.cacheWrite1hTokens;
    const input = { input_tokens: kinds.inputTokens, cache_creation_input_tokens: writes, cache_read_input_tokens: kinds.cachedInputTokens };
    const split = details.unsplitCacheWrites ? {} : { cache_creation: { ephemeral_5m_input_tokens: kinds.cacheWrite5mTokens, ephemeral_1h_input_tokens: kinds.cacheWrite1hTokens } };
    const usage = { ...input, ...split, output_tokens: outputTokens, service_tier: 'standard' };
    if (!body.stream) {
      return deliverJson(res, rec, 'anthropic', JSON.stringify({
        id, type: 'message', role: 'assistant', model: body.model, content: [replyContent ? anthropicReplyBlock(replyContent) : { type: 'text', text: TOKEN.repeat(outputTokens) }],
        stop_reason: stop, stop_sequence: null, usage,
      }));
    }
    const ev = (type: string, data: string) => `event: ${type}\ndata: ${data}\n\n`;
    const events = [
      ev('message_start', JSON.stringify({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model: body.model,
        content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: Math.min(1, outputTokens) } } })),
      ev('content_block_start', JSON.stringify({ type: 'content_block_start', index: 0, content_block: replyContent ? { ...anthropicReplyBlock(replyContent), ...('toolCall' in replyContent ? { input: {} } : { text: '' }) } : { type: 'text', text: '' } })),
      ev('ping', '{"type": "ping"}'),
    ];
    const deltas = replyContent ? [] : deltaSizes(outputTokens);
    if (replyContent) for (const delta of anthropicReplyDeltas(replyContent, pieceChars)) events.push(ev('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: 0, delta })));
    for (const n of deltas) events.push(ev('content_block_delta', `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"${TOKEN.repeat(n)}"}}`));
    events.push(
      ev('content_block_stop', '{"type":"content_block_stop","index":0}'),
      ev('message_delta', JSON.stringify({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { ...input, output_tokens: outputTokens } })),
      ev('message_stop', '{"type":"message_stop"}'),
    );
    return deliverStream(res, rec, 'anthropic', events, 3, deltas, events.length - 1);
  }

  function previousContext(body: any): number {
    const usage = typeof body?.previous_response_id === 'string' ? storedResponses.get(body.previous_response_id)?.response.usage : undefined;
    return usage ? usage.input_tokens + usage.output_tokens : 0;
  }

  function responseTokens(body: any) {
    return responsesTokens(body, replyTokens, details, previousContext(body));
  }

  async function responses(res: ServerResponse, rec: RecordedRequest, method: string, path: string, body: any): Promise<void> {
    const notFound = (what: string) => sendJson(res, rec, 404, 'openai', errorBody('openai', 404, what));
    const stored = /^\/v1\/responses\/([^/]+)(\/input_items)?$/.exec(path);
    if (method === 'POST' && path === '/v1/responses/compact') {
      rec.reported = responseTokens(body);
      return deliverJson(res, rec, 'openai', JSON.stringify(compaction(body, rec.reported, ++seq)));
    }
    if (method === 'POST' && path === '/v1/responses') {
      if (body.previous_response_id !== undefined && !storedResponses.has(body.previous_response_id))
        return sendJson(res, rec, 400, 'openai', errorBody('openai', 400, `Previous response with id '${body.previous_response_id}' not found.`));
      const n = ++seq;
      rec.reported = responseTokens(body);
      const built = buildResponse(body, rec.reported, replyTokens, details, toolCallFor(body, toolCall), n, deltaSizes);
      if (body.store !== false) storedResponses.set(built.response.id, { response: built.response, inputItems: inputItems(body, n) });
      if (!body.stream) return deliverJson(res, rec, 'openai', JSON.stringify(built.response));
      // late-usage: the pause comes after the terminal event (which carries the usage), before the stream ends.
      return deliverStream(res, rec, 'openai', [...built.events, ''], built.firstDelta, built.deltaTokens, built.terminal + 1, failedEvent(built.response.id));
    }
    const found = stored && storedResponses.get(decodeURIComponent(stored[1]!));
    if (!stored || !found) return notFound(stored ? `Response with id '${stored[1]}' not found.` : `Unknown request URL: ${method} ${path}`);
    if (method === 'GET' && stored[2]) {
      const data = found.inputItems;
      return deliverJson(res, rec, 'openai', JSON.stringify({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: false }));
    }
    if (method === 'GET') return deliverJson(res, rec, 'openai', JSON.stringify(found.response));
    if (method === 'DELETE' && !stored[2]) {
      storedResponses.delete(found.response.id);
      return deliverJson(res, rec, 'openai', JSON.stringify({ id: found.response.id, object: 'response', deleted: true }));
    }
    return notFound(`Unknown request URL: ${method} ${path}`);
  }

  function embeddings(res: ServerResponse, rec: RecordedRequest, body: any): Promise<void> {
    const { inputTokens } = expectedUsage(body, replyTokens);
    const inputs: unknown[] = typeof body.input === 'string' || (Array.isArray(body.input) && typeof body.input[0] === 'number')
      ? [body.input] : body.input;
    const dims = typeof body.dimensions === 'number' && body.dimensions > 0 ? body.dimensions : cfg.embeddingDims;
    const base64 = body.encoding_format === 'base64';
    const data = inputs.map((_, index) => {
      const v = embeddingVector(index, dims);
      const embedding = base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
      return { object: 'embedding', index, embedding };
    });
    return deliverJson(res, rec, 'openai', JSON.stringify({
      object: 'list', data, model: body.model, usage: { prompt_tokens: inputTokens, total_tokens: inputTokens },
    }));
  }

  function models(res: ServerResponse, rec: RecordedRequest, format: Format): Promise<void> {
    const json = format === 'anthropic'
      ? JSON.stringify({ data: cfg.models.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' })),
        has_more: false, first_id: cfg.models[0] ?? null, last_id: cfg.models[cfg.models.length - 1] ?? null })
      : JSON.stringify({ object: 'list', data: cfg.models.map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'fake' })) });
    return deliverJson(res, rec, format, json);
  }

  /** The tokens a scripted reply reports: input as reportedTokens(), output as the reply says (see the top). */
  function scriptedTokens(body: any, api: Format, reply: ScriptedReply): TokenKinds {
    const kinds = reportedTokens(body, api, replyTokens, details);
    const written = reply.blocks.reduce((n, b) => n + (b.type === 'text' ? b.text.length : b.type === 'thinking' ? b.thinking.length : b.name.length + JSON.stringify(b.input).length), 0);
    const visible = reply.outputTokens ?? Math.max(1, Math.ceil(written / 4));
    const reasoning = api === 'openai' ? Math.max(0, Math.floor(details.reasoningTokens ?? 0)) : 0;
    return { ...kinds, outputTokens: visible + reasoning, reasoningTokens: reasoning };
  }

  async function scriptedMessages(res: ServerResponse, rec: RecordedRequest, body: any, reply: ScriptedReply): Promise<void> {
    const kinds = scriptedTokens(body, 'anthropic', reply);
    rec.reported = kinds;
    const id = `msg_fake${++seq}`;
    const blocks = reply.blocks.map((b) => (b.type === 'tool_use' ? { ...b, id: b.id ?? `toolu_fake${++seq}` } : b));
    const stop = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
    const writes = kinds.cacheWrite5mTokens + kinds.cacheWrite1hTokens;
    const input = { input_tokens: kinds.inputTokens, cache_creation_input_tokens: writes, cache_read_input_tokens: kinds.cachedInputTokens };
    const split = details.unsplitCacheWrites ? {} : { cache_creation: { ephemeral_5m_input_tokens: kinds.cacheWrite5mTokens, ephemeral_1h_input_tokens: kinds.cacheWrite1hTokens } };
    const usage = { ...input, ...split, output_tokens: kinds.outputTokens, service_tier: 'standard' };
    const signature = (i: number) => Buffer.from(`fake-signature-${id}-${i}`).toString('base64');
    const content = blocks.map((b, i) => (b.type === 'thinking' ? { type: 'thinking', thinking: b.thinking, signature: signature(i) } : b));
    if (!body.stream) {
      return deliverJson(res, rec, 'anthropic', JSON.stringify({
        id, type: 'message', role: 'assistant', model: body.model, content, stop_reason: stop, stop_sequence: null, usage,
      }));
    }
    const ev = (data: object) => `event: ${(data as { type: string }).type}\ndata: ${JSON.stringify(data)}\n\n`;
    const events = [
      ev({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null,
        stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }),
      ev({ type: 'ping' }),
    ];
    blocks.forEach((b, index) => {
      if (b.type === 'thinking') {
        events.push(ev({ type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } }));
        for (const piece of scriptedPieces(b.thinking)) events.push(ev({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: piece } }));
        events.push(ev({ type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: signature(index) } }));
      } else if (b.type === 'text') {
        events.push(ev({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } }));
        for (const piece of scriptedPieces(b.text)) events.push(ev({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } }));
      } else {
        events.push(ev({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }));
        for (const piece of scriptedPieces(JSON.stringify(b.input))) events.push(ev({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } }));
      }
      events.push(ev({ type: 'content_block_stop', index }));
    });
    events.push(
      ev({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { ...input, output_tokens: kinds.outputTokens } }),
      ev({ type: 'message_stop' }),
    );
    return deliverStream(res, rec, 'anthropic', events, 2, [], events.length - 1);
  }

  async function scriptedChat(res: ServerResponse, rec: RecordedRequest, body: any, reply: ScriptedReply): Promise<void> {
    const kinds = scriptedTokens(body, 'openai', reply);
    rec.reported = kinds;
    const prompt = kinds.inputTokens + kinds.cachedInputTokens;
    const id = `chatcmpl-fake${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const text = reply.blocks.filter((b) => b.type === 'text').map((b) => (b as { text: string }).text).join('');
    const calls = reply.blocks.filter((b): b is Extract<ScriptedBlock, { type: 'tool_use' }> => b.type === 'tool_use')
      .map((b) => ({ id: b.id ?? `call_fake${++seq}`, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input) } }));
    const finish = calls.length > 0 ? 'tool_calls' : 'stop';
    const usage = { prompt_tokens: prompt, completion_tokens: kinds.outputTokens, total_tokens: prompt + kinds.outputTokens,
      prompt_tokens_details: { cached_tokens: kinds.cachedInputTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: kinds.reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } };
    if (!body.stream) {
      return deliverJson(res, rec, 'openai', JSON.stringify({
        id, object: 'chat.completion', created, model: body.model, system_fingerprint: 'fp_fake', service_tier: 'default',
        choices: [{ index: 0, message: { role: 'assistant', content: calls.length > 0 && text === '' ? null : text, refusal: null, annotations: [],
          ...(calls.length > 0 ? { tool_calls: calls } : {}) }, logprobs: null, finish_reason: finish }],
        usage,
      }));
    }
    const withUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: object[], extra: object = withUsage ? { usage: null } : {}) => `data: ${JSON.stringify({
      id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: 'fp_fake', choices, ...extra })}\n\n`;
    const delta = (d: object, finishReason: string | null = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finishReason }]);
    const events = [delta({ role: 'assistant', content: calls.length > 0 && text === '' ? null : '', refusal: null })];
    for (const piece of text === '' ? [] : scriptedPieces(text)) events.push(delta({ content: piece }));
    calls.forEach((c, index) => {
      events.push(delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }));
      for (const piece of scriptedPieces(c.function.arguments)) events.push(delta({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });
    events.push(delta({}, finish));
    const afterFinish = events.length;
    if (withUsage) events.push(chunk([], { usage }));
    events.push('data: [DONE]\n\n');
    return deliverStream(res, rec, 'openai', events, 1, [], afterFinish);
  }

  function checkBody(path: string, body: any): string | undefined {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return 'request body must be a JSON object';
    if (typeof body.model !== 'string') return 'model: field required';
    if (path === '/v1/embeddings') return body.input === undefined ? 'input: field required' : undefined;
    if (!Array.isArray(body.messages)) return 'messages: field required';
    if (path === '/v1/messages' && typeof body.max_tokens !== 'number') return 'max_tokens: field required';
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    const raw = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
    let body: any;
    let badJson = false;
    if (raw.length > 0) {
      try { body = JSON.parse(raw); } catch { body = raw; badJson = true; }
    }
    const format: Format = path.startsWith('/v1/messages') || (path === '/v1/models' && req.headers['anthropic-version'] !== undefined)
      ? 'anthropic' : 'openai';
    const headerMode = req.headers['x-fake-mode'];
    const requested = typeof headerMode === 'string' ? parseMode(headerMode) : undefined;
    const rec: RecordedRequest = {
      method, path, url, headers: req.headers, body,
      mode: requested ?? nextModes.shift() ?? (typeof body?.model === 'string' ? modeByModel.get(body.model) : undefined) ?? mode,
      outcome: 'pending', tokensSent: 0, at: Date.now(),
    };
    if (record) requests.push(rec);
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (rec.outcome === 'pending') rec.outcome = 'client-closed';
    });

    if (typeof headerMode === 'string' && !requested) return sendJson(res, rec, 400, format, errorBody(format, 400, `unknown x-fake-mode: ${headerMode}`));
    if (opts.apiKey !== undefined) {
      const auth = req.headers.authorization;
      const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : req.headers['x-api-key'];
      if (key !== opts.apiKey) return sendJson(res, rec, 401, format, errorBody(format, 401, 'Incorrect API key provided'));
    }
    const m = rec.mode;
    if (m === 'hang') return; // rec.outcome flips to client-closed when the socket goes away
    if (m === 'slow' && !(await sleep(res, cfg.slowMs))) return;
    if (m === 'error') return sendJson(res, rec, 500, format, errorBody(format, 500, 'The server had an error while processing your request (fake).'));
    if (m.startsWith('status:')) {
      const status = Number(m.slice(7));
      return sendJson(res, rec, status, format, errorBody(format, status, `Fake upstream error with status ${status}`));
    }

    if (path === '/v1/responses' || path.startsWith('/v1/responses/')) {
      if (badJson) return sendJson(res, rec, 400, 'openai', errorBody('openai', 400, 'We could not parse the JSON body of your request.'));
      if (method === 'POST' && typeof body?.model !== 'string') return sendJson(res, rec, 400, 'openai', errorBody('openai', 400, 'model: field required'));
      return responses(res, rec, method, path, body);
    }
    const route = `${method} ${path}`;
    if (route === 'GET /v1/models') return models(res, rec, format);
    const known = route === 'POST /v1/chat/completions' || route === 'POST /v1/embeddings' || route === 'POST /v1/messages' || route === 'POST /v1/messages/count_tokens';
    if (!known) return sendJson(res, rec, 404, format, errorBody(format, 404, `Unknown request URL: ${method} ${path}`));
    if (badJson) return sendJson(res, rec, 400, format, errorBody(format, 400, 'We could not parse the JSON body of your request.'));
    const problem = checkBody(path, body);
    if (problem) return sendJson(res, rec, 400, format, errorBody(format, 400, problem));
    if (path === '/v1/messages/count_tokens') return deliverJson(res, rec, 'anthropic', JSON.stringify({ input_tokens: expectedUsage(body).inputTokens }));
    const scripted = path !== '/v1/embeddings' ? responder?.(body, format, rec) : undefined;
    if (scripted) return path === '/v1/chat/completions' ? scriptedChat(res, rec, body, scripted) : scriptedMessages(res, rec, body, scripted);
    if (path === '/v1/chat/completions') return chatCompletions(res, rec, body);
    if (path === '/v1/embeddings') return embeddings(res, rec, body);
    return messages(res, rec, body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.destroyed) return;
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `fake upstream bug: ${String(err)}`, type: 'server_error', param: null, code: null } }));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: url,
    requests,
    get served() { return served; },
    setMode(next: FakeMode, model?: string) {
      if (!parseMode(next)) throw new Error(`unknown fake mode: ${next}`);
      if (model === undefined) mode = next;
      else modeByModel.set(model, next);
    },
    setReplyTokens(n: number) { replyTokens = Math.max(0, Math.floor(n)); },
    setRetryAfter(value: string | null) { retryAfter = value; },
    expectedUsage(body: unknown) { return expectedUsage(body, replyTokens); },
    setUsageDetails(next: UsageDetails) { details = { ...next }; },
    setReplyContent(next: ReplyContent | null) { replyContent = next; },
    expectedTokens(body: unknown, api: Format) { return reportedTokens(body, api, replyTokens, details); },
    setResponsesToolCall(call: FakeToolCall | null) { toolCall = call; },
    expectedResponseTokens(body: unknown) { return responseTokens(body); },
    storedResponses,
    reset() {
      details = {};
      replyContent = null;
      storedResponses.clear();
      toolCall = null;
      requests.length = 0;
      served = 0;
      mode = initialMode;
      modeByModel = new Map();
      replyTokens = cfg.replyTokens;
      retryAfter = null;
      responder = null;
      nextModes = [];
    },
    setResponder(next: Responder | null) { responder = next; },
    setModeForNext(...modes: FakeMode[]) {
      for (const m of modes) if (!parseMode(m)) throw new Error(`unknown fake mode: ${m}`);
      nextModes.push(...modes);
    },
    close() {
      // resolves once the server stopped and every pending response saw its 'close' (outcomes are final)
      if (!closing) {
        const pending = [...open].map((res) => new Promise<void>((resolve) => res.once('close', () => resolve())));
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        closing = Promise.all([stopped, ...pending]).then(() => undefined);
      }
      return closing;
    },
  };
}
