import type { Knex } from 'knex';

/**
 * Webhook endpoints: a URL receiving some event types of a user's own keys and balance, or of a team. The signing
 * secret is stored as is (it must sign every delivery, like other gateways' signing secrets); it is shown once at
 * creation and never again, and never logged.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.string('id', 32).primary();
    t.string('user_id', 32).nullable();
    t.string('team_id', 32).nullable();
    t.string('url', 2000).notNullable();
    // JSON array of event types.
    t.text('events').notNullable();
    t.string('secret', 80).notNullable();
    t.string('created_by', 32).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('deleted_at', { precision: 3 }).nullable();
    t.index(['user_id', 'deleted_at']);
    t.index(['team_id', 'deleted_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_endpoints');
}
