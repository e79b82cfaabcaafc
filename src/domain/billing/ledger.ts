import type { Queryable } from '../../db/knex.js';
import type { Micro } from '../money.js';

export type LedgerAccount = 'user_included' | 'user_prepaid' | 'user_overage' | 'team';
export type LedgerKind = 'usage' | 'topup' | 'adjustment';

export interface LedgerEntry {
  account: LedgerAccount;
  userId?: string | null;
  teamId?: string | null;
  keyId?: string | null;
  /** Credits positive, debits negative. */
  amountMicro: Micro;
  kind: LedgerKind;
  requestId?: string | null;
  periodStart?: Date | null;
  note?: string | null;
  createdBy?: string | null;
}

/** Appends entries in one statement. Entries are never updated or deleted: corrections are new entries. */
export async function appendLedger(q: Queryable, entries: LedgerEntry[], at: Date): Promise<void> {
  const rows = entries
    .filter((e) => e.amountMicro !== 0)
    .map((e) => ({
      account: e.account,
      user_id: e.userId ?? null,
      team_id: e.teamId ?? null,
      key_id: e.keyId ?? null,
      amount_micro: e.amountMicro,
      kind: e.kind,
      request_id: e.requestId ?? null,
      period_start: e.periodStart ?? null,
      note: e.note?.slice(0, 255) ?? null,
      created_by: e.createdBy ?? null,
      created_at: at,
    }));
  if (rows.length) await q('ledger_entries').insert(rows);
}
