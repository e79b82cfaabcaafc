import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // The cached state of a user's three buckets; always equal to sums over ledger_entries (checked by reconcile).
  await knex.schema.createTable('personal_balances', (t) => {
    t.string('user_id', 32).primary().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('included_used_micro').notNullable().defaultTo(0);
    t.bigInteger('prepaid_micro').notNullable().defaultTo(0);
    t.bigInteger('overage_used_micro').notNullable().defaultTo(0);
    // Sum of outstanding holds of this user's personal keys: reserved, not yet spent.
    t.bigInteger('held_micro').notNullable().defaultTo(0);
    t.datetime('period_start', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('personal_balances');
}
