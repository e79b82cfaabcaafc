import type { Knex } from 'knex';
import { seedMissingModels } from './seed/seed-models.js';

/**
 * The current models of both providers (migrations/seed/catalog.ts), so a fresh install serves what Claude Code and
 * the Codex CLI ask for by default. Entries an installation already has keep their prices (see seedMissingModels).
 */
export async function up(knex: Knex): Promise<void> {
  await seedMissingModels(knex);
}

export async function down(): Promise<void> {
  // Nothing: once served, an entry is referenced by usage and may have been edited; it is not ours to delete.
}
