import type { Socket } from 'node:net';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import type { Provider } from '../../../domain/models/models.service.js';
import { anthropicCountTokens, anthropicMessage, anthropicStream, openaiChat, openaiChatStream, openaiEmbeddings, type DemoBody } from './replies.js';
import { openaiCompaction, openaiResponse, openaiResponseStream } from './responses.js';

/**
 * The built-in demo upstream: an OpenAI- and Anthropic-compatible endpoint this app serves itself under /demo, used
 * for a provider that has no configuration, so a new installation can try the whole flow (key → request →
 * metering → usage) right after `npm start`. Its replies say plainly that they are demo text.
 *
 * The proxy reaches it over HTTP through the same provider code as a real upstream. It is not public: it answers
 * only Config.demoToken, a random credential that only the installation's own proxy sends (shared by the workers of
 * a cluster), so nobody can use /demo directly.
 */

/** The demo base URL, in the form the provider's SDK takes, on the local address a request arrived at. */
export function demoBaseUrl(provider: Provider, socket: Socket): string {
  let host = socket.localAddress ?? '127.0.0.1';
  if (host.startsWith('::ffff:')) host = host.slice(7);
  if (host.includes(':')) host = `[${host}]`;
  const origin = `http://${host}:${socket.localPort}`;
  return provider === 'openai' ? `${origin}/demo/openai/v1` : `${origin}/demo/anthropic`;
}

function presented(req: Request): string {
  const auth = req.get('authorization');
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  return req.get('x-api-key') ?? '';
}

const requireDemoToken = (token: string) => (req: Request, res: Response, next: NextFunction): void => {
  const expected = Buffer.from(token);
  const given = Buffer.from(presented(req));
  if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
  const message = 'The demo upstream is only reachable through ModelBridge’s /v1 endpoints.';
  res.status(401).json(req.path.startsWith('/anthropic/')
    ? { type: 'error', error: { type: 'authentication_error', message } }
    : { error: { message, type: 'invalid_request_error', code: 'invalid_api_key', param: null } });
};

/** A demo endpoint: its stream when the request asks for one (if it streams), else its JSON answer. */
function demoReply(json: (body: DemoBody) => unknown, stream?: (res: Response, body: DemoBody) => void) {
  return (req: Request, res: Response) => {
    const body = req.body as DemoBody;
    if (stream && body.stream === true) return stream(res, body);
    res.json(json(body));
  };
}

export function createDemoUpstreamRouter(token: string): Router {
  const router = Router();
  router.use(requireDemoToken(token), express.json({ limit: '12mb' }));
  router.post('/openai/v1/chat/completions', demoReply(openaiChat, openaiChatStream));
  router.post('/openai/v1/responses', demoReply(openaiResponse, openaiResponseStream));
  router.post('/openai/v1/responses/compact', demoReply(openaiCompaction));
  router.post('/openai/v1/embeddings', demoReply(openaiEmbeddings));
  router.post('/anthropic/v1/messages', demoReply(anthropicMessage, anthropicStream));
  router.post('/anthropic/v1/messages/count_tokens', demoReply(anthropicCountTokens));
  return router;
}
