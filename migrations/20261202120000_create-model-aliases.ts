import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Other names a catalog entry answers to. The primary key makes an alias unique among aliases; that it is not
  // also some entry's id is checked by ModelsService.upsert (and seedMissingModels) in the same transaction.
  await knex.schema.createTable('model_aliases', (t) => {
    t.string('alias', 100).primary();
    t.string('model_id', 100).notNullable().references('id').inTable('models');
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['model_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('model_aliases');
}
