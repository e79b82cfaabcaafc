import { eventData, eventName } from '../../upstreams/sse.js';
import { isObject, openaiEvent } from '../shared.js';
import type { Json, StreamTranslator } from '../types.js';
import { chatError, chatUsage, finishReason, isThinkingBlock } from './response.js';

/**
 * An Anthropic Messages stream → OpenAI chat.completion.chunk events:
 * - message_start → the first chunk (`role: assistant`);
 * - text_delta → `content`, thinking_delta → `reasoning_content`, and a thinking block as a whole (with its
 *   signature) → `thinking_blocks` when it stops;
 * - a tool_use block's start → a tool call with its id and name and empty arguments, each input_json_delta → more
 *   `arguments` of that call (the tool call's index counts tool_use blocks, as OpenAI numbers calls);
 * - message_delta's stop_reason → the chunk with `finish_reason`; message_stop → the usage chunk (`choices: []`,
 *   when the client asked for include_usage) and `[DONE]`;
 * - an error event → OpenAI's mid-stream error chunk.
 * ping and the other content_block_stops have no OpenAI counterpart and produce nothing.
 */
export class MessagesToChatStream implements StreamTranslator {
  private id = '';
  private model = '';
  private readonly created = Math.floor(Date.now() / 1000);
  /** Anthropic content block index → OpenAI tool call index. */
  private readonly toolIndex = new Map<number, number>();
  private usage: Json = {};
  /** The thinking block being streamed, by its index: passed on whole (with its signature) when it stops. */
  private thinking: { index: number; block: Json } | null = null;

  constructor(private readonly clientWantsUsage: boolean) {}

  event(event: string): string {
    const data = eventData(event);
    if (!isObject(data)) return '';
    switch (eventName(event) || data.type) {
      case 'message_start': {
        const message = isObject(data.message) ? data.message : {};
        this.id = String(message.id ?? '');
        this.model = String(message.model ?? '');
        if (isObject(message.usage)) this.usage = { ...message.usage };
        return this.chunk({ role: 'assistant', content: '' });
      }
      case 'content_block_start': {
        const block = isObject(data.content_block) ? data.content_block : {};
        if (isThinkingBlock(block) && typeof data.index === 'number') this.thinking = { index: data.index, block: { ...block } };
        if (block.type !== 'tool_use' || typeof data.index !== 'number') return '';
        const index = this.toolIndex.size;
        this.toolIndex.set(data.index, index);
        return this.chunk({ tool_calls: [{ index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
      }
      case 'content_block_delta':
        return this.delta(data);
      case 'content_block_stop': {
        const thinking = this.thinking;
        if (!thinking || thinking.index !== data.index) return '';
        this.thinking = null;
        return this.chunk({ thinking_blocks: [thinking.block] });
      }
      case 'message_delta': {
        // Its counts are cumulative; what it leaves out stays as message_start said.
        if (isObject(data.usage)) for (const [k, v] of Object.entries(data.usage)) if (v !== null && v !== undefined) this.usage[k] = v;
        const delta = isObject(data.delta) ? data.delta : {};
        const finish = finishReason(delta.stop_reason);
        return finish ? this.chunk({}, finish) : '';
      }
      case 'message_stop':
        return (this.clientWantsUsage ? openaiEvent({ ...this.head(), choices: [], usage: chatUsage(this.usage) }) : '') + 'data: [DONE]\n\n';
      case 'error': {
        const error = isObject(data.error) ? data.error : {};
        const body = chatError(500, Buffer.from(JSON.stringify({ error })));
        return openaiEvent(body);
      }
      default:
        return '';
    }
  }

  /** Anthropic always ends with message_stop, which wrote the end already. */
  end(): string {
    return '';
  }

  private delta(data: Json): string {
    const delta = isObject(data.delta) ? data.delta : {};
    switch (delta.type) {
      case 'text_delta':
        return this.chunk({ content: delta.text });
      case 'thinking_delta':
        this.extendThinking(data.index, 'thinking', delta.thinking);
        return this.chunk({ reasoning_content: delta.thinking });
      case 'signature_delta':
        this.extendThinking(data.index, 'signature', delta.signature);
        return '';
      case 'input_json_delta': {
        const index = typeof data.index === 'number' ? this.toolIndex.get(data.index) : undefined;
        if (index === undefined || delta.partial_json === '') return '';
        return this.chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] });
      }
      default:
        return '';
    }
  }

  private extendThinking(index: unknown, field: 'thinking' | 'signature', piece: unknown): void {
    const thinking = this.thinking;
    if (thinking && thinking.index === index && typeof piece === 'string') thinking.block[field] = String(thinking.block[field] ?? '') + piece;
  }

  private head(): Json {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model };
  }

  private chunk(delta: Json, finish: string | null = null): string {
    return openaiEvent({ ...this.head(), choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  }
}
