import type { Knex } from 'knex';

/**
 * Spend alerts (docs/limits.md, "Alerts"): thresholds per key and per team (member budgets), the highest threshold
 * fired in the current period on the rows metering already locks (so a crossing is decided under that lock with no
 * statement of its own), and one firing row per crossing, unique per (event type, scope, period start, threshold):
 * the record the portal shows, and the guarantee that a crossing fires once per period.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    // JSON array of percentages, null: the defaults (50, 80, 100); [] : no alerts.
    t.text('alert_thresholds').nullable();
    t.integer('alert_fired_pct').notNullable().defaultTo(0);
  });
  await knex.schema.alterTable('teams', (t) => {
    // Thresholds on its members' budgets.
    t.text('alert_thresholds').nullable();
  });
  await knex.schema.alterTable('team_members', (t) => {
    t.integer('alert_fired_pct').notNullable().defaultTo(0);
  });
  await knex.schema.createTable('alert_firings', (t) => {
    t.increments('id').primary();
    t.string('event_type', 40).notNullable();
    // The key id, or the membership row id (`<team>:<user>`).
    t.string('scope_id', 80).notNullable();
    // The start of the period the threshold was crossed in (1970-01-01 for a lifetime limit).
    t.datetime('period_start', { precision: 3 }).notNullable();
    t.integer('threshold').notNullable();
    t.string('user_id', 32).nullable();
    t.string('team_id', 32).nullable();
    t.string('key_id', 32).nullable();
    t.bigInteger('spent_micro').notNullable();
    t.bigInteger('limit_micro').notNullable();
    t.string('request_id', 40).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.unique(['event_type', 'scope_id', 'period_start', 'threshold']);
    t.index(['key_id', 'created_at']);
    t.index(['team_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('alert_firings');
  await knex.schema.alterTable('team_members', (t) => t.dropColumn('alert_fired_pct'));
  await knex.schema.alterTable('teams', (t) => t.dropColumn('alert_thresholds'));
  await knex.schema.alterTable('api_keys', (t) => {
    t.dropColumn('alert_thresholds');
    t.dropColumn('alert_fired_pct');
  });
}
