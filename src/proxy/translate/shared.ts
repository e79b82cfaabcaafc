import { invalidRequest, type ProxyError } from '../errors.js';
import type { Json } from './types.js';

/**
 * The 400 for a parameter the other format has no equivalent for. Never silently dropped: a client that asked for
 * something must learn it was not done.
 */
export function untranslatable(param: string, why: string): ProxyError {
  return invalidRequest(`${param}: ${why}`);
}

/** A malformed field of the client's body (a 400, never a 500 from reading it). */
export function malformed(param: string, expected: string): ProxyError {
  return invalidRequest(`Invalid request: ${param}: expected ${expected}.`);
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function objectAt(value: unknown, param: string): Json {
  if (!isObject(value)) throw malformed(param, 'an object');
  return value;
}

export function arrayAt(value: unknown, param: string): unknown[] {
  if (!Array.isArray(value)) throw malformed(param, 'an array');
  return value;
}

export function stringAt(value: unknown, param: string): string {
  if (typeof value !== 'string') throw malformed(param, 'a string');
  return value;
}

/** Absent: JSON's null and a missing field mean the same to both APIs. */
export function absent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)(?:;[\w-]+=[^;,]*)*;base64,/;

/** The media type and base64 data of a `data:` URL, or null when it is not a base64 data URL. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | null {
  const m = DATA_URL.exec(url);
  return m ? { mediaType: m[1]!.toLowerCase(), data: url.slice(m[0].length) } : null;
}

/** Arguments of a tool call as the object Anthropic takes (OpenAI sends them as a JSON string). */
export function parseArguments(args: unknown, param: string): Json {
  if (absent(args) || args === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(stringAt(args, param));
  } catch {
    throw malformed(param, 'a JSON object in a string');
  }
  if (!isObject(parsed)) throw malformed(param, 'a JSON object in a string');
  return parsed;
}

/** A JSON error body of an upstream, or null when it is not one. */
export function parseJsonObject(body: Buffer): Json | null {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

/** One SSE event as the OpenAI format writes it. */
export function openaiEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/** One SSE event as the Anthropic format writes it. */
export function anthropicEvent(type: string, data: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}
