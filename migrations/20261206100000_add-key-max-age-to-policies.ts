import type { Knex } from 'knex';

/**
 * The maximum key age of the key policy (docs/security.md, "Rotation that happens"), per team and per installation:
 * keys older than it keep working but are "rotation due", warned about and, when they ask for it, rotated by the job.
 */
export async function up(knex: Knex): Promise<void> {
  for (const table of ['teams', 'installation_settings'])
    await knex.schema.alterTable(table, (t) => {
      t.integer('key_max_age_days').nullable();
    });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['teams', 'installation_settings'])
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('key_max_age_days');
    });
}
