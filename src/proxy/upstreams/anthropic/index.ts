import { count, lastObjectValue } from '../json-usage.js';
import { eventData, eventName } from '../sse.js';
import type { StreamMeter, TokenUsage, UpstreamProvider } from '../types.js';

const DEFAULT_VERSION = '2023-06-01';
const VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const BETA_PATTERN = /^[A-Za-z0-9._,-]{1,500}$/;

/**
 * Input tokens of an Anthropic usage object. Cache writes and reads are reported apart from `input_tokens`; the
 * catalog has one input price, so all three are billed at it (docs/metering.md: cached-token pricing).
 */
function inputOf(u: Record<string, unknown>): number {
  return count(u.input_tokens) + count(u.cache_creation_input_tokens) + count(u.cache_read_input_tokens);
}

/**
 * Reads an Anthropic stream: `message_start` reports the input tokens, each `content_block_delta` is about one
 * output token, and `message_delta` carries the final cumulative output count.
 */
class AnthropicStreamMeter implements StreamMeter {
  inputTokens: number | null = null;
  outputDeltas = 0;
  failed = false;
  readonly hidesEvents = false;
  private finalOutput: number | null = null;

  get usage(): TokenUsage | null {
    return this.inputTokens !== null && this.finalOutput !== null ? { inputTokens: this.inputTokens, outputTokens: this.finalOutput } : null;
  }

  observe(event: string): boolean {
    switch (eventName(event)) {
      case 'content_block_delta':
        this.outputDeltas++;
        break;
      case 'message_start': {
        const usage = eventData(event)?.message?.usage;
        if (usage && typeof usage === 'object') this.inputTokens = inputOf(usage);
        break;
      }
      case 'message_delta': {
        const usage = eventData(event)?.usage;
        if (usage && typeof usage === 'object') {
          this.finalOutput = count(usage.output_tokens);
          // Newer API versions repeat the (cumulative) input counts here.
          if (usage.input_tokens !== undefined && usage.input_tokens !== null) this.inputTokens = inputOf(usage);
        }
        break;
      }
      case 'error':
        this.failed = true;
        break;
    }
    return true;
  }
}

export const anthropicProvider: UpstreamProvider = {
  name: 'anthropic',
  format: 'anthropic',
  defaultBaseUrl: 'https://api.anthropic.com',
  paths: { messages: '/v1/messages', countTokens: '/v1/messages/count_tokens' },

  headers(apiKey, client) {
    const version = client['anthropic-version'];
    const beta = client['anthropic-beta'];
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'anthropic-version': typeof version === 'string' && VERSION_PATTERN.test(version) ? version : DEFAULT_VERSION,
    };
    if (typeof beta === 'string' && BETA_PATTERN.test(beta)) headers['anthropic-beta'] = beta;
    if (apiKey) headers['x-api-key'] = apiKey;
    return headers;
  },

  adaptBody: () => false,

  usageFromJson(text) {
    const usage = lastObjectValue(text, 'usage');
    return usage ? { inputTokens: inputOf(usage), outputTokens: count(usage.output_tokens) } : null;
  },

  streamMeter: () => new AnthropicStreamMeter(),

  streamError(message) {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`;
  },
};
