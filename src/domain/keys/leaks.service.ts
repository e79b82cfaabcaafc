import type { Db, Queryable } from '../../db/knex.js';
import { toDateOrNull } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { hashSecret, isWellFormedSecret } from '../../auth/secret-format.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { recordKeyEvent } from '../events/key-events.js';
import { markKeyRevoked } from './keys.service.js';

/** One finding of a secret scanning service: the string it found, its type, and where (GitHub's partner format). */
export interface LeakReport {
  token: string;
  type: string;
  url: string | null;
  source: string | null;
}

/** Ours (a ModelBridge key or token that exists, whatever its status) or not: the scanner's feedback label. */
export type LeakLabel = 'true_positive' | 'false_positive';

export interface LeakFinding {
  token: string;
  type: string;
  label: LeakLabel;
}

/** The key a holder revoked with itself as credential. */
export interface SelfRevokedKey {
  id: string;
  revokedAt: Date;
  /** It was revoked before this call (revocation is final, so a second call changes nothing). */
  alreadyRevoked: boolean;
}

/** A key revoked because it leaked, as its owner and its team's owners and admins are told of it in the portal. */
export interface LeakNotice {
  keyId: string;
  keyName: string;
  teamId: string | null;
  /** Who stopped it: its holder with the key itself, or a secret scanning service's report. */
  reason: 'self_revoked' | 'secret_scanning';
  /** The scanning service (e.g. github), and where it found the key. */
  reportedBy: string | null;
  url: string | null;
  revokedAt: Date;
}

/** How long a leak stays on its owner's dashboard. */
export const LEAK_NOTICE_DAYS = 30;

/** Where a request came from, for the audit row. */
export interface RequestMeta {
  ip?: string | null;
  userAgent?: string | null;
}

export interface LeaksDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

/** The largest report handled at once; GitHub sends findings in small batches. */
export const MAX_REPORT_FINDINGS = 1000;

/**
 * Leaked credentials revoke themselves. Two ways in, neither needing an account: whoever holds a key may kill it
 * with the key itself (POST /v1/key/revoke), and a secret scanning service's signed report revokes every live key
 * and management token it names. Revocation is final and idempotent: a second call or the same report again
 * changes nothing and answers the same.
 */
export class LeaksService {
  constructor(private readonly deps: LeaksDeps) {}

  /** Revokes the key whose secret this is; null when no key has it. */
  async selfRevoke(secret: string, meta: RequestMeta): Promise<SelfRevokedKey | null> {
    if (!isWellFormedSecret(secret, 'mbk_')) return null;
    const actor: Actor = { userId: 'key-holder', role: 'user', via: 'key', ip: meta.ip, userAgent: meta.userAgent };
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('api_keys').where({ key_hash: hashSecret(secret) }).forUpdate().first();
      if (!row) return null;
      const revoked = await this.revokeKeyRow(tx, row, actor, { selfRevoked: true });
      return { id: row.id as string, revokedAt: revoked.revokedAt, alreadyRevoked: !revoked.now };
    });
  }

  /**
   * A verified scanning report (the door checks the signature): each finding that is a ModelBridge key or token is
   * labelled a true positive and, when still live, revoked at once — audited with where it was found. Anything else
   * is a false positive and touches nothing. One transaction per credential, so one bad row cannot undo the others.
   */
  async handleReport(reports: LeakReport[], reporter: string, meta: RequestMeta): Promise<LeakFinding[]> {
    const actor: Actor = { userId: reporter, role: 'user', via: 'scanner', ip: meta.ip, userAgent: meta.userAgent };
    const findings: LeakFinding[] = [];
    for (const report of reports) {
      const found = { reportedBy: reporter, url: report.url, source: report.source, type: report.type };
      const ours = await this.revokeReported(report.token, actor, found);
      findings.push({ token: report.token, type: report.type, label: ours ? 'true_positive' : 'false_positive' });
    }
    return findings;
  }

  /**
   * The keys revoked as leaked in the last LEAK_NOTICE_DAYS that this user is told of: their own keys, and every key
   * of a team they own or administer (the people who can replace it). Newest first; `keyId` narrows to one key.
   */
  async noticesFor(actor: Actor, keyId?: string): Promise<LeakNotice[]> {
    const since = new Date(this.deps.clock.now().getTime() - LEAK_NOTICE_DAYS * 86_400_000);
    const q = this.deps.db('events')
      .where({ type: 'key.leaked' }).where('created_at', '>=', since)
      .where((w) => w.where({ user_id: actor.userId }).orWhereIn('team_id',
        this.deps.db('team_members').where({ user_id: actor.userId }).whereIn('role', ['owner', 'admin']).select('team_id')))
      .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(20)
      .select('key_id', 'team_id', 'payload', 'created_at');
    if (keyId) q.where({ key_id: keyId });
    return ((await q) as Array<Record<string, unknown>>).map((row) => {
      const d = (JSON.parse(row.payload as string) as { data: Record<string, unknown> }).data;
      return {
        keyId: row.key_id as string,
        keyName: String(d.keyName ?? ''),
        teamId: (row.team_id as string | null) ?? null,
        reason: d.reason === 'self_revoked' ? 'self_revoked' : 'secret_scanning',
        reportedBy: typeof d.reportedBy === 'string' ? d.reportedBy : null,
        url: typeof d.url === 'string' ? d.url : null,
        revokedAt: toDateOrNull(row.created_at)!,
      };
    });
  }

  /** True when the token is one of ours; revokes it if it is still live. Malformed strings cost no query. */
  private async revokeReported(token: string, actor: Actor, found: Record<string, unknown>): Promise<boolean> {
    const details = { leaked: true, ...found };
    if (isWellFormedSecret(token, 'mbk_')) {
      return withTransaction(this.deps.db, async (tx) => {
        const row = await tx('api_keys').where({ key_hash: hashSecret(token) }).forUpdate().first();
        if (!row) return false;
        await this.revokeKeyRow(tx, row, actor, details);
        return true;
      });
    }
    if (isWellFormedSecret(token, 'mbm_')) {
      return withTransaction(this.deps.db, async (tx) => {
        const row = await tx('management_tokens').where({ token_hash: hashSecret(token) }).forUpdate().first();
        if (!row) return false;
        if (!row.revoked_at) {
          await tx('management_tokens').where({ id: row.id }).update({ revoked_at: this.deps.clock.now() });
          await this.deps.audit.record(tx, actor, 'token.revoke', { type: 'token', id: row.id as string }, details);
        }
        return true;
      });
    }
    return false;
  }

  /** Revokes a locked key row unless it is revoked already (or retired after a rotation: as good as revoked). */
  private async revokeKeyRow(tx: Queryable, row: Record<string, unknown>, actor: Actor, details: Record<string, unknown>): Promise<{ now: boolean; revokedAt: Date }> {
    const now = this.deps.clock.now();
    const retireAt = toDateOrNull(row.retire_at);
    const revokedAt = toDateOrNull(row.revoked_at) ?? (row.status === 'revoked' ? now : null);
    if (revokedAt) return { now: false, revokedAt };
    if (retireAt && retireAt.getTime() <= now.getTime()) return { now: false, revokedAt: retireAt };
    await markKeyRevoked(tx, row.id as string, now);
    await this.deps.audit.record(tx, actor, 'key.revoke', { type: 'key', id: row.id as string }, details);
    const how = details.selfRevoked ? 'self_revoked' : 'secret_scanning';
    await recordKeyEvent(tx, 'key.leaked', row.id as string, now, { reason: how, reportedBy: details.reportedBy ?? null, url: details.url ?? null });
    await recordKeyEvent(tx, 'key.revoked', row.id as string, now, { reason: how });
    return { now: true, revokedAt: now };
  }
}
