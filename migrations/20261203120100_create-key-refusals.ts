import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Refused proxy requests per key, aggregated in memory and flushed periodically (src/domain/keys/refusals.ts):
  // a key hammered with refused requests costs a few writes per flush, not a row per request.
  await knex.schema.createTable('key_refusal_counts', (t) => {
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys').onDelete('CASCADE');
    t.string('day', 10).notNullable(); // local date, YYYY-MM-DD in the installation time zone
    t.integer('status').notNullable();
    t.string('code', 64).notNullable();
    t.bigInteger('refusals').notNullable();
    t.primary(['key_id', 'day', 'status', 'code']);
  });
  // The latest few refusals of each key (at most REFUSAL_SAMPLES_PER_KEY are kept).
  await knex.schema.createTable('key_refusal_samples', (t) => {
    t.increments('id').primary();
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys').onDelete('CASCADE');
    t.datetime('at', { precision: 3 }).notNullable();
    t.integer('status').notNullable();
    t.string('code', 64).notNullable();
    t.string('model', 200).nullable();
    t.index(['key_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('key_refusal_samples');
  await knex.schema.dropTable('key_refusal_counts');
}
