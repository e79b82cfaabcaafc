import type { Knex } from 'knex';

/**
 * Scheduled rotation (docs/webhooks.md, "Scheduled rotation"): `auto_rotate` asks the rotate-keys job to rotate the
 * key at its rotate-by date and deliver the new secret by signed webhook. The claim columns keep two job runs from
 * rotating the same key at once: one conditional UPDATE takes the claim, and only its holder may commit the successor.
 * After a failed delivery the claim is released with `claimed_until` set to the next attempt (backoff on
 * `auto_rotate_failures`), so a receiver that is down is not sent a fresh secret every minute for days.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    t.boolean('auto_rotate').notNullable().defaultTo(false);
    t.string('auto_rotate_claimed_by', 32).nullable();
    t.datetime('auto_rotate_claimed_until', { precision: 3 }).nullable();
    t.integer('auto_rotate_failures').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    for (const c of ['auto_rotate', 'auto_rotate_claimed_by', 'auto_rotate_claimed_until', 'auto_rotate_failures']) t.dropColumn(c);
  });
}
