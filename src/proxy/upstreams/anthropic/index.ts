import type { IncomingHttpHeaders } from 'node:http';
import { invalidRequest } from '../../errors.js';
import { count, lastObjectValue } from '../json-usage.js';
import { eventData, eventName, jsonStringText } from '../sse.js';
import type { InputUsage, StreamMeter, TokenUsage, UpstreamProvider } from '../types.js';

const DEFAULT_VERSION = '2023-06-01';
const VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
/** One beta feature name, as Anthropic spells them (`prompt-caching-2024-07-31`). */
const BETA_FEATURE = /^[A-Za-z0-9._-]{1,100}$/;
const MAX_BETA_FEATURES = 50;

/**
 * The beta features of `anthropic-beta`, however the client wrote them: comma-separated with or without spaces, or
 * on several header lines (Node joins those with ", "). Each is checked on its own, so one odd spelling does not drop
 * the others; a name that is not one is refused (ProxyError 400, saying which by position: header values are never
 * quoted back, they can carry credentials) rather than silently not forwarded.
 */
export function betaFeatures(client: IncomingHttpHeaders): string[] {
  const header = client['anthropic-beta'];
  if (header === undefined) return [];
  const features: string[] = [];
  const parts = (Array.isArray(header) ? header.join(',') : header).split(',');
  for (const [index, part] of parts.entries()) {
    const feature = part.trim();
    if (feature === '' || features.includes(feature)) continue;
    if (!BETA_FEATURE.test(feature)) throw invalidRequest(`anthropic-beta: entry ${index + 1} is not a beta feature name (letters, digits, ".", "_" and "-", separated by commas).`);
    features.push(feature);
  }
  if (features.length > MAX_BETA_FEATURES) throw invalidRequest(`anthropic-beta: more than ${MAX_BETA_FEATURES} beta features.`);
  return features;
}

const NO_INPUT: InputUsage = { inputTokens: 0, cachedInputTokens: 0, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0 };

/**
 * The input of an Anthropic usage object, by kind. Anthropic's `input_tokens` EXCLUDES the cache: reads are
 * `cache_read_input_tokens`, writes `cache_creation_input_tokens`, split by TTL in `cache_creation`
 * (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`). Without the split (older API versions) a write is a
 * 5-minute one, the default TTL. A count this object leaves out keeps its value from `earlier` — a stream's
 * message_delta may repeat the counts of message_start without its TTL split, which must not turn 1-hour writes into
 * cheaper 5-minute ones. Writes are never fewer than the split says.
 */
function inputOf(u: Record<string, unknown>, earlier: InputUsage = NO_INPUT): InputUsage {
  const reported = (key: string, otherwise: number) => (u[key] === undefined || u[key] === null ? otherwise : count(u[key]));
  const split = u.cache_creation && typeof u.cache_creation === 'object' ? (u.cache_creation as Record<string, unknown>) : null;
  const oneHourSaid = split ? count(split.ephemeral_1h_input_tokens) : earlier.cacheWrite1hTokens;
  const writes = Math.max(
    reported('cache_creation_input_tokens', earlier.cacheWrite5mTokens + earlier.cacheWrite1hTokens),
    split ? count(split.ephemeral_5m_input_tokens) + oneHourSaid : 0,
  );
  const oneHour = Math.min(writes, oneHourSaid);
  return {
    inputTokens: reported('input_tokens', earlier.inputTokens),
    cachedInputTokens: reported('cache_read_input_tokens', earlier.cachedInputTokens),
    cacheWrite5mTokens: writes - oneHour,
    cacheWrite1hTokens: oneHour,
  };
}

/**
 * Generated text in a `content_block_delta` (text, tool input JSON, thinking) or a `content_block_start` (a tool's
 * name), as a JSON string body. A signature or a citation is not generated text.
 */
const GENERATED = /"(?:text|partial_json|thinking|name)":"((?:[^"\\]|\\.)*)"/;

/**
 * Reads an Anthropic stream: `message_start` reports the input tokens by kind, `message_delta` the final cumulative
 * output count (and the stop_reason: generation has finished). Anthropic does not report thinking tokens apart from
 * the output, so reasoningTokens stays 0.
 *
 * For a stream that ends before that, the output is bounded by the UTF-8 bytes of the generated text received:
 * Anthropic's tokenizer is not public, but each token covers at least one byte of text, so the bytes bound the
 * tokens of any tokenisation from above (and one delta is at least one token). Only lengths are kept, not text.
 * What it cannot see: thinking that is not streamed (redacted thinking, or the full thinking behind the summary
 * Claude 4 models stream, billed in full), the framing tokens of tool use, and tokens generated but not yet
 * received when the stream was cut.
 */
class AnthropicStreamMeter implements StreamMeter {
  reportedInput: InputUsage | null = null;
  outputDeltas = 0;
  failed = false;
  finished = false;
  readonly hidesEvents = false;
  private finalOutput: number | null = null;
  private generatedBytes = 0;
  /** The content block started and not yet stopped, by index. */
  private openBlock: number | null = null;

  get usage(): TokenUsage | null {
    return this.reportedInput !== null && this.finalOutput !== null ? { ...this.reportedInput, outputTokens: this.finalOutput, reasoningTokens: 0 } : null;
  }

  observe(event: string): boolean {
    switch (eventName(event)) {
      case 'content_block_delta':
        this.outputDeltas++;
        this.countGenerated(event);
        break;
      case 'content_block_start':
        this.countGenerated(event);
        this.openBlock = blockIndex(event);
        break;
      case 'content_block_stop':
        this.openBlock = null;
        break;
      case 'message_start': {
        const usage = eventData(event)?.message?.usage;
        if (usage && typeof usage === 'object') this.reportedInput = inputOf(usage);
        break;
      }
      case 'message_delta': {
        const data = eventData(event);
        const usage = data?.usage;
        if (usage && typeof usage === 'object') {
          this.finalOutput = count(usage.output_tokens);
          // Newer API versions repeat the (cumulative) input counts here; what they leave out stays as message_start said.
          if (this.reportedInput !== null || (usage.input_tokens !== undefined && usage.input_tokens !== null))
            this.reportedInput = inputOf(usage, this.reportedInput ?? NO_INPUT);
        }
        if (typeof data?.delta?.stop_reason === 'string') this.finished = true;
        break;
      }
      case 'message_stop':
        this.finished = true;
        break;
      case 'error':
        this.failed = true;
        break;
    }
    return true;
  }

  private countGenerated(event: string): void {
    const text = GENERATED.exec(event)?.[1];
    if (text) this.generatedBytes += Buffer.byteLength(jsonStringText(text), 'utf8');
  }

  async outputTokensBound(cap: number): Promise<number> {
    return Math.min(cap, this.outputSoFar);
  }

  get outputSoFar(): number {
    return Math.max(this.generatedBytes, this.outputDeltas);
  }

  cutEvents(): string[] {
    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}`;
    return [
      ...(this.openBlock === null ? [] : [event('content_block_stop', { index: this.openBlock })]),
      event('message_delta', { delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: this.outputSoFar } }),
      event('message_stop', {}),
    ];
  }
}

function blockIndex(event: string): number | null {
  const index = /"index":(\d+)/.exec(event)?.[1];
  return index === undefined ? null : Number(index);
}

export const anthropicProvider: UpstreamProvider = {
  name: 'anthropic',
  format: 'anthropic',
  defaultBaseUrl: 'https://api.anthropic.com',
  paths: { messages: '/v1/messages', countTokens: '/v1/messages/count_tokens' },

  checkHeaders: betaFeatures,

  headers(apiKey, client) {
    const version = client['anthropic-version'];
    const betas = betaFeatures(client); // checked before admission (checkHeaders), so this does not throw here
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'anthropic-version': typeof version === 'string' && VERSION_PATTERN.test(version) ? version : DEFAULT_VERSION,
    };
    if (betas.length > 0) headers['anthropic-beta'] = betas.join(',');
    if (apiKey) headers['x-api-key'] = apiKey;
    return headers;
  },

  adaptBody: () => false,

  usageFromJson(text) {
    const usage = lastObjectValue(text, 'usage');
    return usage ? { ...inputOf(usage), outputTokens: count(usage.output_tokens), reasoningTokens: 0 } : null;
  },

  streamMeter: () => new AnthropicStreamMeter(),

  streamError(message) {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`;
  },
};
