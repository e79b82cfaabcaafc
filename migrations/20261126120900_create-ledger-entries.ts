import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Immutable: credits are positive, debits negative. Cached balances and spend are sums over these rows.
  await knex.schema.createTable('ledger_entries', (t) => {
    t.bigIncrements('id');
    t.string('account', 20).notNullable(); // user_included | user_prepaid | user_overage | team
    t.string('user_id', 32).nullable();
    t.string('team_id', 32).nullable();
    t.string('key_id', 32).nullable();
    t.bigInteger('amount_micro').notNullable();
    t.string('kind', 20).notNullable(); // usage | topup | adjustment
    t.string('request_id', 40).nullable();
    // Billing period (start instant) the entry belongs to, for the per-period included and overage buckets.
    t.datetime('period_start', { precision: 3 }).nullable();
    t.string('note', 255).nullable();
    t.string('created_by', 32).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['user_id', 'account']);
    t.index(['team_id']);
    t.index(['key_id']);
    t.index(['request_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('ledger_entries');
}
