import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { expectBill } from './support/bill.js';
import { runClaude } from './support/claude-code.js';
import { startInstallation, type Installation } from './support/installation.js';

/**
 * Claude Code with an OpenAI model (ANTHROPIC_MODEL=gpt-5.5): it speaks Anthropic Messages, ModelBridge translates
 * each request to OpenAI Chat Completions and the answer back (docs/compatibility.md). A tool round trip, billed at
 * the OpenAI upstream's usage, request by request.
 */

let fake: FakeUpstream;
let install: Installation;
let secret: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  install = await startInstallation({ anthropicBaseUrl: fake.anthropicBaseUrl, anthropicApiKey: 'sk-ant-upstream', openaiBaseUrl: fake.openaiBaseUrl, openaiApiKey: 'sk-openai-upstream' });
  ({ secret } = await install.userWithKey('claude-code-openai@example.test', '50'));
});

afterAll(async () => {
  await install?.close();
  await fake?.close();
});

describe('Claude Code with an OpenAI model, translated', () => {
  it('reads a file with its Read tool on gpt-5.5 and is billed at the OpenAI usage', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claude-openai-'));
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'The secret word is CANARY-TRANSLATED.\n');
    fake.setResponder((body, api) => {
      if (api !== 'openai') return { blocks: [{ type: 'text', text: 'A side answer.' }] };
      const result = body.messages.find((m: { role: string }) => m.role === 'tool');
      if (result) return { blocks: [{ type: 'text', text: `The file says: ${/CANARY-\w+/.exec(JSON.stringify(result.content))?.[0] ?? 'nothing'}` }] };
      const offersRead = Array.isArray(body.tools) && body.tools.some((t: { function?: { name?: string } }) => t.function?.name === 'Read');
      return offersRead ? { blocks: [{ type: 'tool_use', name: 'Read', input: { file_path: file } }] } : { blocks: [{ type: 'text', text: 'Hello.' }] };
    });
    try {
      const run = await runClaude({
        baseUrl: install.url, auth: { ANTHROPIC_API_KEY: secret }, prompt: `Read the file ${file} and tell me what it says.`, cwd: dir,
        args: ['--allowedTools', 'Read'], env: { ANTHROPIC_MODEL: 'gpt-5.5' },
      });
      expect(run.timedOut).toBe(false);
      expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'The file says: CANARY-TRANSLATED' });
      const chat = fake.requests.filter((r) => r.path === '/v1/chat/completions');
      expect(chat.length).toBeGreaterThanOrEqual(2);
      expect(chat.every((r) => r.body.model === 'gpt-5.5')).toBe(true);
      const summary = await expectBill(install.db, fake.requests, 0);
      expect(summary.refused).toBe(0);
      expect(summary.charged).toBe(fake.requests.filter((r) => r.reported !== undefined).length);
      await expectMeteringInvariants(install.db);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
