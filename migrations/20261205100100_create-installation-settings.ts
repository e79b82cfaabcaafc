import type { Knex } from 'knex';

/**
 * Settings of the installation that admins change at run time (environment variables hold the rest, src/config.ts):
 * one row, id 'installation'. First the guard-rails on every new key (docs/security.md, "Guard-rails on new keys").
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('installation_settings', (t) => {
    t.string('id', 32).primary();
    t.boolean('key_require_limit').notNullable().defaultTo(false);
    t.integer('key_max_expiry_days').nullable();
    t.boolean('key_unique_names').notNullable().defaultTo(false);
  });
  await knex('installation_settings').insert({ id: 'installation' });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('installation_settings');
}
