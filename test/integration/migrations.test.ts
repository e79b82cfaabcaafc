import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, dialect, type TestDb } from '../support/db.js';

describe(`migrations (${dialect})`, () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(async () => t.destroy());

  it('creates the whole model and seeds plans and the model catalog', async () => {
    for (const table of ['users', 'sessions', 'plans', 'personal_balances', 'teams', 'team_members', 'api_keys', 'holds', 'usage_events', 'ledger_entries', 'management_tokens', 'audit_events', 'models', 'job_locks', 'period_statements'])
      expect(await t.db.schema.hasTable(table), table).toBe(true);
    expect((await t.db('plans')).length).toBe(2);
    expect((await t.db('models')).length).toBeGreaterThan(3);
  });

  it('keeps micro-AUD exact in BIGINT columns beyond 2^32', async () => {
    const now = new Date();
    await t.db('plans').insert({ id: 'big', name: 'Big', included_micro: 900_000_000_000_000, overage_allowed: false, is_default: false, created_at: now, updated_at: now });
    const sum = await t.db('plans').where({ id: 'big' }).sum({ s: 'included_micro' }).first();
    expect(String(sum!.s)).toBe('900000000000000');
  });

  it('round-trips timestamps in UTC with milliseconds', async () => {
    const at = new Date('2026-03-04T05:06:07.089Z');
    await t.db('job_locks').insert({ name: 'ts', locked_until: at });
    const row = await t.db('job_locks').where({ name: 'ts' }).first();
    const { toDate } = await import('../../src/db/rows.js');
    expect(toDate(row.locked_until).toISOString()).toBe(at.toISOString());
    const found = await t.db('job_locks').where('locked_until', '>', new Date(at.getTime() - 1)).first();
    expect(found?.name).toBe('ts');
  });
});
