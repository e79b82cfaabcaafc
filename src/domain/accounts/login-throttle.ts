import type { Clock } from '../clock.js';
import { normalizeEmail } from './users.service.js';

export interface LoginThrottleOptions {
  clock: Clock;
  /** Length of the sliding window. Default 15 minutes. */
  windowMs?: number;
  /** Failed attempts allowed per account (e-mail) in the window. Default 5. */
  perAccount?: number;
  /** Failed attempts allowed per client IP in the window (many accounts from one place). Default 20. */
  perIp?: number;
}

/**
 * Slows password guessing: failed sign-ins are counted per account and per IP in a sliding window, and once either
 * count is used up further attempts are refused without checking the password. Counting by the e-mail string,
 * whether or not such a user exists, keeps the throttle from revealing which accounts exist.
 *
 * In memory, per instance: with N instances an attacker gets at most N times the budget, which still turns
 * guessing into a crawl; a shared store can replace this class behind the same three methods.
 */
export class LoginThrottle {
  private readonly windowMs: number;
  private readonly perAccount: number;
  private readonly perIp: number;
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly options: LoginThrottleOptions) {
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.perAccount = options.perAccount ?? 5;
    this.perIp = options.perIp ?? 20;
  }

  /** Seconds until another attempt is allowed, or 0 when it is allowed now. */
  retryAfterSeconds(email: string, ip: string | null | undefined): number {
    const now = this.options.clock.now().getTime();
    const waits = [this.waitFor(accountKey(email), this.perAccount, now)];
    if (ip) waits.push(this.waitFor(ipKey(ip), this.perIp, now));
    return Math.ceil(Math.max(...waits) / 1000);
  }

  recordFailure(email: string, ip: string | null | undefined): void {
    const now = this.options.clock.now().getTime();
    this.push(accountKey(email), now);
    if (ip) this.push(ipKey(ip), now);
  }

  /** A successful sign-in clears the account's failures (not the IP's: one right password doesn't excuse a spray). */
  recordSuccess(email: string): void {
    this.failures.delete(accountKey(email));
  }

  private waitFor(key: string, limit: number, now: number): number {
    const recent = this.prune(key, now);
    if (recent.length < limit) return 0;
    // The window slides: the attempt becomes possible when the oldest counted failure leaves it.
    return recent[recent.length - limit]! + this.windowMs - now;
  }

  private push(key: string, now: number): void {
    const recent = this.prune(key, now);
    recent.push(now);
    this.failures.set(key, recent);
    if (this.failures.size > 100_000) this.sweep(now);
  }

  private prune(key: string, now: number): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    const kept = list.filter((t) => t > now - this.windowMs);
    if (kept.length) this.failures.set(key, kept);
    else this.failures.delete(key);
    return kept;
  }

  /** Bounds memory under a spray of distinct e-mails or IPs. */
  private sweep(now: number): void {
    for (const key of [...this.failures.keys()]) this.prune(key, now);
  }
}

const accountKey = (email: string) => `a:${normalizeEmail(email)}`;
const ipKey = (ip: string) => `i:${ip}`;
