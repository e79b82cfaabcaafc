import type { Knex } from 'knex';

/**
 * Events (docs/webhooks.md): what happened to a key, a balance or a team, recorded in the transaction of the change
 * itself, so an event exists exactly when its change committed. `dedupe_key` makes recording idempotent (an expiry
 * warning per key and horizon, an alert firing once); `firing_id` links the events made from alert_firings, which
 * metering writes in its own SQL (the dispatcher turns firings without an event into events).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('events', (t) => {
    t.string('id', 32).primary();
    t.string('type', 40).notNullable();
    t.string('user_id', 32).nullable();
    t.string('team_id', 32).nullable();
    t.string('key_id', 32).nullable();
    t.text('payload').notNullable();
    t.string('dedupe_key', 120).notNullable().unique();
    t.integer('firing_id').nullable().unique();
    t.datetime('created_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('events');
}
