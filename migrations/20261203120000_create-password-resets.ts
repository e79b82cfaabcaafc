import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One-time password reset links an administrator issues. Only SHA-256 of the link's secret is stored.
  await knex.schema.createTable('password_resets', (t) => {
    t.string('id', 64).primary();
    t.string('user_id', 32).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('created_by', 32).nullable();
    t.datetime('expires_at', { precision: 3 }).notNullable();
    t.datetime('used_at', { precision: 3 }).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('password_resets');
}
