import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('plans', (t) => {
    t.string('id', 32).primary();
    t.string('name', 100).notNullable().unique();
    t.bigInteger('included_micro').notNullable().defaultTo(0);
    t.boolean('overage_allowed').notNullable().defaultTo(false);
    t.bigInteger('overage_cap_micro').nullable();
    t.boolean('is_default').notNullable().defaultTo(false);
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
  const now = new Date();
  await knex('plans').insert([
    { id: 'plan_free', name: 'Free', included_micro: 5_000_000, overage_allowed: false, overage_cap_micro: null, is_default: true, created_at: now, updated_at: now },
    { id: 'plan_pro', name: 'Pro', included_micro: 50_000_000, overage_allowed: true, overage_cap_micro: 200_000_000, is_default: false, created_at: now, updated_at: now },
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('plans');
}
