import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('usage_events', (t) => {
    t.bigIncrements('id');
    // Unique: settlement is idempotent on the request id.
    t.string('request_id', 40).notNullable().unique();
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys');
    t.string('user_id', 32).notNullable();
    t.string('team_id', 32).nullable();
    t.string('model', 100).notNullable();
    t.string('provider', 20).notNullable();
    t.string('endpoint', 40).notNullable();
    t.integer('input_tokens').notNullable().defaultTo(0);
    t.integer('output_tokens').notNullable().defaultTo(0);
    t.bigInteger('cost_micro').notNullable().defaultTo(0);
    // How the cost split over the payer's buckets.
    t.bigInteger('included_micro').notNullable().defaultTo(0);
    t.bigInteger('prepaid_micro').notNullable().defaultTo(0);
    t.bigInteger('overage_micro').notNullable().defaultTo(0);
    t.bigInteger('team_micro').notNullable().defaultTo(0);
    t.string('outcome', 20).notNullable();
    t.boolean('estimated').notNullable().defaultTo(false);
    t.integer('http_status').notNullable();
    t.integer('latency_ms').notNullable().defaultTo(0);
    t.boolean('streamed').notNullable().defaultTo(false);
    t.datetime('started_at', { precision: 3 }).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['key_id', 'created_at']);
    t.index(['user_id', 'created_at']);
    t.index(['team_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('usage_events');
}
