import { z } from 'zod';
import type { Provider } from '../domain/models/models.service.js';
import { invalidRequest } from './errors.js';
import type { ApiFormat, MeteredEndpointName } from './upstreams/types.js';

/** What metering needs to know about a request; the body itself is forwarded as the client wrote it. */
export interface MeteredRequest {
  model: string;
  stream: boolean;
  /** The client asked for usage in its stream (OpenAI `stream_options.include_usage`). */
  clientWantsUsage: boolean;
  /** The client's own output cap, or null to fall back to the model's cap. */
  maxOutputTokens: number | null;
  /** How many completions the request asks for (OpenAI `n`): each may use the whole output cap. */
  choices: number;
  /**
   * Responses API: the stored response this one chains on (`previous_response_id`). Only one its key's own account
   * created through ModelBridge may be named (pipeline: checkChain), and the context it adds is held for.
   */
  previousResponseId?: string;
  /** Responses API: the upstream stores the response (`store`, default true), so its id is recorded for its owner. */
  storesResponse?: boolean;
}

export interface EndpointSpec {
  name: MeteredEndpointName;
  /** The public path, as recorded on holds and usage events. */
  path: string;
  format: ApiFormat;
  provider: Provider;
  /** The largest request body accepted (decompressed): the provider's own limit for this endpoint, see below. */
  maxBodyBytes: number;
  parse(body: Record<string, unknown>): MeteredRequest;
  /** The id the upstream gave a non-streamed response, from its JSON (endpoints whose responses are stored). */
  responseIdOfJson?(text: string): string | null;
}

const MiB = 1024 * 1024;
/**
 * Anthropic's published request size limit for the Messages and Token Counting APIs: 32 MB (docs: API overview,
 * "Request size limits"). Read as MiB, the larger reading, so nothing Anthropic takes is refused here.
 */
const ANTHROPIC_MAX_BODY_BYTES = 32 * MiB;
/**
 * OpenAI publishes no request size limit for chat completions or embeddings; the largest request it documents is
 * chat with images: up to 50 MB of image bytes per request (vision guide), which base64 inside JSON makes 66.7 MiB
 * (read as MiB), plus the text around them. Embeddings take the same limit (their published limits are in tokens).
 */
const OPENAI_MAX_BODY_BYTES = 68 * MiB;
export const COUNT_TOKENS_MAX_BODY_BYTES = ANTHROPIC_MAX_BODY_BYTES;

/** A token cap as the APIs take it; far above any real model, low enough that cost arithmetic stays exact. */
const tokenCap = z.number().int().min(1).max(10_000_000);
const modelId = z.string().min(1).max(200);

// Only the fields metering relies on are checked; the rest is the upstream's business. passthrough() keeps zod
// from rejecting the many other fields these APIs take.
const chatSchema = z
  .object({
    model: modelId,
    messages: z.array(z.unknown()).min(1),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish(),
    max_tokens: tokenCap.nullish(),
    max_completion_tokens: tokenCap.nullish(),
    n: z.number().int().min(1).max(128).nullish(),
  })
  .passthrough();

const embeddingsSchema = z
  .object({
    model: modelId,
    input: z.union([z.string(), z.array(z.unknown()).min(1)]),
  })
  .passthrough();

const messagesSchema = z
  .object({
    model: modelId,
    messages: z.array(z.unknown()).min(1),
    max_tokens: tokenCap,
    stream: z.boolean().nullish(),
  })
  .passthrough();

/**
 * The Responses API (create and compact). `background` is refused: a background response is answered at once and
 * generated later, its usage known only to whoever polls it, after the request and its hold have ended — it could
 * not be metered before its cost is spent. `conversation` is refused: the Conversations API is not served, so no
 * conversation can have been created through ModelBridge, and one from elsewhere in the operator's account is not
 * the caller's to read.
 */
const responsesSchema = z
  .object({
    model: modelId,
    input: z.union([z.string(), z.array(z.unknown())]).nullish(),
    instructions: z.string().nullish(),
    stream: z.boolean().nullish(),
    max_output_tokens: tokenCap.nullish(),
    previous_response_id: z.string().min(1).max(191).nullish(),
    store: z.boolean().nullish(),
    background: z.boolean().nullish().refine((v): boolean => v !== true, 'background mode is not supported by ModelBridge (a background response cannot be metered before it is generated); send the request without it'),
    conversation: z.unknown().refine((v): boolean => v === undefined || v === null, 'conversations are not supported by ModelBridge; chain responses with previous_response_id or send the whole input'),
  })
  .passthrough();

const compactSchema = responsesSchema.extend({ stream: z.boolean().nullish().refine((v): boolean => v !== true, 'compaction is not streamed') });

function responsesRequest(b: z.infer<typeof responsesSchema>): MeteredRequest {
  return {
    model: b.model,
    stream: b.stream === true,
    clientWantsUsage: true,
    maxOutputTokens: b.max_output_tokens ?? null,
    choices: 1,
    ...(b.previous_response_id ? { previousResponseId: b.previous_response_id } : {}),
    storesResponse: b.store !== false,
  };
}

/** The top-level `id` of a Responses API JSON answer. */
function responseIdOfJson(text: string): string | null {
  try {
    const id: unknown = (JSON.parse(text) as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

function check<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  throw invalidRequest(`Invalid request: ${field}: ${issue.message}.`);
}

export const ENDPOINTS: Record<MeteredEndpointName, EndpointSpec> = {
  chat: {
    name: 'chat',
    path: '/v1/chat/completions',
    format: 'openai',
    provider: 'openai',
    maxBodyBytes: OPENAI_MAX_BODY_BYTES,
    parse(body) {
      const b = check(chatSchema, body);
      const caps = [b.max_tokens, b.max_completion_tokens].filter((c): c is number => typeof c === 'number');
      return {
        model: b.model,
        stream: b.stream === true,
        clientWantsUsage: b.stream_options?.include_usage === true,
        maxOutputTokens: caps.length ? Math.max(...caps) : null,
        choices: b.n ?? 1,
      };
    },
  },
  embeddings: {
    name: 'embeddings',
    path: '/v1/embeddings',
    format: 'openai',
    provider: 'openai',
    maxBodyBytes: OPENAI_MAX_BODY_BYTES,
    parse(body) {
      const b = check(embeddingsSchema, body);
      return { model: b.model, stream: false, clientWantsUsage: false, maxOutputTokens: 0, choices: 1 };
    },
  },
  messages: {
    name: 'messages',
    path: '/v1/messages',
    format: 'anthropic',
    provider: 'anthropic',
    maxBodyBytes: ANTHROPIC_MAX_BODY_BYTES,
    parse(body) {
      const b = check(messagesSchema, body);
      return { model: b.model, stream: b.stream === true, clientWantsUsage: true, maxOutputTokens: b.max_tokens, choices: 1 };
    },
  },
  responses: {
    name: 'responses',
    path: '/v1/responses',
    format: 'openai',
    provider: 'openai',
    maxBodyBytes: OPENAI_MAX_BODY_BYTES,
    parse: (body) => responsesRequest(check(responsesSchema, body)),
    responseIdOfJson,
  },
  compact: {
    name: 'compact',
    path: '/v1/responses/compact',
    format: 'openai',
    provider: 'openai',
    maxBodyBytes: OPENAI_MAX_BODY_BYTES,
    // A compaction is returned, not stored: there is no id to record.
    parse: (body) => ({ ...responsesRequest(check(compactSchema, body)), storesResponse: false }),
  },
};

/** Where a provider's models are served, for the 400 that names the right endpoint. */
export const ENDPOINT_OF_PROVIDER: Record<Provider, string> = {
  openai: 'POST /v1/chat/completions or /v1/responses (or /v1/embeddings)',
  anthropic: 'POST /v1/messages, or /v1/chat/completions (translated)',
};
