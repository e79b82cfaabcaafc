import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Failed sign-ins, one row per throttle bucket they count against (account, account + source, source), so the
  // throttle holds across every instance. `bucket` is a SHA-256 of the bucket's identity: no e-mail or IP in clear.
  await knex.schema.createTable('login_failures', (t) => {
    t.bigIncrements('id');
    t.string('bucket', 64).notNullable();
    t.datetime('failed_at', { precision: 3 }).notNullable();
    t.index(['bucket', 'failed_at']);
    t.index(['failed_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_failures');
}
