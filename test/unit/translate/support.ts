/**
 * Test helpers for the translators: the refusal of a request, SSE text split into events, and the client's view of
 * a stream accumulated into the JSON answer it stands for (what the SDKs' stream helpers do).
 */
import { ProxyError } from '../../../src/proxy/errors.js';
import type { StreamTranslator } from '../../../src/proxy/translate/index.js';
import { SseSplitter, eventData } from '../../../src/proxy/upstreams/sse.js';

export function events(text: string): string[] {
  const splitter = new SseSplitter();
  const out = splitter.push(text);
  if (splitter.rest().trim()) out.push(splitter.rest());
  return out;
}

export function translateAll(translator: StreamTranslator, upstream: string[]): string[] {
  return events(upstream.map((e) => translator.event(e)).join(''));
}

/** OpenAI chunks → the chat.completion they assemble into (content, tool calls by index, finish_reason, usage). */
export function accumulateChat(chunkEvents: string[]): { content: string | null; tool_calls: any[]; finish_reason: string | null; usage: any; done: boolean } {
  let content: string | null = null;
  const calls: any[] = [];
  let finish: string | null = null;
  let usage: any = null;
  let done = false;
  for (const e of chunkEvents) {
    if (e === 'data: [DONE]') {
      done = true;
      continue;
    }
    const chunk = eventData(e);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices ?? []) {
      if (typeof choice.delta?.content === 'string') content = (content ?? '') + choice.delta.content;
      for (const call of choice.delta?.tool_calls ?? []) {
        calls[call.index] ??= { id: call.id, type: call.type, function: { name: call.function?.name, arguments: '' } };
        calls[call.index].function.arguments += call.function?.arguments ?? '';
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { content: content === '' && calls.length > 0 ? null : content, tool_calls: calls, finish_reason: finish, usage, done };
}

/** Anthropic events → the message they assemble into (as the SDK's MessageStream does), checking their order. */
export function accumulateMessage(messageEvents: string[]): any {
  let message: any = null;
  const open = new Set<number>();
  const json = new Map<number, string>();
  for (const e of messageEvents) {
    const data = eventData(e);
    const name = e.slice(7, e.indexOf('\n'));
    if (name !== data.type) throw new Error(`event name ${name} for ${data.type}`);
    switch (data.type) {
      case 'message_start':
        if (message) throw new Error('two message_start');
        message = structuredClone(data.message);
        break;
      case 'content_block_start':
        if (data.index !== message.content.length) throw new Error(`block ${data.index} started out of order`);
        message.content.push(structuredClone(data.content_block));
        open.add(data.index);
        break;
      case 'content_block_delta': {
        const block = message.content[data.index];
        if (!open.has(data.index)) throw new Error(`delta for closed block ${data.index}`);
        if (data.delta.type === 'text_delta') block.text += data.delta.text;
        else if (data.delta.type === 'input_json_delta') json.set(data.index, (json.get(data.index) ?? '') + data.delta.partial_json);
        break;
      }
      case 'content_block_stop':
        if (!open.delete(data.index)) throw new Error(`stop of a block not open: ${data.index}`);
        if (json.has(data.index)) message.content[data.index].input = JSON.parse(json.get(data.index)!);
        break;
      case 'message_delta':
        if (open.size > 0) throw new Error('message_delta with a block open');
        message.stop_reason = data.delta.stop_reason;
        message.stop_sequence = data.delta.stop_sequence;
        message.usage = { ...message.usage, ...data.usage };
        break;
      case 'message_stop':
        message.stopped = true;
        break;
    }
  }
  return message;
}

/** `text` cut at the given places (sorted, deduplicated, inside the text) into non-empty pieces. */
export function cut(text: string, at: number[]): string[] {
  const points = [...new Set(at.filter((p) => p > 0 && p < text.length))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let from = 0;
  for (const p of [...points, text.length]) {
    if (p > from) pieces.push(text.slice(from, p));
    from = p;
  }
  return pieces;
}

/** The ProxyError `translate` refuses with (a test failure when it does not refuse, or fails otherwise). */
export function refusalOf(translate: () => unknown): ProxyError {
  try {
    translate();
  } catch (err) {
    if (err instanceof ProxyError) return err;
    throw err;
  }
  throw new Error('not refused');
}
