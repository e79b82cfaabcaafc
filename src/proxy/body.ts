import type { Request } from 'express';
import { invalidRequest, requestTooLarge } from './errors.js';

/** Largest request body the proxy accepts: far above any prompt, small enough that one request cannot hog memory. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface JsonBody {
  raw: Buffer;
  json: Record<string, unknown>;
}

/** Reads and parses a JSON object body. Every failure is a 4xx ProxyError, never a 500. */
export async function readJsonBody(req: Request, limit = MAX_BODY_BYTES): Promise<JsonBody> {
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding !== 'identity') throw invalidRequest('Compressed request bodies are not supported; send plain JSON.');
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw requestTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw requestTooLarge(limit);
    chunks.push(chunk);
  }
  const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest('The request body is not valid JSON.');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw invalidRequest('The request body must be a JSON object.');
  return { raw, json: json as Record<string, unknown> };
}
