import { z } from 'zod';

/**
 * The one place that reads process.env. Parsed once at start-up; a bad value stops the process with a message
 * naming the variable, so a misconfigured deployment never half-starts.
 */
const optionalUrl = z
  .string()
  .url()
  .optional()
  .or(z.literal('').transform(() => undefined));

const schema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^mysql:\/\/.+/, 'must be a mysql://user:pass@host:port/db URL (unset = embedded SQLite)')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  SQLITE_PATH: z.string().min(1).default('./data/modelbridge.db'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_URL: optionalUrl,
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: optionalUrl,
  ANTHROPIC_API_KEY: z.string().optional(),
  MODELBRIDGE_TIMEZONE: z
    .string()
    .default('Australia/Sydney')
    .refine(isValidTimeZone, 'must be an IANA time zone such as Australia/Sydney'),
  MODELBRIDGE_JOBS: z.enum(['0', '1']).default('1'),
  MODELBRIDGE_SIGNUP: z.enum(['0', '1']).default('0'),
  MODELBRIDGE_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  MODELBRIDGE_HOLD_TTL_SECONDS: z.coerce.number().int().min(1).max(3_600).default(45),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-AU', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export interface Config {
  readonly databaseUrl: string | undefined;
  readonly sqlitePath: string;
  readonly host: string;
  readonly port: number;
  readonly publicUrl: string | undefined;
  readonly openai: { readonly baseUrl: string | undefined; readonly apiKey: string | undefined };
  readonly anthropic: { readonly baseUrl: string | undefined; readonly apiKey: string | undefined };
  readonly timeZone: string;
  readonly jobsEnabled: boolean;
  readonly signupEnabled: boolean;
  readonly upstreamTimeoutMs: number;
  readonly logLevel: string;
  /** HTTP worker processes sharing the port (node:cluster); MySQL only — SQLite is one process by design. */
  readonly workers: number;
  /** How long a hold lives unless its instance renews it (MeteringDeps.holdTtlMs). */
  readonly holdTtlMs: number;
}

export class ConfigError extends Error {}

export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = result.data;
  if (!e.DATABASE_URL && e.MODELBRIDGE_WORKERS > 1) {
    throw new ConfigError(
      'Invalid configuration:\n  MODELBRIDGE_WORKERS: more than 1 worker needs MySQL (DATABASE_URL); SQLite is one process — unset it or set 1',
    );
  }
  return Object.freeze({
    databaseUrl: e.DATABASE_URL,
    sqlitePath: e.SQLITE_PATH,
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/$/, ''),
    openai: Object.freeze({ baseUrl: e.OPENAI_BASE_URL, apiKey: e.OPENAI_API_KEY || undefined }),
    anthropic: Object.freeze({ baseUrl: e.ANTHROPIC_BASE_URL, apiKey: e.ANTHROPIC_API_KEY || undefined }),
    timeZone: e.MODELBRIDGE_TIMEZONE,
    jobsEnabled: e.MODELBRIDGE_JOBS === '1',
    signupEnabled: e.MODELBRIDGE_SIGNUP === '1',
    upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
    holdTtlMs: e.MODELBRIDGE_HOLD_TTL_SECONDS * 1000,
    logLevel: e.LOG_LEVEL,
    workers: e.MODELBRIDGE_WORKERS,
  });
}
