import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One row per scheduled job: a lease that lets exactly one instance run it at a time, on MySQL and SQLite alike.
  await knex.schema.createTable('job_locks', (t) => {
    t.string('name', 40).primary();
    t.string('owner', 64).nullable();
    t.datetime('locked_until', { precision: 3 }).nullable();
    t.datetime('last_started_at', { precision: 3 }).nullable();
    t.datetime('last_finished_at', { precision: 3 }).nullable();
    t.string('last_result', 255).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('job_locks');
}
