import type { Knex } from 'knex';

/**
 * A row version on every row the metering transaction locks or reads (docs/metering.md, "One round trip per
 * batch"): a counter the database itself raises on every UPDATE of the row, by whichever writer — metering, the
 * portal, tRPC, a job, an operator at the SQL prompt. So "the row is still as this instance last wrote it" is one
 * compared column instead of every column, which is what made the guessed transaction's checks its most expensive
 * statements. A trigger, not application code, so no writer can forget it.
 */
const TABLES: Array<[table: string, id: string]> = [
  ['api_keys', 'id'], ['personal_balances', 'user_id'], ['teams', 'id'], ['team_members', 'id'], ['holds', 'request_id'],
  ['models', 'id'], ['users', 'id'], ['plans', 'id'],
];

const trigger = (table: string) => `${table}_row_version`;

export async function up(knex: Knex): Promise<void> {
  const sqlite = knex.client.config.client === 'better-sqlite3';
  for (const [table, id] of TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.bigInteger('row_version').notNullable().defaultTo(0);
    });
    if (sqlite)
      // SQLite has no BEFORE UPDATE assignment to NEW; its metering never plans from remembered rows, but the column
      // means the same on both databases. The WHEN keeps the trigger's own UPDATE from firing it again.
      await knex.raw(
        `CREATE TRIGGER ${trigger(table)} AFTER UPDATE ON ${table} FOR EACH ROW WHEN NEW.row_version = OLD.row_version ` +
          `BEGIN UPDATE ${table} SET row_version = OLD.row_version + 1 WHERE ${id} = NEW.${id}; END`,
      );
    else await knex.raw(`CREATE TRIGGER ${trigger(table)} BEFORE UPDATE ON ${table} FOR EACH ROW SET NEW.row_version = OLD.row_version + 1`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of TABLES) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${trigger(table)}`);
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('row_version');
    });
  }
}
