import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One row per admitted, unsettled request. The deadline lets the release job recover holds of a crashed process.
  await knex.schema.createTable('holds', (t) => {
    t.string('request_id', 40).primary();
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys');
    t.string('user_id', 32).notNullable();
    t.string('team_id', 32).nullable();
    t.bigInteger('amount_micro').notNullable();
    t.string('model', 100).notNullable();
    t.string('provider', 20).notNullable();
    t.string('endpoint', 40).notNullable();
    t.boolean('streamed').notNullable().defaultTo(false);
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('deadline_at', { precision: 3 }).notNullable();
    t.index(['deadline_at']);
    t.index(['key_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('holds');
}
