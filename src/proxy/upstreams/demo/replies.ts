import type { Response } from 'express';
import { createHash } from 'node:crypto';
import { randomBase62 } from '../../../domain/ids.js';

/** What the demo reads from a request body (the proxy has already validated it). */
export interface DemoBody {
  model?: string;
  messages?: unknown;
  system?: unknown;
  input?: unknown;
  instructions?: unknown;
  max_tokens?: number;
  max_output_tokens?: number;
  max_completion_tokens?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  encoding_format?: string;
  dimensions?: number;
}

export function replyWords(body: DemoBody, provider: 'OpenAI' | 'Anthropic'): string[] {
  const variable = provider === 'OpenAI' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY';
  const text =
    `[ModelBridge demo] This reply comes from ModelBridge's built-in demo upstream, not from ${body.model ?? 'a model'}. ` +
    `No ${provider} provider is configured, so your request was authenticated, metered and answered here. ` +
    `Set ${variable} to reach the real model.`;
  const limit = body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens ?? Number.MAX_SAFE_INTEGER;
  return text.split(' ').slice(0, Math.max(0, limit)).map((w, i, all) => (i < all.length - 1 ? `${w} ` : w));
}

/** The demo's token count: a quarter of the prompt's JSON length, at least one. */
export function inputTokens(body: DemoBody): number {
  const prompt = JSON.stringify([body.system ?? body.instructions ?? null, body.messages ?? null, body.input ?? null]);
  return Math.max(1, Math.ceil(prompt.length / 4));
}

export const now = () => Math.floor(Date.now() / 1000);

export function openaiChat(body: DemoBody) {
  const words = replyWords(body, 'OpenAI');
  const prompt = inputTokens(body);
  return {
    id: `chatcmpl-demo${randomBase62(16)}`, object: 'chat.completion', created: now(), model: body.model, system_fingerprint: 'modelbridge-demo',
    choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: words.length, total_tokens: prompt + words.length },
  };
}

export function openaiChatStream(res: Response, body: DemoBody): void {
  const words = replyWords(body, 'OpenAI');
  const prompt = inputTokens(body);
  const base = { id: `chatcmpl-demo${randomBase62(16)}`, object: 'chat.completion.chunk', created: now(), model: body.model, system_fingerprint: 'modelbridge-demo' };
  const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const events = [chunk({ role: 'assistant', content: '' }, null), ...words.map((w) => chunk({ content: w }, null)), chunk({}, 'stop')];
  if (body.stream_options?.include_usage)
    events.push(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: prompt, completion_tokens: words.length, total_tokens: prompt + words.length } })}\n\n`);
  events.push('data: [DONE]\n\n');
  sendEvents(res, events);
}

export function anthropicCountTokens(body: DemoBody) {
  return { input_tokens: inputTokens(body) };
}

export function anthropicMessage(body: DemoBody) {
  const words = replyWords(body, 'Anthropic');
  return {
    id: `msg_demo${randomBase62(16)}`, type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text: words.join('') }],
    stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: inputTokens(body), output_tokens: words.length },
  };
}

export function anthropicStream(res: Response, body: DemoBody): void {
  const words = replyWords(body, 'Anthropic');
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  sendEvents(res, [
    ev('message_start', { message: { id: `msg_demo${randomBase62(16)}`, type: 'message', role: 'assistant', model: body.model, content: [],
      stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens(body), output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...words.map((w) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: w } })),
    ev('content_block_stop', { index: 0 }),
    ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: words.length } }),
    ev('message_stop', {}),
  ]);
}

/** Deterministic pseudo-embeddings (unit vectors derived from a hash of each input), float or base64 like OpenAI. */
export function openaiEmbeddings(body: DemoBody) {
  const inputs: unknown[] = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
  const dims = typeof body.dimensions === 'number' && body.dimensions > 0 && body.dimensions <= 3072 ? body.dimensions : 1536;
  const data = inputs.map((input, index) => {
    const vector = demoVector(JSON.stringify(input), dims);
    const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
    return { object: 'embedding', index, embedding };
  });
  const prompt = inputTokens(body);
  return { object: 'list', data, model: body.model, usage: { prompt_tokens: prompt, total_tokens: prompt } };
}

function demoVector(text: string, dims: number): number[] {
  const seed = createHash('sha256').update(text).digest();
  const v = Array.from({ length: dims }, (_, i) => Math.sin(seed[i % 32]! + i * 0.37));
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

export function sendEvents(res: Response, events: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  for (const e of events) res.write(e);
  res.end();
}
