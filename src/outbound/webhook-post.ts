import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isForbiddenAddress } from './address-policy.js';

export interface PostOptions {
  /** Reach loopback / private receivers (MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean;
  /** The whole exchange, connect to last byte read. */
  timeoutMs?: number;
}

/** What came back: a status code, or an error short enough to show (never a secret: we send none in URLs). */
export type PostResult = { statusCode: number } | { error: string };

export const WEBHOOK_TIMEOUT_MS = 10_000;
/** The most of a response read (the status is all that counts; the rest is discarded). */
export const RESPONSE_BYTES_MAX = 64 * 1024;
/** Our own payloads are small; a bigger body is a bug, not something to send. */
export const REQUEST_BYTES_MAX = 256 * 1024;

/**
 * POSTs a webhook without letting it reach where it should not (docs/webhooks.md): the name is resolved first and
 * refused if ANY of its addresses is forbidden, then the connection is pinned to the checked address (the `lookup`
 * option), so a DNS answer that changes between check and connect (rebinding) cannot redirect it. Redirects are not
 * followed (a 3xx is just a status); one timeout covers the exchange; at most RESPONSE_BYTES_MAX is read.
 */
export async function postWebhook(rawUrl: string, body: string, headers: Record<string, string>, options: PostOptions): Promise<PostResult> {
  const url = new URL(rawUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { error: 'unsupported URL scheme' };
  if (Buffer.byteLength(body) > REQUEST_BYTES_MAX) return { error: 'payload too large' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await dns.lookup(host, { all: true, verbatim: true });
  } catch {
    return { error: `could not resolve ${host.slice(0, 100)}` };
  }
  if (!addresses.length) return { error: `could not resolve ${host.slice(0, 100)}` };
  if (!options.allowPrivate && addresses.some((a) => isForbiddenAddress(a.address)))
    return { error: 'refused: the host resolves to a loopback, private or link-local address' };
  const pinned = addresses[0]!;
  const lookup = ((_name: string, opts: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (opts?.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  }) as unknown as LookupFunction;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (result: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = client.request(url, {
      method: 'POST', lookup, agent: false,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'ModelBridge-Webhooks/1' },
    }, (res) => {
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read >= RESPONSE_BYTES_MAX) finish({ statusCode: res.statusCode ?? 0 });
      });
      res.on('end', () => finish({ statusCode: res.statusCode ?? 0 }));
      res.on('error', () => finish({ statusCode: res.statusCode ?? 0 }));
    });
    const timer = setTimeout(() => finish({ error: `timed out after ${options.timeoutMs ?? WEBHOOK_TIMEOUT_MS} ms` }), options.timeoutMs ?? WEBHOOK_TIMEOUT_MS);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ error: `connection failed (${err.code ?? 'error'})` }));
    req.end(body);
  });
}
