import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Responses created through ModelBridge. A stored response lives in the operator's upstream account, where any
  // id can be read; this record is what lets a key read, delete or chain on only its own owner's responses.
  await knex.schema.createTable('stored_responses', (t) => {
    t.string('response_id', 191).primary();
    t.string('request_id', 40).notNullable();
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys');
    t.string('owner_id', 32).notNullable();
    t.string('team_id', 32).nullable();
    t.string('model', 100).notNullable();
    // Input (cached included) + output tokens of the response: the most a request that chains on it
    // (previous_response_id) can add as context the provider keeps and the request body does not show.
    t.bigInteger('context_tokens').notNullable().defaultTo(0);
    t.datetime('created_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('stored_responses');
}
