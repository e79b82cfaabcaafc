import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream, type Responder } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { expectBill, usageEvents } from './support/bill.js';
import { claudeVersion, runClaude, type ClaudeAuth, type ClaudeRun } from './support/claude-code.js';
import { startInstallation, type Installation } from './support/installation.js';
import { catalogSeed } from '../../migrations/seed/catalog.js';

/**
 * Claude Code (`claude -p`, the npm package's native binary) against a fresh install of ModelBridge (`npm start`
 * with only the Anthropic provider settings) in front of a fake Anthropic API on loopback. Every request Claude Code
 * makes must be served and billed: each charged usage event matches a request the fake served, token kind by token
 * kind, at the seed catalog's prices (support/bill.ts).
 */

let fake: FakeUpstream;
let install: Installation;
let secret: string;
/** The key owner's management token (tRPC). */
let token: string;
let lastEventId = 0;

/** Claude Code's prompt, its tools' results and the side requests it makes, answered like the real API would. */
const TOOL_FILE_MARK = 'Read the file ';
const claudeCodeResponder: Responder = (body) => {
  // The last user turn: Claude Code 2.1.3xx may end `messages` with a `system` turn (environment, deferred tools).
  const last = body.messages.findLast((m: { role: string }) => m.role === 'user');
  const blocks: Array<{ type: string; text?: string; content?: unknown }> = Array.isArray(last?.content) ? last.content : [{ type: 'text', text: String(last?.content ?? '') }];
  const result = blocks.find((b) => b.type === 'tool_result');
  if (result) {
    const text = typeof result.content === 'string' ? result.content : (result.content as Array<{ text?: string }>).map((p) => p.text ?? '').join('');
    return { blocks: [{ type: 'text', text: `The file says: ${/CANARY-\w+/.exec(text)?.[0] ?? 'nothing I recognise'}` }] };
  }
  const asked = blocks.map((b) => b.text ?? '').join('\n');
  const file = asked.includes(TOOL_FILE_MARK) ? asked.slice(asked.indexOf(TOOL_FILE_MARK) + TOOL_FILE_MARK.length).split(/\s/)[0] : undefined;
  if (file && Array.isArray(body.tools) && body.tools.some((t: { name: string }) => t.name === 'Read')) {
    return { blocks: [{ type: 'thinking', thinking: 'I should read that file.' }, { type: 'tool_use', name: 'Read', input: { file_path: file } }] };
  }
  return { blocks: [{ type: 'thinking', thinking: 'A greeting; answer it.' }, { type: 'text', text: 'Hello from the fake upstream.' }] };
};

/**
 * Claude Code's prompts are mostly cached: report reads and both kinds of writes on every answer (its smallest prompt
 * here is about 4,200 tokens by the fake's count, so every kind, fresh input included, is non-zero).
 */
const CACHE = { cacheReadTokens: 2000, cacheWrite5mTokens: 800, cacheWrite1hTokens: 200 };

async function claude(prompt: string, options: { args?: string[]; auth?: ClaudeAuth; env?: Record<string, string>; cwd?: string } = {}): Promise<ClaudeRun> {
  const run = await runClaude({ baseUrl: install.url, auth: options.auth ?? { ANTHROPIC_API_KEY: secret }, prompt, args: options.args, env: options.env, cwd: options.cwd });
  expect(run.timedOut, `claude timed out; stderr: ${run.stderr}`).toBe(false);
  return run;
}

/** The bill of what this test made Claude Code do (events after the previous test's). */
async function bill() {
  const summary = await expectBill(install.db, fake.requests, lastEventId);
  await expectMeteringInvariants(install.db);
  return summary;
}

/** ModelBridge's charge for the requests of this test equals Claude Code's own cost of them (its USD list prices × the catalog's AUD rate), to the rounding. */
async function expectChargeMatchesClaudeCode(run: ClaudeRun) {
  const events = (await usageEvents(install.db, lastEventId)).filter((e) => e.outcome === 'ok');
  const charged = events.reduce((s, e) => s + e.costMicro, 0);
  const claudeMicroAud = run.json!.total_cost_usd * catalogSeed.audPerUsd * 1_000_000;
  // Each request rounds its input side and its output up once: at most 2 micro-AUD above the exact price.
  expect(charged - claudeMicroAud).toBeGreaterThanOrEqual(-0.01);
  expect(charged - claudeMicroAud).toBeLessThanOrEqual(2 * events.length + 0.01);
}

beforeAll(async () => {
  fake = await startFakeUpstream();
  install = await startInstallation({ anthropicBaseUrl: fake.anthropicBaseUrl, anthropicApiKey: 'sk-ant-upstream-secret' });
  ({ secret, token } = await install.userWithKey('claude-code@example.test', '50'));
  expect(secret).toMatch(/^mbk_/);
});

beforeEach(async () => {
  fake.reset();
  fake.setResponder(claudeCodeResponder);
  fake.setUsageDetails(CACHE);
  const last = await install.db('usage_events').max({ id: 'id' }).first();
  lastEventId = Number(last?.id ?? 0);
});

afterAll(async () => {
  await install?.close();
  await fake?.close();
});

describe(`Claude Code through a fresh install`, () => {
  it('is the version the tier pins', async () => {
    expect(await claudeVersion()).toMatch(/^2\.1\.\d+ \(Claude Code\)$/);
  });

  it('serves the default model, and the charge is the provider\'s price for the usage, cache reads and writes included', async () => {
    const run = await claude('Say hello.');
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    const asked = new Set(fake.requests.map((r) => r.body?.model));
    expect([...asked]).toEqual(['claude-opus-5-5']);
    const summary = await bill();
    expect(summary.charged).toBeGreaterThanOrEqual(1);
    expect(summary.refused).toBe(0);
    const [event] = await usageEvents(install.db, lastEventId);
    expect(event).toMatchObject({ cachedInputTokens: 2000, cacheWrite5mTokens: 800, cacheWrite1hTokens: 200 });
    expect(event!.inputTokens).toBeGreaterThan(0);
    await expectChargeMatchesClaudeCode(run);
  });

  it.each([
    ['sonnet', 'claude-sonnet-5-5'],
    ['haiku', 'claude-haiku-5-5'],
  ])('serves --model %s (%s)', async (alias, model) => {
    const run = await claude('Say hello.', { args: ['--model', alias] });
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    expect(fake.requests.filter((r) => r.path === '/v1/messages').map((r) => r.body.model)).toContain(model);
    expect(await bill()).toMatchObject({ refused: 0 });
    await expectChargeMatchesClaudeCode(run);
  });

  it('serves a dated snapshot name (--model claude-sonnet-4-5-20250929) from its catalog entry', async () => {
    const run = await claude('Say hello.', { args: ['--model', 'claude-sonnet-4-5-20250929'] });
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    expect(fake.requests.filter((r) => r.path === '/v1/messages').map((r) => r.body.model)).toContain('claude-sonnet-4-5-20250929');
    expect(await bill()).toMatchObject({ refused: 0 });
    await expectChargeMatchesClaudeCode(run);
  });

  it('runs a tool round trip: the fake asks for Read, Claude Code reads the file and sends the result back', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claude-tool-'));
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'The secret word is CANARY-TOOLROUND.\n');
    try {
      const run = await claude(`${TOOL_FILE_MARK}${file} and tell me what it says.`, { cwd: dir, args: ['--allowedTools', 'Read'] });
      expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'The file says: CANARY-TOOLROUND' });
      const main = fake.requests.filter((r) => r.path === '/v1/messages' && Array.isArray(r.body.tools));
      const withResult = main.filter((r) => JSON.stringify(r.body.messages.findLast((m: { role: string }) => m.role === 'user')).includes('CANARY-TOOLROUND'));
      expect(withResult.length, 'the tool result reached the upstream').toBe(1);
      const summary = await bill();
      expect(summary.charged).toBeGreaterThanOrEqual(2);
      await expectChargeMatchesClaudeCode(run);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('authenticates with ANTHROPIC_AUTH_TOKEN (Authorization: Bearer) too, and with both variables set', async () => {
    // Both set: Claude Code sends x-api-key and Authorization; the other one may be some unrelated bearer token.
    for (const auth of [{ ANTHROPIC_AUTH_TOKEN: secret }, { ANTHROPIC_API_KEY: secret, ANTHROPIC_AUTH_TOKEN: secret }, { ANTHROPIC_API_KEY: secret, ANTHROPIC_AUTH_TOKEN: 'sk-ant-oat01-unrelated' }]) {
      const run = await claude('Say hello.', { auth });
      expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    }
    expect(await bill()).toMatchObject({ refused: 0 });
  });

  it('retries an upstream 429 after its retry-after, passed through, and is served; nothing is charged for the refusal', async () => {
    fake.setModeForNext('status:429');
    fake.setRetryAfter('2');
    const run = await claude('Say hello.');
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    expect(fake.requests.map((r) => r.mode).slice(0, 2)).toEqual(['status:429', 'ok']);
    // Claude Code waited as the upstream's retry-after said (its own first backoff is about half a second).
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(1900);
    const summary = await bill();
    expect(summary.refused).toBe(1);
    await expectChargeMatchesClaudeCode(run);
  });

  it('gets an upstream 529 as 529 overloaded_error, retries it and is served; nothing is charged for the overload', async () => {
    fake.setModeForNext('status:529');
    fake.setRetryAfter('1');
    const run = await claude('Say hello.');
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    expect(fake.requests.map((r) => r.mode).slice(0, 2)).toEqual(['status:529', 'ok']);
    const refused = (await usageEvents(install.db, lastEventId)).filter((e) => e.outcome !== 'ok');
    expect(refused.map((e) => e.httpStatus)).toEqual([529]);
    expect((await bill()).refused).toBe(1);
  });

  it('falls back with --fallback-model after three 529 overloads of its model (not after one): served by the fallback, the overloads free', async () => {
    fake.setMode('status:529', 'claude-opus-5-5');
    fake.setRetryAfter('1');
    const run = await claude('Say hello.', { args: ['--fallback-model', 'sonnet'] });
    expect(run.json, run.stderr).toMatchObject({ is_error: false, result: 'Hello from the fake upstream.' });
    expect(fake.requests.map((r) => `${r.body.model} ${r.mode}`)).toEqual([
      'claude-opus-5-5 status:529', 'claude-opus-5-5 status:529', 'claude-opus-5-5 status:529', 'claude-sonnet-5-5 ok',
    ]);
    expect(await bill()).toMatchObject({ charged: 1, refused: 3 });
    await expectChargeMatchesClaudeCode(run);
  });

  it('reports a lasting overload as an API error 529 once its retries are spent, and nothing is charged', async () => {
    fake.setMode('status:529');
    fake.setRetryAfter('1');
    const run = await claude('Say hello.', { env: { CLAUDE_CODE_MAX_RETRIES: '2' } });
    expect(run.json, run.stderr).toMatchObject({ is_error: true, api_error_status: 529, total_cost_usd: 0 });
    expect(fake.requests.map((r) => r.mode)).toEqual(['status:529', 'status:529', 'status:529']);
    expect(await bill()).toEqual({ charged: 0, refused: 3, totalMicro: 0 });
  });

  it('never wrote the ModelBridge key or the provider key to its log', () => {
    expect(install.output()).toContain('ModelBridge listening');
    expect(install.output()).not.toContain(secret);
    expect(install.output()).not.toContain('sk-ant-upstream-secret');
  });

  it('stops at once on a key whose spend limit is reached (429 spend_limit_reached, x-should-retry: false), showing why', async () => {
    const limited = await install.createKey(token, { name: 'limited' });
    const first = await claude('Say hello.', { auth: { ANTHROPIC_API_KEY: limited.secret } });
    expect(first.json, first.stderr).toMatchObject({ is_error: false });
    // A limit lowered below what the key has spent takes effect at once: the next request is refused before the upstream.
    expect(await install.trpc(token, 'keys.update', { id: limited.id, spendLimitAud: '0.000001' })).toMatchObject({ status: 'limit_reached' });
    const served = fake.requests.length;
    const second = await claude('Say hello.', { auth: { ANTHROPIC_API_KEY: limited.secret } });
    expect(second.json, second.stderr).toMatchObject({ is_error: true, api_error_status: 429 });
    expect(second.json!.result).toContain('spending limit');
    // Retrying would take Claude Code's backoff (half a second, doubling, ten times): it did not retry.
    expect(second.ms).toBeLessThan(30_000);
    expect(fake.requests.length, 'nothing forwarded for the refused run').toBe(served);
    expect(await bill()).toMatchObject({ refused: 0 });
  });

  it('runs parallel subagents on a key with a 10 AUD limit: every request admitted beside the others, served and billed', async () => {
    // The main turn asks for three subagents at once; each subagent's own turn streams slowly, so they are in flight
    // together. With holds for the whole worst case (max_tokens at Opus prices) a 10 AUD key held only two.
    const AGENT_TOOLS = new Set(['Task', 'Agent']);
    fake.setMode('drip');
    fake.setResponder((body, api, rec) => {
      const text = JSON.stringify(body.messages.findLast((m: { role: string }) => m.role === 'user') ?? '');
      const job = /SUBAGENT-JOB-(\d)/.exec(text)?.[1];
      if (job && !text.includes('tool_result')) return { blocks: [{ type: 'text', text: `${'Working on it. '.repeat(200)}Job ${job} done.` }] };
      const agent = Array.isArray(body.tools) ? body.tools.find((t: { name: string }) => AGENT_TOOLS.has(t.name)) : undefined;
      if (text.includes('PARALLEL-AGENTS') && !text.includes('tool_result') && agent)
        return { blocks: [1, 2, 3].map((n) => ({ type: 'tool_use' as const, name: agent.name, input: { description: `Job ${n}`, prompt: `SUBAGENT-JOB-${n}: reply that job ${n} is done.`, subagent_type: 'general-purpose' } })) };
      if (text.includes('PARALLEL-AGENTS')) return { blocks: [{ type: 'text', text: 'All three agents finished.' }] };
      return claudeCodeResponder(body, api, rec);
    });
    const limited = await install.createKey(token, { name: 'subagents', spendLimitAud: '10' });
    // How many requests hold part of the key's limit at once, sampled while Claude Code runs.
    let mostHolds = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const held = await install.db('holds').where({ key_id: limited.id }).count({ n: '*' }).first();
        mostHolds = Math.max(mostHolds, Number(held?.n ?? 0));
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const run = await claude('PARALLEL-AGENTS: run three subagents at once, one per job, then tell me when all are done.', { auth: { ANTHROPIC_API_KEY: limited.secret } });
    sampling = false;
    await sampler;
    // Claude Code 2.1.3xx runs them as background tasks and ends with a turn on their notifications.
    expect(run.json, run.stderr).toMatchObject({ is_error: false, subagent_stats: { spawned: 3, completed: 3, failed: 0 } });
    // A subagent's own conversation: its job, without the main conversation's prompt.
    const jobOf = (r: (typeof fake.requests)[number]) => {
      const text = JSON.stringify(r.body?.messages ?? '');
      return r.path === '/v1/messages' && !text.includes('PARALLEL-AGENTS') ? /SUBAGENT-JOB-(\d)/.exec(text)?.[1] : undefined;
    };
    const jobs = fake.requests.filter((r) => jobOf(r) !== undefined);
    expect(new Set(jobs.map(jobOf))).toEqual(new Set(['1', '2', '3']));
    // All three in flight on the key at once (a hold each): with worst-case holds only two fitted in 10 AUD.
    expect(mostHolds).toBeGreaterThanOrEqual(3);
    expect(Math.max(...jobs.map((r) => Number(r.body.max_tokens)))).toBeGreaterThanOrEqual(32_000);
    const summary = await bill();
    expect(summary.refused).toBe(0);
    expect(summary.charged).toBeGreaterThanOrEqual(5);
    await expectChargeMatchesClaudeCode(run);
  }, 120_000);
});
