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

  constructor(options: StreamMeterOptions) {
    this.encoding = encodingOf(options.upstreamModel);
  }

  observe(event: string): boolean {
    const type = eventName(event) || TYPE.exec(event)?.[1] || '';
    if (type.endsWith('.delta')) this.keepDelta(type, event);
    else if (type === 'response.created') {
      const id = eventData(event)?.response?.id;
      if (typeof id === 'string') this.responseId = id;
    } else if (type === 'response.output_item.added') {
      // A tool call's name is generated output too; it comes with its item, not as a delta.
      const name = eventData(event)?.item?.name;
      if (typeof name === 'string' && name) this.keep('name', name);
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
    this.keep(type, jsonStringText(body));
  }

  get outputSoFar(): number {
    return Math.max(this.generatedBytes, this.outputDeltas);
  }

  /**
   * Nothing: the Responses API's terminal events carry the whole response, which replaces what an SDK accumulated
   * (openai-node's ResponseAccumulator), and this meter does not rebuild it. A stream cut at its hold ends after its
   * last whole event; the SDK's stream helper finalizes the response it accumulated (status still in_progress).
   */
  cutEvents(): string[] {
    return [];
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
