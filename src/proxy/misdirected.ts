import { Router, type Request, type Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import { publicBase } from '../http/public-base.js';
import { sendProxyError, unknownUrl } from './errors.js';
import type { ApiFormat } from './upstreams/types.js';

const ANTHROPIC_PATHS = ['/messages', '/messages/*rest'];
const OPENAI_PATHS = ['/chat/completions', '/chat/completions/*rest', '/embeddings', '/responses', '/responses/*rest', '/models', '/models/*rest'];

/**
 * API calls that missed /v1, from a base URL without it: the OpenAI SDKs post to `<baseURL>/chat/completions`, the
 * AI SDK's `createAnthropic` to `<baseURL>/messages`. They get a JSON 404 in their API's format that says which base
 * URL to use — not the portal's HTML page, nor its CSRF 403 for a POST without Origin — so this is mounted before
 * the portal. Nothing here authenticates or reads the body.
 */
export function createMisdirectedApiRouter(deps: Pick<AppDeps, 'config' | 'logger'>): Router {
  const router = Router();
  const answer = (format: ApiFormat) => (req: Request, res: Response) => {
    const base = publicBase(req, deps.config.publicUrl);
    const advice = format === 'anthropic'
      ? `The Anthropic API is under ${base}/v1: give the Anthropic SDKs and ANTHROPIC_BASE_URL the base URL ${base} (they add /v1 themselves), and clients that post to <base URL>/messages (such as the AI SDK's createAnthropic) ${base}/v1.`
      : `The OpenAI-compatible API is under /v1: set the base URL (OPENAI_BASE_URL, baseURL) to ${base}/v1.`;
    sendProxyError(res, format, unknownUrl(req.method, req.originalUrl, advice), deps.logger);
  };
  router.all(ANTHROPIC_PATHS, answer('anthropic'));
  router.all(OPENAI_PATHS, answer('openai'));
  return router;
}
