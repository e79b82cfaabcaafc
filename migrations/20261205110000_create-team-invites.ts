import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One-time team invitations by e-mail. Only SHA-256 of the link's secret is stored (token_hash); the row's own id
  // is what pages and the API use to list and revoke it.
  await knex.schema.createTable('team_invites', (t) => {
    t.string('id', 32).primary();
    t.string('token_hash', 64).notNullable().unique();
    t.string('team_id', 32).notNullable().references('id').inTable('teams').onDelete('CASCADE');
    t.string('email', 254).notNullable();
    t.string('role', 10).notNullable();
    t.string('created_by', 32).nullable();
    t.datetime('expires_at', { precision: 3 }).notNullable();
    t.datetime('accepted_at', { precision: 3 }).nullable();
    t.string('accepted_by', 32).nullable();
    t.datetime('revoked_at', { precision: 3 }).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['team_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('team_invites');
}
