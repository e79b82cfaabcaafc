import { lastObjectValue } from '../json-usage.js';
import { eventData, jsonStringText } from '../sse.js';
import type { EndpointName, StreamMeter, StreamMeterOptions, TokenUsage, UpstreamProvider } from '../types.js';
import { responsesStreamMeter } from './responses-stream.js';
import { encodingOf, generatedTokensBound, type OpenAiEncoding } from './tokens.js';
import { usageOf } from './usage.js';

/**
 * The generated text a chunk carries, as JSON string bodies: content, tool-call names and arguments, a refusal, the
 * reasoning some compatible servers stream. The first `"` of the value is matched, so `"content":null` is not.
 */
const GENERATED = /"(content|arguments|name|refusal|reasoning_content|reasoning)":"((?:[^"\\]|\\.)*)"/g;
/** A choice's finish_reason with a value (`"finish_reason":null` in every other chunk). */
const FINISH = /"finish_reason":"/;
/**
 * The `"usage":null` that `include_usage` adds to every chunk before the usage chunk, at the chunk's top level (in a
 * string, its quotes would be escaped).
 */
const NULL_USAGE = /,\s*"usage"\s*:\s*null(?=\s*[,}])/;
type Kind = 'content' | 'arguments' | 'name' | 'refusal' | 'reasoning_content' | 'reasoning';

/**
 * Reads an OpenAI chat stream. The proxy always asks the upstream for `stream_options.include_usage`, which adds a
 * last chunk with `choices: []` and the usage, and `"usage":null` to every other chunk; a client that did not ask
 * for it must not see either (strict clients choke on a chunk without choices), so that chunk is hidden and the
 * field removed (shownAs).
 *
 * For a stream that ends early it keeps the generated text (not the chunks), to count it with the model's
 * tokenizer at the end. What it cannot see: the hidden reasoning tokens of o-series and gpt-5 models (billed as
 * output, never streamed), the few framing tokens around tool calls, and tokens generated but not yet received
 * when the stream was cut; the charge is then below the provider's bill by that much.
 */
class OpenAiStreamMeter implements StreamMeter {
  usage: TokenUsage | null = null;
  readonly reportedInput = null;
  outputDeltas = 0;
  failed = false;
  readonly hidesEvents: boolean;
  /** Generated text by kind: each is counted on its own, so no token is merged across two of them. */
  private readonly generated = new Map<Kind, string[]>();
  /** The choices whose finish_reason came. */
  private readonly finishedChoices = new Set<number>();
  private readonly clientWantsUsage: boolean;
  private readonly encoding: OpenAiEncoding;
  private readonly choices: number;
  private generatedBytes = 0;
  /** The first chunk's id, created and model, repeated by the chunk that ends a cut stream. */
  private identity: Record<string, unknown> | null = null;

  constructor(options: StreamMeterOptions) {
    this.clientWantsUsage = options.clientWantsUsage;
    this.hidesEvents = !options.clientWantsUsage;
    this.encoding = encodingOf(options.upstreamModel);
    this.choices = Math.max(1, options.choices);
  }

  /**
   * Finished once every choice asked for has its finish_reason: any one of them is only finishing, the others may
   * still be generating (counted against the request's `n`, not the choice indices seen so far, since a choice may
   * not have started yet).
   */
  get finished(): boolean {
    return this.finishedChoices.size >= this.choices;
  }

  observe(event: string): boolean {
    let visible = true;
    if (this.identity === null && event.startsWith('data: {')) {
      const data = eventData(event);
      if (data) this.identity = { id: data.id, object: 'chat.completion.chunk', created: data.created, model: data.model };
    }
    if (event.includes('"usage":{')) {
      const data = eventData(event);
      if (data?.usage && typeof data.usage === 'object') {
        this.usage = usageOf(data.usage);
        if (!this.clientWantsUsage && Array.isArray(data.choices) && data.choices.length === 0) visible = false;
      }
    } else if (event.includes('"error":') && eventData(event)?.error) {
      this.failed = true;
    }
    this.keepGenerated(event);
    if (FINISH.test(event)) this.noteFinish(event);
    return visible;
  }

  /** A client that did not ask for usage gets the chunks as they would be without it: no `"usage":null`. */
  shownAs(event: string): string {
    return !this.clientWantsUsage && event.includes('"usage"') ? event.replace(NULL_USAGE, '') : event;
  }

  private keepGenerated(event: string): void {
    let carries = false;
    GENERATED.lastIndex = 0;
    for (let m = GENERATED.exec(event); m; m = GENERATED.exec(event)) {
      if (m[2]!.length === 0) continue;
      carries = true;
      const kind = m[1] as Kind;
      let parts = this.generated.get(kind);
      if (!parts) this.generated.set(kind, (parts = []));
      const text = jsonStringText(m[2]!);
      parts.push(text);
      this.generatedBytes += Buffer.byteLength(text, 'utf8');
    }
    if (carries) this.outputDeltas++;
  }

  private noteFinish(event: string): void {
    const choices = eventData(event)?.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices) {
      if (typeof choice?.finish_reason === 'string') this.finishedChoices.add(typeof choice.index === 'number' ? choice.index : 0);
    }
  }

  /**
   * The text received, counted with the model's tokenizer, or the number of chunks that carried it when that is
   * more: a model may emit a tokenisation that is not the tokenizer's own (one chunk is at least one token).
   */
  async outputTokensBound(cap: number): Promise<number> {
    return generatedTokensBound(this.generated, this.outputDeltas, this.encoding, cap);
  }

  get outputSoFar(): number {
    return Math.max(this.generatedBytes, this.outputDeltas);
  }

  cutEvents(): string[] {
    const unfinished = Array.from({ length: this.choices }, (_, index) => index).filter((index) => !this.finishedChoices.has(index));
    const chunk = { ...(this.identity ?? { object: 'chat.completion.chunk' }), choices: unfinished.map((index) => ({ index, delta: {}, finish_reason: 'length' })) };
    return [`data: ${JSON.stringify(chunk)}`, 'data: [DONE]'];
  }
}

export const openaiProvider: UpstreamProvider = {
  name: 'openai',
  format: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  paths: { chat: '/chat/completions', embeddings: '/embeddings', responses: '/responses', compact: '/responses/compact' },

  headers(apiKey) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    return headers;
  },

  adaptBody(endpoint: EndpointName, body) {
    if (endpoint !== 'chat' || body.stream !== true) return false;
    const options = body.stream_options;
    if (options && typeof options === 'object' && (options as { include_usage?: unknown }).include_usage === true) return false;
    body.stream_options = { ...(options && typeof options === 'object' ? options : {}), include_usage: true };
    return true;
  },

  usageFromJson(text) {
    const usage = lastObjectValue(text, 'usage');
    return usage ? usageOf(usage) : null;
  },

  streamMeter: (options) => (options.endpoint === 'responses' ? responsesStreamMeter(options) : new OpenAiStreamMeter(options)),

  streamError(message) {
    return `data: ${JSON.stringify({ error: { message, type: 'server_error', code: 'upstream_error', param: null } })}\n\n`;
  },
};
