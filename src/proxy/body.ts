import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Request } from 'express';
import { invalidRequest, requestTooLarge, unsupportedEncoding } from './errors.js';

export interface JsonBody {
  /** The body as JSON text (decompressed if it came compressed): what is forwarded when nothing needs changing. */
  raw: Buffer;
  json: Record<string, unknown>;
}

/** The content codings a request body may come in, each with its streaming decoder. */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => createGunzip(),
  'x-gzip': () => createGunzip(),
  deflate: () => createInflate(),
  br: () => createBrotliDecompress(),
};

/**
 * Deepest nesting of objects and arrays a request body may have. Real requests (messages, content blocks, tool
 * JSON schemas) stay far below it; a body nested thousands of levels deep parses, but then overflows the stack of
 * every recursive walk after it (JSON.stringify when forwarding, the translators), which surfaced as a 502.
 */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether JSON text nests deeper than `max`, by one pass over its bytes that skips string contents (UTF-8
 * continuation bytes are all ≥ 0x80, so none is mistaken for a bracket or a quote). Checked before parsing, so
 * nothing recursive ever sees such a body.
 */
export function nestingExceeds(raw: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * Reads and parses a JSON object body of at most `limit` bytes (the endpoint's: see EndpointSpec.maxBodyBytes).
 * Every failure is a 4xx ProxyError, never a 500.
 */
export async function readJsonBody(req: Request, limit: number): Promise<JsonBody> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoder = encoding === 'identity' || encoding === '' ? null : DECODERS[encoding];
  if (decoder === undefined) throw unsupportedEncoding();
  // The declared length counts the bytes on the wire: for a compressed body it bounds the input, not the output.
  if (Number(req.headers['content-length']) > limit) throw requestTooLarge(limit);
  const raw = await readBounded(req, limit, decoder && { name: encoding, decoder: decoder() });
  if (nestingExceeds(raw, MAX_JSON_DEPTH)) throw invalidRequest(`The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest('The request body is not valid JSON.');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw invalidRequest('The request body must be a JSON object.');
  return { raw, json: json as Record<string, unknown> };
}

/**
 * The body's bytes, decoded when it is compressed, refused (413) as soon as they pass `limit`. Decoding is streamed
 * and stops there, so a zip bomb costs at most `limit` bytes of memory whatever its ratio (and its compressed
 * bytes are bounded by `limit` too). A refused body is drained rather than destroyed: destroying the request would
 * reset the connection, and the client would never read its 413.
 */
function readBounded(req: Request, limit: number, coding: { name: string; decoder: Transform } | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const output = coding?.decoder ?? req;
    const chunks: Buffer[] = [];
    let size = 0;
    let wire = 0;
    let settled = false;

    const onOutput = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(requestTooLarge(limit));
      chunks.push(chunk);
    };
    const onWire = (chunk: Buffer) => {
      wire += chunk.length;
      if (wire > limit) finish(requestTooLarge(limit));
    };
    const onEnd = () => finish(null);
    const onBadData = () => finish(invalidRequest(`The request body is not valid ${coding!.name} data (Content-Encoding: ${coding!.name}).`));
    // The client went away mid-body: nobody will read the answer, so what is thrown hardly matters.
    const onGone = () => finish(invalidRequest('The request body ended early.'));
    const onClose = () => {
      if (!req.complete) onGone();
    };

    function finish(err: Error | null): void {
      if (settled) return;
      settled = true;
      output.off('data', onOutput);
      output.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
      if (coding) {
        req.off('data', onWire);
        req.unpipe(coding.decoder);
        coding.decoder.destroy();
      }
      if (err) {
        req.resume(); // drain what is left, see above
        reject(err);
      } else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    }

    output.on('data', onOutput);
    output.once('end', onEnd);
    req.once('error', onGone);
    req.once('close', onClose);
    if (coding) {
      coding.decoder.on('error', onBadData); // stays attached: a decoder destroyed here may still report an error
      req.on('data', onWire);
      req.pipe(coding.decoder);
    }
  });
}
