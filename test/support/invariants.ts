import { expect } from 'vitest';
import type { Db } from '../../src/db/knex.js';
import { toDate } from '../../src/db/rows.js';
import { toMicro } from '../../src/domain/money.js';

type Row = Record<string, unknown>;

/** Negation without -0 (toBe compares with Object.is). */
const neg = (n: number) => (n === 0 ? 0 : -n);

function sums(rows: Row[], key: (r: Row) => string, value = 'total'): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) out.set(key(r), (out.get(key(r)) ?? 0) + toMicro(r[value]));
  return out;
}

/**
 * The metering invariants of SPEC §5, over the whole database (run after every metering test):
 * - each key: spend = Σ its usage events' cost = −Σ its usage ledger debits; request count = its events;
 *   held = Σ its holds;
 * - each team: balance = Σ its ledger entries; held = Σ holds of its keys;
 * - each user: prepaid = Σ user_prepaid entries; included and overage used = −Σ their entries of the current
 *   period; held = Σ payer amounts of their personal keys' holds;
 * - each usage event: its bucket split adds up to its cost.
 */
export async function expectMeteringInvariants(db: Db): Promise<void> {
  const events: Row[] = await db('usage_events').select('key_id').sum({ total: 'cost_micro' }).count({ n: '*' }).groupBy('key_id');
  const eventCost = sums(events, (r) => String(r.key_id));
  const eventCount = new Map(events.map((r) => [String(r.key_id), Number(r.n)]));
  const keyDebits = sums(await db('ledger_entries').where({ kind: 'usage' }).whereNotNull('key_id').select('key_id').sum({ total: 'amount_micro' }).groupBy('key_id'), (r) => String(r.key_id));
  const holdRows = await db('holds').select('key_id', 'user_id', 'team_id', 'amount_micro', 'payer_amount_micro');
  const keyHolds = sums(holdRows, (r) => String(r.key_id), 'amount_micro');
  const teamHolds = sums(holdRows.filter((r) => r.team_id), (r) => String(r.team_id), 'payer_amount_micro');
  const userHolds = sums(holdRows.filter((r) => !r.team_id), (r) => String(r.user_id), 'payer_amount_micro');

  for (const k of await db('api_keys').select('id', 'spend_micro', 'held_micro', 'request_count')) {
    const id = String(k.id);
    const spend = toMicro(k.spend_micro);
    expect(spend, `key ${id}: spend = Σ usage events`).toBe(eventCost.get(id) ?? 0);
    expect(spend, `key ${id}: spend = −Σ usage ledger debits`).toBe(neg(keyDebits.get(id) ?? 0));
    expect(Number(k.request_count), `key ${id}: request count = usage events`).toBe(eventCount.get(id) ?? 0);
    expect(toMicro(k.held_micro), `key ${id}: held = Σ holds`).toBe(keyHolds.get(id) ?? 0);
  }

  const teamLedger = sums(await db('ledger_entries').where({ account: 'team' }).select('team_id').sum({ total: 'amount_micro' }).groupBy('team_id'), (r) => String(r.team_id));
  for (const t of await db('teams').select('id', 'balance_micro', 'held_micro')) {
    const id = String(t.id);
    expect(toMicro(t.balance_micro), `team ${id}: balance = Σ ledger`).toBe(teamLedger.get(id) ?? 0);
    expect(toMicro(t.held_micro), `team ${id}: held = Σ holds`).toBe(teamHolds.get(id) ?? 0);
  }

  const userLedger: Row[] = await db('ledger_entries').whereNotNull('user_id').select('user_id', 'account', 'period_start').sum({ total: 'amount_micro' }).groupBy('user_id', 'account', 'period_start');
  for (const b of await db('personal_balances').select('*')) {
    const id = String(b.user_id);
    const period = toDate(b.period_start).getTime();
    const mine = userLedger.filter((r) => r.user_id === id);
    const total = (account: string, inPeriod: boolean) =>
      mine.filter((r) => r.account === account && (!inPeriod || (r.period_start !== null && toDate(r.period_start).getTime() === period)))
        .reduce((s, r) => s + toMicro(r.total), 0);
    expect(toMicro(b.prepaid_micro), `user ${id}: prepaid = Σ user_prepaid`).toBe(total('user_prepaid', false));
    expect(toMicro(b.included_used_micro), `user ${id}: included used = −Σ user_included of the period`).toBe(neg(total('user_included', true)));
    expect(toMicro(b.overage_used_micro), `user ${id}: overage used = −Σ user_overage of the period`).toBe(neg(total('user_overage', true)));
    expect(toMicro(b.held_micro), `user ${id}: held = Σ holds of personal keys`).toBe(userHolds.get(id) ?? 0);
  }

  const badSplits = await db('usage_events').whereRaw('included_micro + prepaid_micro + overage_micro + team_micro <> cost_micro').count({ n: '*' }).first();
  expect(Number(badSplits?.n), 'every usage event splits its whole cost over buckets').toBe(0);
}
