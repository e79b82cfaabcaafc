import type { MeteredEndpointName } from '../upstreams/types.js';

/**
 * A translator serves a client format with another provider's models: it turns the client's request into the
 * upstream's, and the upstream's answer (JSON, stream events, error body) back into the client's format. Every
 * function is pure over the payloads (a stream translator keeps only the state of its one stream), so each
 * direction is tested without a network. Metering never looks at a translation: the upstream provider's own usage
 * readers read the upstream's answer before it is translated.
 */
export interface Translator {
  /** The upstream endpoint the translated request goes to. */
  readonly upstreamEndpoint: MeteredEndpointName;
  /** The upstream's request body; throws ProxyError 400 naming a parameter that cannot be translated. */
  request(body: Record<string, unknown>, limits: TranslationLimits): TranslatedRequest;
  /** A non-streaming upstream answer, in the client's format. */
  response(upstream: Record<string, unknown>): Record<string, unknown>;
  /** A translator for one upstream stream. */
  stream(options: { clientWantsUsage: boolean }): StreamTranslator;
  /** An upstream error body (4xx), in the client's error format. */
  error(status: number, body: Buffer): Record<string, unknown>;
  /**
   * The input tokens of a translated request, for an upstream that has no token-counting endpoint of its own (the
   * client's format has one: Anthropic's count_tokens). Absent: the upstream counts.
   */
  countInputTokens?(upstreamBody: Record<string, unknown>, upstreamModel: string): Promise<number>;
}

export interface TranslationLimits {
  /** The output cap to ask for when the client gave none and the upstream requires one (the catalog's cap). */
  defaultMaxTokens: number;
}

export interface TranslatedRequest {
  body: Record<string, unknown>;
  /** The output cap the translated request asks the upstream for (null: none, the model's own). */
  maxOutputTokens: number | null;
}

/** Translates one upstream stream, event by event. */
export interface StreamTranslator {
  /** One complete upstream SSE event (without its blank line) → the client's SSE text for it ('' for none). */
  event(event: string): string;
  /**
   * The upstream stream ended cleanly (not broken, not cut by the client): whatever the client's format still needs
   * to be complete (an OpenAI-compatible server may end without `[DONE]`).
   */
  end(): string;
}

/** An untrusted JSON object (a field of the client's body or of the upstream's answer). */
export type Json = Record<string, unknown>;
