import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import type { EndpointName, UpstreamProvider } from './types.js';

/** Where one provider's requests go: from configuration only (or the built-in demo), never from the request. */
export interface UpstreamTarget {
  provider: UpstreamProvider;
  /** scheme://host:port */
  origin: string;
  /** Path prefix of the base URL, without a trailing slash ('/v1' for OpenAI, '' for Anthropic). */
  basePath: string;
  apiKey: string | undefined;
  demo: boolean;
}

export interface UpstreamRequest {
  body: string | Buffer;
  clientHeaders: IncomingHttpHeaders;
  signal: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/** A request without a body to a path under the base URL (reading or deleting a stored object). */
export interface UpstreamCall {
  method: 'GET' | 'DELETE';
  /** Relative to the base URL, query included; built by the proxy, never taken whole from the client. */
  path: string;
  clientHeaders: IncomingHttpHeaders;
  signal: AbortSignal;
}

export interface UpstreamClient {
  send(target: UpstreamTarget, endpoint: EndpointName, request: UpstreamRequest): Promise<UpstreamResponse>;
  call(target: UpstreamTarget, request: UpstreamCall): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/**
 * One pooled undici Agent for every upstream: keep-alive connections are reused across requests (no TLS or TCP
 * handshake on the hot path), and a timeout applies both to the response headers and to each gap in the body.
 */
export function createUpstreamClient(options: { timeoutMs: number }): UpstreamClient {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 10 * 60_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: { timeout: Math.min(options.timeoutMs, 10_000) },
  });
  return {
    send(target, endpoint, request) {
      return agent.request({
        origin: target.origin,
        path: target.basePath + (target.provider.paths[endpoint] ?? ''),
        method: 'POST',
        headers: target.provider.headers(target.apiKey, request.clientHeaders),
        body: request.body,
        signal: request.signal,
      });
    },
    call(target, request) {
      return agent.request({
        origin: target.origin,
        path: target.basePath + request.path,
        method: request.method,
        headers: target.provider.headers(target.apiKey, request.clientHeaders),
        signal: request.signal,
      });
    },
    close: () => agent.close(),
  };
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** 504 when the upstream was too slow, 502 when it could not be reached or broke the connection. */
export function isUpstreamTimeout(err: unknown): boolean {
  return TIMEOUT_CODES.has((err as { code?: string } | null)?.code ?? '');
}
