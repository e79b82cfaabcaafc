import type { Knex } from 'knex';

/**
 * The outbox: one delivery per event and endpoint, written with the event. A sender claims due rows for a while
 * (claimed_by / claimed_until), so two instances never send the same attempt at once and a dead sender's claim
 * simply runs out.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.increments('id').primary();
    t.string('event_id', 32).notNullable();
    t.string('endpoint_id', 32).notNullable();
    t.string('status', 16).notNullable(); // pending | delivered | failed
    t.integer('attempts').notNullable().defaultTo(0);
    t.datetime('next_attempt_at', { precision: 3 }).notNullable();
    t.string('claimed_by', 64).nullable();
    t.datetime('claimed_until', { precision: 3 }).nullable();
    t.integer('last_status_code').nullable();
    t.string('last_error', 200).nullable();
    t.datetime('delivered_at', { precision: 3 }).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.unique(['event_id', 'endpoint_id']);
    t.index(['status', 'next_attempt_at']);
    t.index(['endpoint_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_deliveries');
}
