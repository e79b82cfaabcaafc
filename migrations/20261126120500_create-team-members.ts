import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('team_members', (t) => {
    t.string('team_id', 32).notNullable().references('id').inTable('teams').onDelete('CASCADE');
    t.string('user_id', 32).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('role', 10).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.primary(['team_id', 'user_id']);
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('team_members');
}
