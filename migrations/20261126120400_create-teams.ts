import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('teams', (t) => {
    t.string('id', 32).primary();
    t.string('name', 100).notNullable();
    t.bigInteger('balance_micro').notNullable().defaultTo(0);
    t.bigInteger('held_micro').notNullable().defaultTo(0);
    t.string('created_by', 32).nullable().references('id').inTable('users').onDelete('SET NULL');
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('teams');
}
