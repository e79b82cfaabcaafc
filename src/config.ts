import { z } from 'zod';
import { randomBase62 } from './domain/ids.js';
import { addressEntryProblem } from './http/address-list.js';
import { parseTrustProxy, type TrustProxy } from './http/trust-proxy.js';

/**
 * The one place that reads process.env. Parsed once at start-up; a bad value stops the process with a message
 * naming the variable, so a misconfigured deployment never half-starts.
 */
const optionalUrl = z
  .string()
  .url()
  .optional()
  .or(z.literal('').transform(() => undefined));

/** A comma-separated list, each entry checked by `problem` (null = fine). */
const list = (problem: (entry: string) => string | null) =>
  z
    .string()
    .default('')
    .transform((value, ctx) => {
      const entries = value.split(',').map((e) => e.trim()).filter(Boolean);
      for (const entry of entries) {
        const issue = problem(entry);
        if (issue) ctx.addIssue({ code: z.ZodIssueCode.custom, message: issue });
      }
      return entries;
    });

/** An origin as browsers send it: scheme, host and port, nothing else (https://portal.example.com). */
function originProblem(entry: string): string | null {
  try {
    const url = new URL(entry);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === entry.replace(/\/$/, '')) return null;
  } catch {
    // fall through
  }
  return `"${entry}" is not an origin such as https://portal.example.com (scheme, host and port only)`;
}

/** GitHub's published key set for secret scanning partner reports. */
export const GITHUB_SECRET_SCANNING_KEYS_URL = 'https://api.github.com/meta/public_keys/secret_scanning';

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
  TRUST_PROXY: z
    .string()
    .default('loopback')
    .transform((value, ctx): TrustProxy => {
      const parsed = parseTrustProxy(value);
      if (Array.isArray(parsed) || typeof parsed !== 'object') return parsed;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.error });
      return z.NEVER;
    }),
  MODELBRIDGE_ALLOWED_ORIGINS: list(originProblem),
  METRICS_ALLOW: list(addressEntryProblem),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters (a random secret)').optional().or(z.literal('').transform(() => undefined)),
  // Internal: the cluster primary gives its workers one demo credential (src/cluster.ts); unset, each process makes one.
  MODELBRIDGE_DEMO_TOKEN: z.string().regex(/^demo_[0-9A-Za-z]{32}$/, 'is set by the cluster primary; leave it unset').optional(),
  // Where the secret scanning service publishes the public keys its reports are signed with (https://, or file://).
  SECRET_SCANNING_KEYS_URL: z.string().url().default(GITHUB_SECRET_SCANNING_KEYS_URL),
  // Webhooks may reach loopback / private / link-local receivers (tests, private deployments); off by default (SSRF).
  MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: z.enum(['0', '1']).default('0'),
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
  /** Express's `trust proxy`: which peers' X-Forwarded-For is believed (docs/operations.md). */
  readonly trustProxy: TrustProxy;
  /** Origins besides PUBLIC_URL's that may make state changes with a session cookie (needs PUBLIC_URL). */
  readonly allowedOrigins: readonly string[];
  /** Who may scrape /metrics: client addresses / subnets, and a bearer token (docs/operations.md). */
  readonly metrics: { readonly allow: readonly string[]; readonly token: string | undefined };
  /**
   * The credential the proxy sends to the built-in demo upstream (src/proxy/upstreams/demo), which refuses anyone
   * else. Shared by every worker of a cluster: the demo call may land on another worker than the one that sent it.
   */
  readonly demoToken: string;
  /** The key set that signs secret scanning reports to POST /secret-scanning/github (docs/security.md). */
  readonly secretScanningKeysUrl: string;
  /** Webhook URLs and deliveries may name loopback / private addresses (docs/webhooks.md). */
  readonly webhookAllowPrivate: boolean;
}

export function newDemoToken(): string {
  return `demo_${randomBase62(32)}`;
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
  if (e.MODELBRIDGE_ALLOWED_ORIGINS.length > 0 && !e.PUBLIC_URL)
    throw new ConfigError('Invalid configuration:\n  MODELBRIDGE_ALLOWED_ORIGINS: needs PUBLIC_URL (without it only loopback host names are trusted)');
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
    trustProxy: e.TRUST_PROXY,
    allowedOrigins: Object.freeze(e.MODELBRIDGE_ALLOWED_ORIGINS.map((o) => new URL(o).origin)),
    metrics: Object.freeze({ allow: Object.freeze(e.METRICS_ALLOW), token: e.METRICS_TOKEN }),
    demoToken: e.MODELBRIDGE_DEMO_TOKEN ?? newDemoToken(),
    secretScanningKeysUrl: e.SECRET_SCANNING_KEYS_URL,
    webhookAllowPrivate: e.MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE === '1',
  });
}
