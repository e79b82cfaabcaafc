import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogSeed } from '../../migrations/seed/catalog.js';
import { seedMissingModels, usdToMicroAud } from '../../migrations/seed/seed-models.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';

describe(`migrations (${dialect})`, () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(async () => t.destroy());

  it('creates the whole model and seeds plans and the model catalog', async () => {
    for (const table of ['users', 'sessions', 'plans', 'personal_balances', 'teams', 'team_members', 'api_keys', 'holds', 'usage_events', 'ledger_entries', 'management_tokens', 'audit_events', 'models', 'model_aliases', 'job_locks', 'period_statements'])
      expect(await t.db.schema.hasTable(table), table).toBe(true);
    expect((await t.db('plans')).length).toBe(2);
    expect((await t.db('models')).length).toBeGreaterThan(3);
  });

  it('seeds every entry of the catalog data file at its list price', async () => {
    const rows = await t.db('models');
    for (const m of catalogSeed.models)
      expect(rows.find((r) => r.id === m.id), m.id).toMatchObject({ provider: m.provider, upstream_model: m.upstreamModel, max_output_tokens: m.maxOutputTokens });
    const opus = rows.find((r) => r.id === 'claude-opus-5-5')!;
    expect(Number(opus.input_micro_per_mtok)).toBe(usdToMicroAud(4));
    expect(Number(opus.output_micro_per_mtok)).toBe(usdToMicroAud(20));
  });

  it('adds only the missing entries to an existing catalog and leaves an admin’s edits alone', async () => {
    // An installation from before this data file: an edited price, a disabled model, an entry the admin made
    // under a name the catalog now uses, a name taken as an alias, and two models it never had.
    await t.db('models').where({ id: 'gpt-4o' }).update({ input_micro_per_mtok: 1, output_micro_per_mtok: 2 });
    await t.db('models').where({ id: 'claude-haiku-4-5' }).update({ enabled: false });
    await t.db('models').where({ id: 'claude-opus-5-5' }).update({ input_micro_per_mtok: 7, upstream_model: 'claude-opus-5-5-20260922' });
    await t.db('models').whereIn('id', ['claude-sonnet-5-5', 'gpt-6.2-sol', 'gpt-5.5']).delete();
    await t.db('model_aliases').insert({ alias: 'gpt-5.5', model_id: 'gpt-4o', created_at: new Date() });

    expect((await seedMissingModels(t.db)).sort()).toEqual(['claude-sonnet-5-5', 'gpt-6.2-sol']);
    const byId = new Map((await t.db('models')).map((r) => [r.id as string, r]));
    expect([Number(byId.get('gpt-4o')!.input_micro_per_mtok), Number(byId.get('gpt-4o')!.output_micro_per_mtok)]).toEqual([1, 2]);
    expect(Boolean(byId.get('claude-haiku-4-5')!.enabled)).toBe(false);
    expect(Number(byId.get('claude-opus-5-5')!.input_micro_per_mtok)).toBe(7);
    expect(byId.get('claude-opus-5-5')!.upstream_model).toBe('claude-opus-5-5-20260922');
    expect(Number(byId.get('claude-sonnet-5-5')!.input_micro_per_mtok)).toBe(usdToMicroAud(2));
    expect(byId.has('gpt-5.5')).toBe(false);
    expect(await seedMissingModels(t.db)).toEqual([]);
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
