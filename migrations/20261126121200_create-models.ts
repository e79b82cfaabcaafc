import type { Knex } from 'knex';
import { seedModels } from './seed/models.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('models', (t) => {
    t.string('id', 100).primary();
    t.string('provider', 20).notNullable();
    t.string('upstream_model', 100).notNullable();
    t.bigInteger('input_micro_per_mtok').notNullable();
    t.bigInteger('output_micro_per_mtok').notNullable();
    t.integer('max_output_tokens').notNullable().defaultTo(4096);
    t.boolean('enabled').notNullable().defaultTo(true);
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
  const now = new Date();
  await knex('models').insert(seedModels.map((m) => ({ ...m, enabled: true, created_at: now, updated_at: now })));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('models');
}
