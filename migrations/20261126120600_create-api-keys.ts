import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.string('id', 32).primary();
    t.string('name', 100).notNullable();
    // SHA-256 (hex) of the whole key; the key itself is never stored.
    t.string('key_hash', 64).notNullable().unique();
    t.string('last4', 4).notNullable();
    t.string('owner_id', 32).notNullable().references('id').inTable('users');
    t.string('team_id', 32).nullable().references('id').inTable('teams');
    t.string('status', 16).notNullable().defaultTo('active');
    t.bigInteger('spend_limit_micro').nullable();
    t.bigInteger('spend_micro').notNullable().defaultTo(0);
    // Sum of this key's outstanding holds (admitted, not yet settled requests).
    t.bigInteger('held_micro').notNullable().defaultTo(0);
    t.bigInteger('request_count').notNullable().defaultTo(0);
    t.datetime('expires_at', { precision: 3 }).nullable();
    t.datetime('last_used_at', { precision: 3 }).nullable();
    t.datetime('revoked_at', { precision: 3 }).nullable();
    // Rotation: the successor, and when this key retires (end of the grace period).
    t.string('rotated_to_id', 32).nullable();
    t.datetime('retire_at', { precision: 3 }).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
    t.index(['owner_id']);
    t.index(['team_id']);
    t.index(['status', 'expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
