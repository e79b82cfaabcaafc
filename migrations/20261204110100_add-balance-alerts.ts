import type { Knex } from 'knex';

/**
 * Balance alerts (docs/limits.md, "Alerts"): a user's thresholds on the share of their plan's included usage used
 * this billing month, and a team's thresholds on the share of its balance at the last top-up spent since. The
 * highest threshold fired sits on the row metering locks (personal_balances, teams), like the key's.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.text('alert_thresholds').nullable();
  });
  await knex.schema.alterTable('personal_balances', (t) => {
    t.integer('alert_fired_pct').notNullable().defaultTo(0);
  });
  await knex.schema.alterTable('teams', (t) => {
    // The balance right after the last top-up, and when: what a team's balance thresholds are shares of.
    t.bigInteger('balance_alert_base_micro').nullable();
    t.datetime('balance_alert_since', { precision: 3 }).nullable();
    t.integer('balance_alert_fired_pct').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('teams', (t) => {
    for (const c of ['balance_alert_base_micro', 'balance_alert_since', 'balance_alert_fired_pct']) t.dropColumn(c);
  });
  await knex.schema.alterTable('personal_balances', (t) => t.dropColumn('alert_fired_pct'));
  await knex.schema.alterTable('users', (t) => t.dropColumn('alert_thresholds'));
}
