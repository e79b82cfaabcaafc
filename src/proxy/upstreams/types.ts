import type { IncomingHttpHeaders } from 'node:http';
import type { Provider } from '../../domain/models/models.service.js';
import type { TokenUsage } from '../../domain/models/pricing.js';

export type { TokenUsage };

/** The wire format of an endpoint: its request and response shapes, its error body, its stream events. */
export type ApiFormat = 'openai' | 'anthropic';

/** The metered endpoints, by what they do (each belongs to one provider's format). */
export type MeteredEndpointName = 'chat' | 'embeddings' | 'messages' | 'responses' | 'compact';
/** Every upstream endpoint: the metered ones, and Anthropic's token counting (free upstream, so not metered). */
export type EndpointName = MeteredEndpointName | 'countTokens';

/** The input side of a usage report (what Anthropic's message_start tells before the output is known). */
export type InputUsage = Pick<TokenUsage, 'inputTokens' | 'cachedInputTokens' | 'cacheWrite5mTokens' | 'cacheWrite1hTokens'>;

/**
 * Watches a server-sent-event stream go by, one complete event at a time, and remembers what it says about usage.
 * It never parses an event unless that event can carry usage or the end of generation, so a long stream costs a few
 * string tests per event (and, for the output bound, keeping the generated text or its length).
 */
export interface StreamMeter {
  /** Reads one complete SSE event (without its blank line); returns false when the client must not see it. */
  observe(event: string): boolean;
  /** The provider's own final usage, once the stream carried it. */
  readonly usage: TokenUsage | null;
  /** The input, by kind, as reported before the end (Anthropic's message_start), else null. */
  readonly reportedInput: InputUsage | null;
  /** Output deltas seen so far (an OpenAI chunk with content, an Anthropic `content_block_delta`). */
  readonly outputDeltas: number;
  /**
   * The upstream has finished generating (every OpenAI choice has its `finish_reason`; Anthropic's `message_delta`
   * with a `stop_reason`, or `message_stop`; a Responses API meter would say so at `response.completed`): what is
   * left of the stream is its usage report, so a client that leaves now does not end the upstream request.
   */
  readonly finished: boolean;
  /**
   * An upper bound of the output tokens generated so far, from what the stream showed, for a stream that ends before
   * its usage report; `cap` (the request's output bound) when that is lower. Computed only when asked (it may
   * tokenize the text received), so ask once, at the end.
   */
  outputTokensBound(cap: number): Promise<number>;
  /**
   * A cheap running upper bound of the output tokens received so far — the UTF-8 bytes of the generated text, at
   * least one per delta — read after every chunk by a stream whose hold grows (src/proxy/hold-growth.ts).
   */
  readonly outputSoFar: number;
  /**
   * The events, in this provider's stream format (each without its blank line), that end the stream here as if the
   * model had stopped at its output cap: what a stream cut at its hold gets (OpenAI: a last chunk with
   * `finish_reason: "length"` for every unfinished choice and `[DONE]`; Anthropic: the open content block's stop,
   * `message_delta` with `stop_reason: "max_tokens"` and `message_stop`). Real SDKs finish on them without error.
   */
  cutEvents(): string[];
  /** The provider reported an error inside the stream. */
  readonly failed: boolean;
  /** The id the upstream gave the response (OpenAI Responses API `response.created`), once seen. */
  readonly responseId?: string | null;
  /**
   * The error event that ends this stream when the upstream broke it, in the stream's own format, when it is not
   * the provider's usual one (streamError).
   */
  errorEvent?(message: string): string;
  /** Some events may be hidden from the client, so the stream must be relayed event by event, not chunk by chunk. */
  readonly hidesEvents: boolean;
  /**
   * A visible event as the client gets it, in a stream relayed event by event (hidesEvents): without what the
   * proxy's own change to the request added to it. Absent: as received.
   */
  shownAs?(event: string): string;
}

export interface StreamMeterOptions {
  /**
   * The endpoint streamed: a provider may speak two stream formats (OpenAI Chat Completions and the Responses API).
   * Absent: the provider's usual one.
   */
  endpoint?: MeteredEndpointName;
  clientWantsUsage: boolean;
  /** The model name sent upstream (it decides the tokenizer). */
  upstreamModel: string;
  /** How many completions the request asks for (OpenAI `n`). */
  choices: number;
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
  /**
   * Refuses (ProxyError 400) a client protocol header that `headers` could not forward as meant. Called before
   * admission, so a refused request is neither forwarded nor charged.
   */
  checkHeaders?(client: IncomingHttpHeaders): void;
  /** Adapts the client's body in place for metering (e.g. asks for stream usage); true when anything changed. */
  adaptBody(endpoint: EndpointName, body: Record<string, unknown>): boolean;
  /** Usage of a non-streaming JSON response, or null when it carries none. */
  usageFromJson(text: string): TokenUsage | null;
  /** A fresh meter for one streamed response. */
  streamMeter(options: StreamMeterOptions): StreamMeter;
  /** An error event in this provider's stream format, for failures after the response has started. */
  streamError(message: string): string;
}
