// Benchmark data: a fresh MySQL schema with N users holding one key each (traffic spread over keys and balances)
// and one hot key (all traffic on one key row and one balance row). Also the ledger checks run after each load.
import knexFactory, { type Knex } from 'knex';
import { createDb, migrateLatest } from '../src/db/knex.js';
import { systemClock } from '../src/domain/clock.js';
import { createServices } from '../src/domain/services.js';
import { parseAud } from '../src/domain/money.js';
import type { Actor } from '../src/domain/actor.js';
import type { KeyControlsInput } from '../src/domain/keys/key-settings.js';

export interface BenchSeed {
  keys: string[];
  hotKey: string;
  /** The same users' second keys, with every key control set (none of them binding): #16's bench. */
  controlledKeys: string[];
  controlledHotKey: string;
  /** Usage events by outcome, once every admitted request has settled (no hold left). */
  countEvents(): Promise<{ total: number; ok: number }>;
  close(): Promise<void>;
}

const admin: Actor = { userId: 'bench', role: 'admin', via: 'cli' };

/**
 * Every key control at once, set so that none refuses a benchmark request: a monthly budget period, an allow-list,
 * requests and tokens per minute, a parallel cap, tags and the default alert thresholds. What is measured is the
 * work the controls add to admission and settlement, not refusals.
 */
export const BENCH_CONTROLS: KeyControlsInput = {
  limitReset: 'monthly',
  allowedModels: ['gpt-4o-mini'],
  rpmLimit: 10_000_000,
  tpmLimit: 1_000_000_000,
  maxParallel: 10_000,
  tags: ['bench', 'controls'],
  alertThresholds: null,
};

export async function seedBench(databaseUrl: string, users: number): Promise<BenchSeed> {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  if (!/^modelbridge_bench\w*$/.test(name)) throw new Error('BENCH_DATABASE_URL must name a modelbridge_bench* database (it is dropped)');
  const server = knexFactory({ client: 'mysql2', connection: { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
  await server.raw(`DROP DATABASE IF EXISTS \`${name}\``);
  await server.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await server.destroy();

  const db = createDb({ databaseUrl });
  await migrateLatest(db);
  const services = createServices({ db, clock: systemClock, timeZone: 'Australia/Sydney' });
  const keys: string[] = [];
  const controlledKeys: string[] = [];
  const topUp = parseAud('100000')!;
  for (let i = 0; i < users; i++) {
    const user = await services.users.create({ email: `bench${i}@example.test`, password: 'bench-password-123', planName: 'Pro' }, admin);
    await services.balances.credit({ userId: user.id }, topUp, 'bench', admin);
    const actor: Actor = { userId: user.id, role: 'user', via: 'cli' };
    keys.push((await services.keys.create({ name: `bench key ${i}`, spendLimitMicro: parseAud('50000') }, actor)).secret);
    controlledKeys.push((await services.keys.create({ name: `bench key ${i} (controls)`, spendLimitMicro: parseAud('50000'), ...BENCH_CONTROLS }, actor)).secret);
  }
  const hot = await services.users.create({ email: 'hot@example.test', password: 'bench-password-123', planName: 'Pro' }, admin);
  await services.balances.credit({ userId: hot.id }, topUp, 'bench', admin);
  const hotActor: Actor = { userId: hot.id, role: 'user', via: 'cli' };
  const hotKey = (await services.keys.create({ name: 'hot key', spendLimitMicro: parseAud('50000') }, hotActor)).secret;
  const controlledHotKey = (await services.keys.create({ name: 'hot key (controls)', spendLimitMicro: parseAud('50000'), ...BENCH_CONTROLS }, hotActor)).secret;
  return {
    keys,
    hotKey,
    controlledKeys,
    controlledHotKey,
    countEvents: async () => {
      for (let i = 0; i < 100 && Number((await db('holds').count({ n: '*' }).first())?.n ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      const rows = await db('usage_events').select('outcome').count({ n: '*' }).groupBy('outcome');
      const by = new Map((rows as Array<Record<string, unknown>>).map((r) => [String(r.outcome), Number(r.n)]));
      return { total: [...by.values()].reduce((a, b) => a + b, 0), ok: by.get('ok') ?? 0 };
    },
    close: () => db.destroy(),
  };
}

/** The ledger invariants of SPEC §5, as SQL over the whole database. Returns the violations found (none = ok). */
export async function checkInvariants(databaseUrl: string): Promise<{ ok: boolean; violations: string[] }> {
  const db: Knex = createDb({ databaseUrl, poolMax: 1 });
  try {
    const violations: string[] = [];
    const keyRows = await db.raw(`
      SELECT k.id, k.spend_micro, k.held_micro,
        (SELECT COALESCE(SUM(cost_micro),0) FROM usage_events e WHERE e.key_id = k.id) AS events,
        (SELECT COALESCE(-SUM(amount_micro),0) FROM ledger_entries l WHERE l.key_id = k.id AND l.kind = 'usage') AS debits,
        (SELECT COALESCE(SUM(amount_micro),0) FROM holds h WHERE h.key_id = k.id) AS holds
      FROM api_keys k`);
    for (const r of keyRows[0] as Array<Record<string, string>>) {
      if (String(r.spend_micro) !== String(r.events) || String(r.events) !== String(r.debits))
        violations.push(`key ${r.id}: spend ${r.spend_micro}, events ${r.events}, ledger debits ${r.debits}`);
      if (String(r.held_micro) !== String(r.holds)) violations.push(`key ${r.id}: held ${r.held_micro} but holds sum ${r.holds}`);
    }
    const balanceRows = await db.raw(`
      SELECT b.user_id, b.prepaid_micro, b.included_used_micro, b.overage_used_micro,
        (SELECT COALESCE(SUM(amount_micro),0) FROM ledger_entries l WHERE l.user_id = b.user_id AND l.account = 'user_prepaid') AS prepaid,
        (SELECT COALESCE(-SUM(amount_micro),0) FROM ledger_entries l WHERE l.user_id = b.user_id AND l.account = 'user_included' AND l.period_start = b.period_start) AS included,
        (SELECT COALESCE(-SUM(amount_micro),0) FROM ledger_entries l WHERE l.user_id = b.user_id AND l.account = 'user_overage' AND l.period_start = b.period_start) AS overage
      FROM personal_balances b`);
    for (const r of balanceRows[0] as Array<Record<string, string>>) {
      if (String(r.prepaid_micro) !== String(r.prepaid)) violations.push(`user ${r.user_id}: prepaid ${r.prepaid_micro} but ledger ${r.prepaid}`);
      if (String(r.included_used_micro) !== String(r.included)) violations.push(`user ${r.user_id}: included used ${r.included_used_micro} but ledger ${r.included}`);
      if (String(r.overage_used_micro) !== String(r.overage)) violations.push(`user ${r.user_id}: overage used ${r.overage_used_micro} but ledger ${r.overage}`);
    }
    return { ok: violations.length === 0, violations: violations.slice(0, 20) };
  } finally {
    await db.destroy();
  }
}
