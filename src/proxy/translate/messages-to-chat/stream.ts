import { eventData } from '../../upstreams/sse.js';
import { anthropicEvent, isObject } from '../shared.js';
import type { Json, StreamTranslator } from '../types.js';
import { messagesUsage, stopReason } from './response.js';

type OpenBlock = { kind: 'text' } | { kind: 'tool'; call: number };

/**
 * An OpenAI chat.completion.chunk stream → the Anthropic Messages event sequence:
 * - the first chunk → message_start (usage is not known yet: OpenAI reports it last);
 * - content (and a refusal) → a text block: content_block_start, text_delta…;
 * - a tool call's first delta (it carries the id and name) → a tool_use block, each `arguments` piece → an
 *   input_json_delta of that block;
 * - a block ends (content_block_stop) when the next one starts or the choice finishes;
 * - `[DONE]` (or the end of a stream without it) → message_delta with the stop_reason and the usage of the usage
 *   chunk before it, then message_stop;
 * - an error chunk → an Anthropic error event.
 */
export class ChatToMessagesStream implements StreamTranslator {
  private started = false;
  private open: OpenBlock | null = null;
  private blocks = 0;
  /** OpenAI tool call index → Anthropic content block index. */
  private readonly toolBlocks = new Map<number, number>();
  private finish: unknown = null;
  private usage: unknown = null;
  /** message_stop was written, or an error: nothing may follow. */
  private over = false;

  event(event: string): string {
    if (/^data:\s*\[DONE\]/.test(event)) return this.done();
    const data = eventData(event);
    if (!isObject(data)) return '';
    if (isObject(data.error)) {
      this.over = true;
      const message = typeof data.error.message === 'string' ? data.error.message : 'The upstream failed mid-stream.';
      return anthropicEvent('error', { error: { type: 'api_error', message } });
    }
    let out = this.start(data);
    if (isObject(data.usage)) this.usage = data.usage;
    const choice = Array.isArray(data.choices) && isObject(data.choices[0]) ? data.choices[0] : null;
    if (!choice) return out;
    const delta = isObject(choice.delta) ? choice.delta : {};
    for (const text of [delta.content, delta.refusal]) if (typeof text === 'string' && text !== '') out += this.text(text);
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls.filter(isObject)) out += this.toolCall(call);
    if (typeof choice.finish_reason === 'string') {
      this.finish = choice.finish_reason;
      out += this.close();
    }
    return out;
  }

  private start(chunk: Json): string {
    if (this.started) return '';
    this.started = true;
    const message = { id: chunk.id, type: 'message', role: 'assistant', model: chunk.model, content: [], stop_reason: null, stop_sequence: null, usage: messagesUsage(null) };
    return anthropicEvent('message_start', { message });
  }

  private text(text: string): string {
    let out = '';
    if (this.open?.kind !== 'text') {
      out += this.close();
      this.open = { kind: 'text' };
      out += anthropicEvent('content_block_start', { index: this.blocks, content_block: { type: 'text', text: '' } });
    }
    return out + anthropicEvent('content_block_delta', { index: this.blocks, delta: { type: 'text_delta', text } });
  }

  private toolCall(call: Json): string {
    const index = typeof call.index === 'number' ? call.index : 0;
    const fn = isObject(call.function) ? call.function : {};
    let out = '';
    if (!this.toolBlocks.has(index)) {
      out += this.close();
      this.toolBlocks.set(index, this.blocks);
      this.open = { kind: 'tool', call: index };
      out += anthropicEvent('content_block_start', { index: this.blocks, content_block: { type: 'tool_use', id: call.id, name: fn.name, input: {} } });
    }
    if (typeof fn.arguments === 'string' && fn.arguments !== '')
      out += anthropicEvent('content_block_delta', { index: this.toolBlocks.get(index)!, delta: { type: 'input_json_delta', partial_json: fn.arguments } });
    return out;
  }

  private close(): string {
    if (!this.open) return '';
    this.open = null;
    return anthropicEvent('content_block_stop', { index: this.blocks++ });
  }

  end(): string {
    return this.over ? '' : this.done();
  }

  private done(): string {
    if (this.over) return '';
    this.over = true;
    const out = this.start({}) + this.close();
    return out
      + anthropicEvent('message_delta', { delta: { stop_reason: stopReason(this.finish), stop_sequence: null }, usage: messagesUsage(this.usage) })
      + anthropicEvent('message_stop', {});
  }
}
