import { eventData, eventName, jsonStringText } from '../sse.js';
import type { StreamMeter, StreamMeterOptions, TokenUsage } from '../types.js';
import { encodingOf, generatedTokensBound, type OpenAiEncoding } from './tokens.js';
import { usageOf } from './usage.js';

/**
 * The events that end a Responses API stream, each carrying the whole response with its `usage` (OpenAI API
 * reference, "Streaming events"): completed, cut short (max_output_tokens, content filter) or failed.
 */
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/**
 * A delta of generated text, whatever it is (output_text, refusal, function_call_arguments, reasoning_text,
 * reasoning_summary_text, custom_tool_call_input, …): every `response.*.delta` event carries it as `delta`.
 */
const DELTA = /"delta":"((?:[^"\\]|\\.)*)"/;
/** The `type` of an event's data, for a stream whose events have no `event:` line. */
const TYPE = /"type":"([^"]+)"/;
const OUTPUT_INDEX = /"output_index":(\d+)/;
const CONTENT_INDEX = /"content_index":(\d+)/;
const SEQUENCE = /"sequence_number":(\d+)/;
/** Deltas whose text a cut stream's terminal event puts back into its item (the field of the part or item it fills). */
const REBUILT: Record<string, 'text' | 'refusal' | 'arguments'> = {
  'response.output_text.delta': 'text',
  'response.refusal.delta': 'refusal',
  'response.function_call_arguments.delta': 'arguments',
};

/**
 * Reads an OpenAI Responses API stream (`event: <type>` + `data: {"type": <type>, …}` events). The usage comes in
 * the terminal event, so nothing is hidden or changed: the stream is written through as it arrives.
 *
 * The stream says generation is over only with its terminal event, which is also its usage report: a client that
 * leaves before it has the upstream aborted at once and is charged the input bound plus the text received (counted
 * with the model's tokenizer, or one token per delta when that is more). What that cannot see is what the Chat
 * Completions meter cannot see either: hidden reasoning tokens, framing tokens around items, tokens not yet received.
 */
class ResponsesStreamMeter implements StreamMeter {
  usage: TokenUsage | null = null;
  readonly reportedInput = null;
  outputDeltas = 0;
  failed = false;
  finished = false;
  responseId: string | null = null;
  readonly hidesEvents = false;
  /** Generated text by event type (output text, arguments, reasoning…), each counted on its own. */
  private readonly generated = new Map<string, string[]>();
  private readonly encoding: OpenAiEncoding;
  private generatedBytes = 0;
  /** The response as created, and its output items as far as they came: what a cut stream's last event rebuilds. */
  private response: Record<string, unknown> | null = null;
  private readonly items: Array<Record<string, any>> = [];
  private readonly doneItems = new Set<number>();
  /** Text received for items not yet done, by `${output_index}:${content_index}:${field}`. */
  private readonly itemText = new Map<string, string[]>();
  private sequence = -1;

  constructor(options: StreamMeterOptions) {
    this.encoding = encodingOf(options.upstreamModel);
  }

  observe(event: string): boolean {
    const type = eventName(event) || TYPE.exec(event)?.[1] || '';
    const sequence = SEQUENCE.exec(event);
    if (sequence) this.sequence = Number(sequence[1]);
    if (type.endsWith('.delta')) this.keepDelta(type, event);
    else if (type === 'response.created' || type === 'response.in_progress') {
      const response = eventData(event)?.response;
      if (response && typeof response === 'object') this.response = response;
      if (typeof response?.id === 'string') this.responseId = response.id;
    } else if (type === 'response.output_item.added' || type === 'response.output_item.done') {
      const data = eventData(event);
      const item = data?.item;
      const index = data?.output_index;
      if (!item || typeof item !== 'object' || typeof index !== 'number') return true;
      this.items[index] = item;
      if (type === 'response.output_item.done') this.doneItems.add(index);
      // A tool call's name is generated output too; it comes with its item, not as a delta.
      else if (typeof item.name === 'string' && item.name) this.keep('name', item.name);
    } else if (type === 'response.content_part.added') {
      const data = eventData(event);
      const item = this.items[data?.output_index];
      if (item && Array.isArray(item.content) && typeof data.content_index === 'number' && data.part) item.content[data.content_index] = data.part;
    } else if (TERMINAL.has(type)) {
      const response = eventData(event)?.response;
      if (response?.usage && typeof response.usage === 'object') this.usage = usageOf(response.usage);
      if (typeof response?.id === 'string') this.responseId ??= response.id;
      this.finished = true;
      if (type === 'response.failed') this.failed = true;
    } else if (type === 'error') this.failed = true;
    return true;
  }

  /** The error event the Responses API ends a broken stream with (API reference: the `error` streaming event). */
  errorEvent(message: string): string {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'upstream_error', message, param: null })}\n\n`;
  }

  async outputTokensBound(cap: number): Promise<number> {
    return generatedTokensBound(this.generated, this.outputDeltas, this.encoding, cap);
  }

  private keepDelta(type: string, event: string): void {
    const body = DELTA.exec(event)?.[1];
    if (!body) return;
    this.outputDeltas++;
    const text = jsonStringText(body);
    this.keep(type, text);
    const field = REBUILT[type];
    if (!field) return;
    const key = `${OUTPUT_INDEX.exec(event)?.[1] ?? 0}:${field === 'arguments' ? '' : CONTENT_INDEX.exec(event)?.[1] ?? 0}:${field}`;
    let parts = this.itemText.get(key);
    if (!parts) this.itemText.set(key, (parts = []));
    parts.push(text);
  }

  get outputSoFar(): number {
    return Math.max(this.generatedBytes, this.outputDeltas);
  }

  /**
   * `response.incomplete` (reason max_output_tokens), as the API ends a response cut at its output cap: the response
   * as created with every output item as far as it came — items not yet done get the text received and status
   * incomplete — because SDKs replace what they accumulated with a terminal event's response (openai-node's
   * ResponseAccumulator) and Codex waits for one. No usage: the upstream never reported it.
   */
  cutEvents(): string[] {
    const output = this.items.map((item, index) => (this.doneItems.has(index) ? item : this.filledIn(item, index)));
    const response = {
      ...(this.response ?? { id: this.responseId, object: 'response' }),
      status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, output, usage: null,
    };
    return [`event: response.incomplete\ndata: ${JSON.stringify({ type: 'response.incomplete', sequence_number: this.sequence + 1, response })}`];
  }

  private filledIn(item: Record<string, any>, index: number): Record<string, any> {
    const text = (key: string) => this.itemText.get(`${index}:${key}`)?.join('');
    const filled: Record<string, any> = { ...item, status: 'incomplete' };
    if (Array.isArray(item.content)) {
      filled.content = item.content.map((part: Record<string, unknown>, ci: number) => {
        const t = text(`${ci}:text`);
        const r = text(`${ci}:refusal`);
        return { ...part, ...(t === undefined ? {} : { text: t }), ...(r === undefined ? {} : { refusal: r }) };
      });
    }
    const args = text(':arguments');
    if (args !== undefined) filled.arguments = args;
    return filled;
  }

  private keep(kind: string, text: string): void {
    this.generatedBytes += Buffer.byteLength(text, 'utf8');
    let parts = this.generated.get(kind);
    if (!parts) this.generated.set(kind, (parts = []));
    parts.push(text);
  }
}

export function responsesStreamMeter(options: StreamMeterOptions): StreamMeter {
  return new ResponsesStreamMeter(options);
}
