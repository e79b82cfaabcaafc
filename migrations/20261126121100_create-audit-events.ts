import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id');
    t.string('actor_id', 32).nullable();
    t.string('actor_kind', 10).notNullable(); // user | token | system | cli
    t.string('action', 60).notNullable();
    t.string('target_type', 20).notNullable();
    t.string('target_id', 40).nullable();
    t.text('details').nullable(); // JSON, never secrets
    t.string('ip', 64).nullable();
    t.string('user_agent', 255).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['target_type', 'target_id']);
    t.index(['created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
}
