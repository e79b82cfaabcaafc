import type { Knex } from 'knex';

/**
 * The key controls of issue #16 (docs/limits.md): a budget period for the spending limit, a model allow-list, rate
 * limits with their counters, member budgets in teams, tags. The counters sit on the rows metering already locks
 * (api_keys, team_members), so the controls are exact across instances without a statement of their own.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    // null: the limit is lifetime; else the limit applies to `period_spend_micro`, spend since `period_start`.
    t.string('limit_reset', 8).nullable();
    t.bigInteger('period_spend_micro').notNullable().defaultTo(0);
    t.datetime('period_start', { precision: 3 }).nullable();
    // JSON array of catalog ids, or null: every model.
    t.text('allowed_models').nullable();
    t.integer('rpm_limit').nullable();
    t.integer('tpm_limit').nullable();
    t.integer('max_parallel').nullable();
    // Requests admitted and not yet settled (= this key's holds).
    t.integer('in_flight').notNullable().defaultTo(0);
    // The current one-minute rate window: its start, the requests admitted in it, the tokens counted in it.
    t.datetime('rate_window_start', { precision: 3 }).nullable();
    t.integer('rate_window_requests').notNullable().defaultTo(0);
    t.bigInteger('rate_window_tokens').notNullable().defaultTo(0);
    t.datetime('disabled_at', { precision: 3 }).nullable();
  });
  await knex.schema.alterTable('teams', (t) => {
    t.text('allowed_models').nullable();
    t.integer('default_rpm_limit').nullable();
    t.integer('default_tpm_limit').nullable();
    t.integer('default_max_parallel').nullable();
  });
  await knex.schema.alterTable('team_members', (t) => {
    // `<team_id>:<user_id>`: one column to lock the row by, in the metering batches' locking reads.
    t.string('id', 80).nullable();
    t.bigInteger('budget_micro').nullable();
    t.bigInteger('budget_spend_micro').notNullable().defaultTo(0);
    t.bigInteger('budget_held_micro').notNullable().defaultTo(0);
    t.datetime('budget_period_start', { precision: 3 }).nullable();
  });
  for (const m of await knex('team_members').select('team_id', 'user_id'))
    await knex('team_members').where({ team_id: m.team_id, user_id: m.user_id }).update({ id: `${m.team_id}:${m.user_id}` });
  await knex.schema.alterTable('team_members', (t) => {
    t.unique(['id']);
  });
  await knex.schema.alterTable('holds', (t) => {
    // Reserved against the member's budget (team keys), and the tokens counted in the key's rate window at admission.
    t.bigInteger('member_amount_micro').notNullable().defaultTo(0);
    t.bigInteger('rate_tokens').notNullable().defaultTo(0);
  });
  await knex.schema.createTable('key_tags', (t) => {
    t.string('key_id', 32).notNullable().references('id').inTable('api_keys').onDelete('CASCADE');
    t.string('tag', 32).notNullable();
    t.primary(['key_id', 'tag']);
    t.index(['tag']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('key_tags');
  await knex.schema.alterTable('holds', (t) => {
    t.dropColumn('member_amount_micro');
    t.dropColumn('rate_tokens');
  });
  await knex.schema.alterTable('team_members', (t) => {
    t.dropUnique(['id']);
  });
  await knex.schema.alterTable('team_members', (t) => {
    for (const c of ['id', 'budget_micro', 'budget_spend_micro', 'budget_held_micro', 'budget_period_start']) t.dropColumn(c);
  });
  await knex.schema.alterTable('teams', (t) => {
    for (const c of ['allowed_models', 'default_rpm_limit', 'default_tpm_limit', 'default_max_parallel']) t.dropColumn(c);
  });
  await knex.schema.alterTable('api_keys', (t) => {
    for (const c of ['limit_reset', 'period_spend_micro', 'period_start', 'allowed_models', 'rpm_limit', 'tpm_limit', 'max_parallel', 'in_flight',
      'rate_window_start', 'rate_window_requests', 'rate_window_tokens', 'disabled_at']) t.dropColumn(c);
  });
}
