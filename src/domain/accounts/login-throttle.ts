import { createHash } from 'node:crypto';
import type { Db } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import type { Clock } from '../clock.js';
import { normalizeEmail } from './users.service.js';

/** One throttle rule: at most `max` failed sign-ins per `windowMs` (a sliding window) in a bucket. */
export interface ThrottleRule {
  max: number;
  windowMs: number;
}

export interface LoginThrottlePolicy {
  /** Failures of one account from one source address: what stops a guesser without locking the owner out. */
  perAccountAndSource: ThrottleRule;
  /** Failures of one account from anywhere: a slower ceiling against guessing from many addresses. */
  perAccount: ThrottleRule;
  /** Failures from one source address across accounts: against password spraying. */
  perSource: ThrottleRule;
}

/** The policy and its reasons are in docs/security.md ("Sign-in throttling"). */
export const DEFAULT_LOGIN_POLICY: LoginThrottlePolicy = {
  perAccountAndSource: { max: 5, windowMs: 15 * 60_000 },
  perAccount: { max: 40, windowMs: 60 * 60_000 },
  perSource: { max: 20, windowMs: 15 * 60_000 },
};

export interface LoginThrottleDeps {
  db: Db;
  clock: Clock;
  policy?: LoginThrottlePolicy;
}

/** Who a sign-in attempt is against, resolved once per attempt: pass it back to recordFailure / recordSuccess. */
export interface LoginSubject {
  account: string;
  source: string | null;
}

/**
 * E-mail as the throttle compares it when it names no account: Unicode NFKC (fullwidth and compatibility forms
 * fold to their plain letters) and a case fold (upper then lower, so "ß" and "SS" meet).
 */
export function foldEmail(email: string): string {
  return email.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/**
 * Slows password guessing without handing strangers a switch that locks people out (OWASP Authentication Cheat
 * Sheet, "Account lockout"; docs/security.md). Failures count in three sliding windows: per account and source
 * address (tight), per account from anywhere (a slower ceiling) and per source address across accounts (spraying).
 * Once a window is full, attempts in it are refused before the password is checked.
 *
 * The account is the one the e-mail resolves to in the database — whatever variant of it was typed and however the
 * database's collation compares it (MySQL matches "victïm@" to "victim@") — and, for e-mails with no account, the
 * folded e-mail, so unknown and known addresses are throttled alike and the throttle tells nobody which exist.
 *
 * Failures live in the database (login_failures), so every instance counts the same attempts.
 */
export class LoginThrottle {
  private readonly policy: LoginThrottlePolicy;
  private readonly longestWindowMs: number;

  constructor(private readonly deps: LoginThrottleDeps) {
    this.policy = deps.policy ?? DEFAULT_LOGIN_POLICY;
    this.longestWindowMs = Math.max(...Object.values(this.policy).map((r: ThrottleRule) => r.windowMs));
  }

  async subject(email: string, source: string | null | undefined): Promise<LoginSubject> {
    const folded = foldEmail(email);
    const user = await this.deps.db('users').whereIn('email', [...new Set([normalizeEmail(email), folded])]).first('id');
    return { account: user ? `user:${user.id as string}` : `email:${folded}`, source: source || null };
  }

  /** Seconds until this subject may try again, or 0 when it may try now. */
  async retryAfterSeconds(subject: LoginSubject): Promise<number> {
    const now = this.deps.clock.now().getTime();
    const waits = await Promise.all(this.buckets(subject).map(([bucket, rule]) => this.waitFor(bucket, rule, now)));
    return Math.ceil(Math.max(0, ...waits) / 1000);
  }

  async recordFailure(subject: LoginSubject): Promise<void> {
    const now = this.deps.clock.now();
    const buckets = this.buckets(subject).map(([bucket]) => bucket);
    await this.deps.db('login_failures').insert(buckets.map((bucket) => ({ bucket, failed_at: now })));
    // Keep the table small: these buckets' rows older than every window, and now and then everyone's.
    const cutoff = new Date(now.getTime() - this.longestWindowMs);
    const stale = this.deps.db('login_failures').where('failed_at', '<', cutoff);
    await (Math.random() < 0.01 ? stale : stale.whereIn('bucket', buckets)).delete();
  }

  /**
   * A successful sign-in clears the failures of this account from this source only: a right password elsewhere
   * does not reopen the account to a guesser, and one right password doesn't excuse a source's spray.
   */
  async recordSuccess(subject: LoginSubject): Promise<void> {
    if (!subject.source) return;
    await this.deps.db('login_failures').where({ bucket: bucketOf('pair', subject.account, subject.source) }).delete();
  }

  private buckets(subject: LoginSubject): Array<[string, ThrottleRule]> {
    const list: Array<[string, ThrottleRule]> = [[bucketOf('account', subject.account), this.policy.perAccount]];
    if (subject.source) {
      list.push([bucketOf('pair', subject.account, subject.source), this.policy.perAccountAndSource]);
      list.push([bucketOf('source', subject.source), this.policy.perSource]);
    }
    return list;
  }

  /** The window slides: a full bucket opens again when the max-th most recent failure leaves the window. */
  private async waitFor(bucket: string, rule: ThrottleRule, now: number): Promise<number> {
    const row = await this.deps.db('login_failures')
      .where('bucket', bucket)
      .where('failed_at', '>', new Date(now - rule.windowMs))
      .orderBy('failed_at', 'desc')
      .offset(rule.max - 1)
      .first('failed_at');
    return row ? toDate(row.failed_at).getTime() + rule.windowMs - now : 0;
  }
}

function bucketOf(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}
