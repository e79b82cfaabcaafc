import { request as httpRequest } from 'node:http';
import { brotliCompressSync, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { proxyFixture } from '../support/proxy-fixture.js';

const MiB = 1024 * 1024;
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 };
const message = { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] };
/** A message whose body is about `bytes` long (one long text). */
const messageOf = (bytes: number) => ({ ...message, messages: [{ role: 'user', content: 'x'.repeat(bytes) }] });

/** A message body padded to about `bytes`, as chunks (no huge string to build). */
function messageChunks(bytes: number): Buffer[] {
  const chunks = [Buffer.from('{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"')];
  for (let written = 0; written < bytes; written += MiB) chunks.push(Buffer.alloc(MiB, 'x'));
  chunks.push(Buffer.from('"}]}'));
  return chunks;
}

/** A gzip stream of a JSON body padded to `bytes` of text, built chunk by chunk (never whole in memory). */
async function gzipBomb(bytes: number): Promise<Buffer> {
  const gzip = createGzip();
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  gzip.write('{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"');
  const piece = Buffer.alloc(MiB, 'x');
  for (let written = 0; written < bytes; written += piece.length) {
    if (!gzip.write(piece)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end('"}]}');
  await done;
  return Buffer.concat(out);
}

describe(`request bodies as large and as encoded as the providers accept (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;
  let keyId: string;

  const f = proxyFixture({ prepaidMicro: 500_000_000 });
  beforeAll(() => void ({ fake, app, secret, keyId } = f));

  const usageEvents = async () => (await app.t.db('usage_events').where({ key_id: keyId })).length;

  const authFor = (path: string): Record<string, string> => (path.startsWith('/v1/messages') ? { 'x-api-key': secret } : { authorization: `Bearer ${secret}` });

  async function post(path: string, body: string | Buffer | ReadableStream, headers: Record<string, string> = {}) {
    const auth = authFor(path);
    const r = await fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth, ...headers },
      body,
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    const text = await r.text();
    return { status: r.status, json: JSON.parse(text) };
  }

  /** A request that declares `bytes` of body and sends none: refused on its content-length alone. */
  function declaring(path: string, bytes: number): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': bytes, ...authFor(path) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  describe('size limits', () => {
    it('accepts a 12 MB message (above the old 10 MB; Anthropic takes 32 MB) and forwards it whole', async () => {
      const body = JSON.stringify(messageOf(12 * MiB));
      const r = await post('/v1/messages', body);
      expect(r.status).toBe(200);
      expect(fake.requests[0]!.body.messages[0].content).toHaveLength(12 * MiB);
    });

    it('refuses a message above 32 MB with 413 request_too_large in the Anthropic format, declared or streamed', async () => {
      const before = await usageEvents();
      const declared = await declaring('/v1/messages', 33 * MiB);
      expect(declared.status).toBe(413);
      expect(declared.json).toEqual({ type: 'error', error: { type: 'request_too_large', message: expect.stringContaining('32 MB') } });
      // Without a content-length (chunked): refused once the bytes read pass the limit, still with an answer.
      const streamed = await post('/v1/messages', new ReadableStream({
        start(controller) {
          for (const chunk of messageChunks(33 * MiB)) controller.enqueue(chunk);
          controller.close();
        },
      }));
      expect(streamed.status).toBe(413);
      expect(streamed.json.error.type).toBe('request_too_large');
      const counted = await declaring('/v1/messages/count_tokens', 33 * MiB);
      expect(counted.status).toBe(413);
      expect(fake.requests).toHaveLength(0);
      expect(await usageEvents()).toBe(before);
    });

    it('accepts a 33 MB chat completion (above Anthropic’s limit; OpenAI takes 50 MB of images, base64-encoded) and refuses one above its limit with 413 in the OpenAI format', async () => {
      const before = await usageEvents();
      const ok = await post('/v1/chat/completions', JSON.stringify({ ...chat, messages: [{ role: 'user', content: 'x'.repeat(33 * MiB) }] }));
      expect(ok.status).toBe(200);
      const huge = await declaring('/v1/chat/completions', 69 * MiB);
      expect(huge.status).toBe(413);
      expect(huge.json.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
      expect(fake.requests).toHaveLength(1);
      expect(await usageEvents()).toBe(before + 1);
    });
  });

  describe('compressed bodies', () => {
    it('accepts gzip, deflate and br, and forwards the decompressed JSON', async () => {
      const json = JSON.stringify(message);
      const encoded: Array<[string, Buffer]> = [['gzip', gzipSync(json)], ['deflate', deflateSync(json)], ['br', brotliCompressSync(json)], ['GZIP', gzipSync(json)]];
      for (const [encoding, body] of encoded) {
        const r = await post('/v1/messages', body, { 'content-encoding': encoding });
        expect(r.status, encoding).toBe(200);
      }
      const chatted = await post('/v1/chat/completions', gzipSync(JSON.stringify(chat)), { 'content-encoding': 'gzip' });
      expect(chatted.status).toBe(200);
      expect(fake.requests).toHaveLength(5);
      for (const rec of fake.requests) {
        expect(rec.headers['content-encoding']).toBeUndefined();
        expect(rec.body.messages).toEqual(message.messages);
      }
    });

    it('refuses a zip bomb with 413 once the decompressed bytes pass the limit, forwarding and charging nothing', async () => {
      const before = await usageEvents();
      const bomb = await gzipBomb(96 * MiB);
      expect(bomb.length).toBeLessThan(MiB);
      const held = () => { const m = process.memoryUsage(); return m.heapUsed + m.external; };
      const heldBefore = held();
      const r = await post('/v1/messages', bomb, { 'content-encoding': 'gzip' });
      expect(r.status).toBe(413);
      expect(r.json.error.type).toBe('request_too_large');
      // Decompression stopped at the limit: the bomb’s 96 MB were never all held.
      expect(held() - heldBefore).toBeLessThan(64 * MiB);
      expect(fake.requests).toHaveLength(0);
      expect(await usageEvents()).toBe(before);
    });

    it('refuses a body that is not what its content-encoding says with 400, and an unknown encoding with 415', async () => {
      const bad = await post('/v1/chat/completions', JSON.stringify(chat), { 'content-encoding': 'gzip' });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request' });
      expect(bad.json.error.message).toContain('gzip');
      const unknown = await post('/v1/messages', JSON.stringify(message), { 'content-encoding': 'compress' });
      expect(unknown.status).toBe(415);
      expect(unknown.json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(fake.requests).toHaveLength(0);
    });
  });
});
