import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBounded, type Finished } from './processes.js';

const CLAUDE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin', 'claude');

/** The settings that keep Claude Code offline and non-interactive: nothing but the API requests leaves it. */
const OFFLINE = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_BUG_COMMAND: '1',
  CLAUDE_CODE_DISABLE_TERMINAL_TITLE: '1',
  CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL: '1',
};

/** What `claude -p … --output-format json` prints (the fields the tests read). */
export interface ClaudeResult {
  type: 'result';
  subtype: string;
  is_error: boolean;
  result?: string;
  num_turns: number;
  total_cost_usd: number;
  api_error_status?: number | null;
  modelUsage: Record<string, { inputTokens: number; outputTokens: number; cacheReadInputTokens: number; cacheCreationInputTokens: number; costUSD: number }>;
}

export interface ClaudeRun extends Finished {
  json: ClaudeResult | undefined;
}

export interface ClaudeAuth {
  /** Sent as x-api-key. */
  ANTHROPIC_API_KEY?: string;
  /** Sent as Authorization: Bearer. */
  ANTHROPIC_AUTH_TOKEN?: string;
}

/**
 * `claude -p <prompt> --output-format json [args]` in a fresh HOME and project folder (no settings, no login, no
 * history), pointed at `baseUrl` with `auth`, bounded by `timeoutMs` (the process group is killed after it).
 */
export async function runClaude(options: { baseUrl: string; auth: ClaudeAuth; prompt: string; args?: string[]; cwd?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<ClaudeRun> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'claude-home-'));
  const cwd = options.cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'claude-project-'));
  try {
    const run = await runBounded(CLAUDE, ['-p', options.prompt, '--output-format', 'json', ...(options.args ?? [])], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ANTHROPIC_BASE_URL: options.baseUrl, ...OFFLINE, ...options.auth, ...options.env },
      timeoutMs: options.timeoutMs ?? 90_000,
    });
    let json: ClaudeResult | undefined;
    try { json = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as ClaudeResult; } catch { json = undefined; }
    return { ...run, json };
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
    if (!options.cwd) fs.rmSync(cwd, { recursive: true, force: true });
  }
}

export async function claudeVersion(): Promise<string> {
  const run = await runBounded(CLAUDE, ['--version'], { cwd: os.tmpdir(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...OFFLINE }, timeoutMs: 30_000 });
  return run.stdout.trim();
}
