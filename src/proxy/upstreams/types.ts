import type { IncomingHttpHeaders } from 'node:http';
import type { Provider } from '../../domain/models/models.service.js';

/** The wire format of an endpoint: its request and response shapes, its error body, its stream events. */
export type ApiFormat = 'openai' | 'anthropic';

/** The metered endpoints, by what they do (each belongs to one provider's format). */
export type MeteredEndpointName = 'chat' | 'embeddings' | 'messages';
/** Every upstream endpoint: the metered ones, and Anthropic's token counting (free upstream, so not metered). */
export type EndpointName = MeteredEndpointName | 'countTokens';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

/**
 * Watches a server-sent-event stream go by, one complete event at a time, and remembers what it says about usage.
 * It never parses an event unless that event can carry usage, so a long stream costs a few string tests per event.
 */
export interface StreamMeter {
  /** Reads one complete SSE event (without its blank line); returns false when the client must not see it. */
  observe(event: string): boolean;
  /** The provider's own final usage, once the stream carried it. */
  readonly usage: TokenUsage | null;
  /** Input tokens reported before the end (Anthropic's message_start), else null. */
  readonly inputTokens: number | null;
  /** Output deltas seen so far: the estimate of output tokens when the stream ends early. */
  readonly outputDeltas: number;
  /** The provider reported an error inside the stream. */
  readonly failed: boolean;
  /** Some events may be hidden from the client, so the stream must be relayed event by event, not chunk by chunk. */
  readonly hidesEvents: boolean;
}

/**
 * An upstream provider, as data plus small functions: where its endpoints are, how to authenticate, how to read
 * usage from a JSON response and from a stream. Adding a provider is adding a folder like openai/ or anthropic/.
 */
export interface UpstreamProvider {
  readonly name: Provider;
  readonly format: ApiFormat;
  /** The base URL its official SDK uses when none is configured. */
  readonly defaultBaseUrl: string;
  /** Endpoint paths relative to the base URL. */
  readonly paths: Partial<Record<EndpointName, string>>;
  /** Headers of every upstream request: the configured credential and the protocol headers this provider needs. */
  headers(apiKey: string | undefined, client: IncomingHttpHeaders): Record<string, string>;
  /** Adapts the client's body in place for metering (e.g. asks for stream usage); true when anything changed. */
  adaptBody(endpoint: EndpointName, body: Record<string, unknown>): boolean;
  /** Usage of a non-streaming JSON response, or null when it carries none. */
  usageFromJson(text: string): TokenUsage | null;
  /** A fresh meter for one streamed response. */
  streamMeter(options: { clientWantsUsage: boolean }): StreamMeter;
  /** An error event in this provider's stream format, for failures after the response has started. */
  streamError(message: string): string;
}
