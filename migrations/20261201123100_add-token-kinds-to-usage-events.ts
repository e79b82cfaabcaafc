import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Each kind of token a request was billed for, apart (see TokenUsage): from now on `input_tokens` counts only the
  // input billed at the input price. Events recorded before this migration keep their counts as they were — their
  // `input_tokens` includes any Anthropic cache reads and writes (all billed at the input price then) — and 0 here.
  await knex.schema.alterTable('usage_events', (t) => {
    t.integer('cached_input_tokens').notNullable().defaultTo(0);
    t.integer('cache_write_5m_tokens').notNullable().defaultTo(0);
    t.integer('cache_write_1h_tokens').notNullable().defaultTo(0);
    t.integer('reasoning_tokens').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('usage_events', (t) => {
    t.dropColumn('cached_input_tokens');
    t.dropColumn('cache_write_5m_tokens');
    t.dropColumn('cache_write_1h_tokens');
    t.dropColumn('reasoning_tokens');
  });
}
