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

/**
 * What a metered row takes from other rows (src/domain/billing/metering/sql.ts reads it in subqueries) is covered by
 * its own version too: a change to those rows raises the versions of the rows that read them, so the guess check
 * compares one column per row and no subquery. Kept in step with the reads there (a test changes each of these
 * behind the application's back). Only these columns of teams propagate: a team row is written by every charge of
 * a team key (balance, held), and its keys must not be invalidated by that.
 */
const TEAM_KEY_SETTINGS = ['allowed_models', 'default_rpm_limit', 'default_tpm_limit', 'default_max_parallel'];
const PROPAGATIONS: Array<{ name: string; table: string; when?: string[]; bump: Array<[table: string, where: string]> }> = [
  // The owner's `disabled` flag (keys), plan and balance-alert thresholds (the personal balance).
  { name: 'users_row_version_propagates', table: 'users', bump: [['api_keys', 'owner_id = NEW.id'], ['personal_balances', 'user_id = NEW.id']] },
  // The plan's included usage, overage switch and cap (every balance on the plan; plans change rarely).
  { name: 'plans_row_version_propagates', table: 'plans', bump: [['personal_balances', 'user_id IN (SELECT u.id FROM users u WHERE u.plan_id = NEW.id)']] },
  // The team's allow-list and rate-limit defaults (its keys), and its member-budget alert thresholds (its members).
  { name: 'teams_key_settings_propagate', table: 'teams', when: TEAM_KEY_SETTINGS, bump: [['api_keys', 'team_id = NEW.id']] },
  { name: 'teams_member_thresholds_propagate', table: 'teams', when: ['alert_thresholds'], bump: [['team_members', 'team_id = NEW.id']] },
];

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
  for (const p of PROPAGATIONS) {
    const changed = p.when ? `NOT (${p.when.map((c) => (sqlite ? `NEW.${c} IS OLD.${c}` : `NEW.${c} <=> OLD.${c}`)).join(' AND ')})` : null;
    // Each bumped table's own trigger makes it exactly one more (MySQL sets it from OLD; SQLite's sees it moved).
    const bumps = p.bump.map(([table, where]) => `UPDATE ${table} SET row_version = row_version + 1 WHERE ${where};`).join(' ');
    // SQLite: not again for the row's own version bump (its trigger's UPDATE fires the table's other triggers).
    const original = 'NEW.row_version = OLD.row_version';
    if (sqlite) await knex.raw(`CREATE TRIGGER ${p.name} AFTER UPDATE ON ${p.table} FOR EACH ROW WHEN ${changed ? `${original} AND ${changed}` : original} BEGIN ${bumps} END`);
    else await knex.raw(`CREATE TRIGGER ${p.name} AFTER UPDATE ON ${p.table} FOR EACH ROW ${changed ? `IF ${changed} THEN ${bumps} END IF` : `BEGIN ${bumps} END`}`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const p of PROPAGATIONS) await knex.raw(`DROP TRIGGER IF EXISTS ${p.name}`);
  for (const [table] of TABLES) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${trigger(table)}`);
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('row_version');
    });
  }
}
