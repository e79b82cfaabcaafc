import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sessions', (t) => {
    // SHA-256 of the session id: the cookie value itself is never stored.
    t.string('id', 64).primary();
    t.string('user_id', 32).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.datetime('expires_at', { precision: 3 }).notNullable();
    t.string('ip', 64).nullable();
    t.string('user_agent', 255).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sessions');
}
