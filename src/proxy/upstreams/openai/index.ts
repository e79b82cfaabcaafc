import { count, lastObjectValue } from '../json-usage.js';
import { eventData } from '../sse.js';
import type { EndpointName, StreamMeter, TokenUsage, UpstreamProvider } from '../types.js';

/** A chunk that carries generated text, tool-call arguments, a refusal or reasoning: about one token each. */
const OUTPUT_DELTA = /"(?:content|arguments|refusal|reasoning_content|reasoning)":"(?!")/;

function usageOf(u: Record<string, unknown>): TokenUsage {
  return { inputTokens: count(u.prompt_tokens), outputTokens: count(u.completion_tokens) };
}

/**
 * Reads an OpenAI chat stream. The proxy always asks the upstream for `stream_options.include_usage`, which adds a
 * last chunk with `choices: []` and the usage; a client that did not ask for it must not see it (strict clients
 * choke on a chunk without choices), so that one chunk is hidden.
 */
class OpenAiStreamMeter implements StreamMeter {
  usage: TokenUsage | null = null;
  readonly inputTokens = null;
  outputDeltas = 0;
  failed = false;

  readonly hidesEvents: boolean;

  constructor(private readonly clientWantsUsage: boolean) {
    this.hidesEvents = !clientWantsUsage;
  }

  observe(event: string): boolean {
    let visible = true;
    if (event.includes('"usage":{')) {
      const data = eventData(event);
      if (data?.usage && typeof data.usage === 'object') {
        this.usage = usageOf(data.usage);
        if (!this.clientWantsUsage && Array.isArray(data.choices) && data.choices.length === 0) visible = false;
      }
    } else if (event.includes('"error":') && eventData(event)?.error) {
      this.failed = true;
    }
    if (OUTPUT_DELTA.test(event)) this.outputDeltas++;
    return visible;
  }
}

export const openaiProvider: UpstreamProvider = {
  name: 'openai',
  format: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  paths: { chat: '/chat/completions', embeddings: '/embeddings' },

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

  streamMeter: ({ clientWantsUsage }) => new OpenAiStreamMeter(clientWantsUsage),

  streamError(message) {
    return `data: ${JSON.stringify({ error: { message, type: 'server_error', code: 'upstream_error', param: null } })}\n\n`;
  },
};
