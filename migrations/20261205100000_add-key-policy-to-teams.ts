import type { Knex } from 'knex';

/**
 * A team's guard-rails on its new keys (docs/security.md, "Guard-rails on new keys"), set by its owners and admins:
 * every new key needs a spending limit, an expiry at most N days ahead, a name unique per owner.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('teams', (t) => {
    t.boolean('key_require_limit').notNullable().defaultTo(false);
    t.integer('key_max_expiry_days').nullable();
    t.boolean('key_unique_names').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('teams', (t) => {
    for (const c of ['key_require_limit', 'key_max_expiry_days', 'key_unique_names']) t.dropColumn(c);
  });
}
