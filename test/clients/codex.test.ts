import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalogSeed } from '../../migrations/seed/catalog.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream, type TokenKinds } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

/**
 * The Codex CLI (npm @openai/codex, a native binary) runs `codex exec` end to end through ModelBridge against the fake
 * Responses upstream, offline: a custom model provider in its config.toml (base_url = ModelBridge's /v1, env_key =
 * the variable holding the ModelBridge key, wire_api = "responses"), no login, nothing reached but ModelBridge. The
 * fake asks for a shell command (`echo`), Codex runs it in a temporary directory under its read-only sandbox and sends
 * the output back, and the fake answers. Both requests are streamed; the bill must equal the usage the fake reported
 * at the catalog's prices, kind by kind, and Codex's own token count must agree with it.
 */
const codexJs = path.join(path.dirname(createRequire(import.meta.url).resolve('@openai/codex/package.json')), 'bin', 'codex.js');
const MARKER = 'modelbridge-tool-ok';

/** micro-AUD per million tokens from the seed catalog's USD prices (as its migration stores them), a cache price left out being the input price. */
function pricesOf(model: string) {
  const usd = catalogSeed.models.find((m) => m.id === model)!.usdPerMTok;
  const micro = (price: number) => BigInt(Math.round(price * catalogSeed.audPerUsd * 1_000_000));
  return { input: micro(usd.input), cached: micro(usd.cachedInput ?? usd.input), output: micro(usd.output) };
}

/** The cost of one request, computed here: the input side rounded up once, the output once (docs/metering.md). */
function costOf(model: string, k: TokenKinds): number {
  const p = pricesOf(model);
  const ceil = (n: bigint) => Number((n + 999_999n) / 1_000_000n);
  return ceil(BigInt(k.inputTokens) * p.input + BigInt(k.cachedInputTokens) * p.cached) + ceil(BigInt(k.outputTokens) * p.output);
}

interface CodexRun {
  code: number | null;
  events: Array<Record<string, any>>;
  stderr: string;
}

describe('the Codex CLI through ModelBridge', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;
  let keyId: string;
  let home: string;
  let workdir: string;
  let since = 0;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-upstream-openai' } });
    const owner = await makeUser(app.services, { prepaidMicro: 50_000_000 });
    ({ secret, key: { id: keyId } } = await makeKey(app.services, owner, { name: 'codex' }));
    home = await mkdtemp(path.join(tmpdir(), 'mb-codex-home-'));
    workdir = await mkdtemp(path.join(tmpdir(), 'mb-codex-work-'));
    // A provider entry as docs/compatibility.md gives it; nothing else is configured, so nothing else is reached.
    await writeFile(path.join(home, 'config.toml'), [
      'model = "gpt-6-astra"',
      'model_provider = "modelbridge"',
      'check_for_update_on_startup = false',
      'web_search = "disabled"',
      '',
      '[analytics]',
      'enabled = false',
      '',
      '[model_providers.modelbridge]',
      'name = "ModelBridge"',
      `base_url = "${app.url}/v1"`,
      'env_key = "MODELBRIDGE_API_KEY"',
      'wire_api = "responses"',
      '',
    ].join('\n'));
  });
  beforeEach(async () => {
    fake.reset();
    since = (await app.t.db('usage_events').where({ key_id: keyId })).length;
  });
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
    if (home) await rm(home, { recursive: true, force: true });
    if (workdir) await rm(workdir, { recursive: true, force: true });
  });

  /** `codex exec --json` with only the ModelBridge key and a private home in its environment. */
  function codexExec(prompt: string, args: string[] = []): Promise<CodexRun> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [codexJs, 'exec', '--strict-config', '--json', '--ephemeral', '--skip-git-repo-check', '--sandbox', 'read-only', '-C', workdir, ...args, prompt], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, CODEX_HOME: home, MODELBRIDGE_API_KEY: secret, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
        resolve({ code, events, stderr });
      });
    });
  }

  /** The turn's tool run, its answer, and its bill: every request charged exactly, and as Codex counted it. */
  async function expectTurn(run: CodexRun, model: string) {
    expect(run.code, run.stderr).toBe(0);
    const command = run.events.find((e) => e.type === 'item.completed' && e.item?.type === 'command_execution')?.item;
    expect(command).toMatchObject({ exit_code: 0, status: 'completed' });
    expect(command.aggregated_output).toContain(MARKER);
    expect(run.events.find((e) => e.type === 'item.completed' && e.item?.type === 'agent_message')?.item.text).toBe('tok '.repeat(8));

    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.path)).toEqual(['/v1/responses', '/v1/responses']);
    for (const r of posts) {
      expect(r.body).toMatchObject({ model, stream: true });
      expect(r.headers.authorization).toBe('Bearer sk-upstream-openai');
    }
    // the command's output went back to the model in the second request
    expect(JSON.stringify(posts[1]!.body.input)).toContain(MARKER);

    const events = (await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id')).slice(since);
    expect(events).toHaveLength(2);
    const reported = posts.map((r) => fake.expectedResponseTokens(r.body));
    events.forEach((event, i) => {
      const k = reported[i]!;
      expect(event).toMatchObject({ endpoint: '/v1/responses', model, outcome: 'ok', http_status: 200, input_tokens: k.inputTokens, cached_input_tokens: k.cachedInputTokens, output_tokens: k.outputTokens, reasoning_tokens: k.reasoningTokens });
      expect(Boolean(event.estimated)).toBe(false);
      expect(Boolean(event.streamed)).toBe(true);
      expect(toMicro(event.cost_micro)).toBe(costOf(model, k));
    });
    // Codex's own count of the turn is what was billed
    const usage = run.events.find((e) => e.type === 'turn.completed')?.usage;
    const sum = (f: (k: TokenKinds) => number) => reported.reduce((n, k) => n + f(k), 0);
    expect(usage).toMatchObject({ input_tokens: sum((k) => k.inputTokens + k.cachedInputTokens), cached_input_tokens: sum((k) => k.cachedInputTokens), output_tokens: sum((k) => k.outputTokens) });
    const key = await app.t.db('api_keys').where({ id: keyId }).first();
    expect(toMicro(key.held_micro)).toBe(0);
  }

  it('runs a streamed turn with the default model: a shell command through its exec tool, billed exactly with cache and reasoning tokens', async () => {
    // The default model speaks "code mode": one freeform `exec` tool whose input is JavaScript calling Codex's tools.
    fake.setResponsesToolCall({ name: 'exec', arguments: `const r = await tools.exec_command({ cmd: "echo ${MARKER}" }); text(r);` });
    fake.setUsageDetails({ cacheReadTokens: 2_000, reasoningTokens: 4 });
    const run = await codexExec('Print the marker with echo');
    await expectTurn(run, 'gpt-6-astra');
  }, 120_000);

  it('runs a turn with a picker model: the exec_command function tool round trip, billed exactly', async () => {
    fake.setResponsesToolCall({ name: 'exec_command', arguments: JSON.stringify({ cmd: `echo ${MARKER}` }) });
    const run = await codexExec('Print the marker with echo', ['-m', 'gpt-5.5']);
    await expectTurn(run, 'gpt-5.5');
  }, 120_000);
});
