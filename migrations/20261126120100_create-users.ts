import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.string('id', 32).primary();
    // Stored lower-cased, so the unique index makes e-mail addresses unique case-insensitively on both databases.
    t.string('email', 254).notNullable().unique();
    t.string('name', 100).notNullable();
    t.string('password_hash', 255).notNullable();
    t.string('role', 10).notNullable().defaultTo('user');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.string('plan_id', 32).notNullable().references('id').inTable('plans');
    t.string('time_zone', 64).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
