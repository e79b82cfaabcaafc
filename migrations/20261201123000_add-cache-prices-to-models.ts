import type { Knex } from 'knex';
import { seedCachePrices, seedModels } from './seed/models.js';

export async function up(knex: Knex): Promise<void> {
  // Prompt-cache prices per model. Null means "billed at the input price": what every cache token cost before this
  // migration, and the safe default for a model whose provider publishes no cache price.
  await knex.schema.alterTable('models', (t) => {
    t.bigInteger('cached_input_micro_per_mtok').nullable();
    t.bigInteger('cache_write_micro_per_mtok').nullable();
    t.bigInteger('cache_write_1h_micro_per_mtok').nullable();
  });
  // Seeded models get their providers' cache prices — only while their input price is still the seed's: a model an
  // admin repriced keeps billing cache tokens at its input price until the admin sets cache prices too.
  const now = new Date();
  for (const model of seedModels) {
    const prices = seedCachePrices[model.id];
    if (prices) await knex('models').where({ id: model.id, input_micro_per_mtok: model.input_micro_per_mtok }).update({ ...prices, updated_at: now });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('models', (t) => {
    t.dropColumn('cached_input_micro_per_mtok');
    t.dropColumn('cache_write_micro_per_mtok');
    t.dropColumn('cache_write_1h_micro_per_mtok');
  });
}
