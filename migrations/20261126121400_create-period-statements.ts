import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('period_statements', (t) => {
    t.bigIncrements('id');
    t.string('user_id', 32).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.datetime('period_start', { precision: 3 }).notNullable();
    t.datetime('period_end', { precision: 3 }).notNullable();
    t.string('plan_id', 32).notNullable();
    t.bigInteger('included_micro').notNullable();
    t.bigInteger('included_used_micro').notNullable();
    t.bigInteger('overage_used_micro').notNullable();
    t.bigInteger('prepaid_end_micro').notNullable();
    t.bigInteger('spend_micro').notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    // Written once per user and period, whatever number of instances run the roll-over.
    t.unique(['user_id', 'period_start']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('period_statements');
}
