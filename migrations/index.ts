import type { Knex } from 'knex';
import * as createPlans from './20261126120000_create-plans.js';
import * as createUsers from './20261126120100_create-users.js';
import * as createSessions from './20261126120200_create-sessions.js';
import * as createPersonalBalances from './20261126120300_create-personal-balances.js';
import * as createTeams from './20261126120400_create-teams.js';
import * as createTeamMembers from './20261126120500_create-team-members.js';
import * as createApiKeys from './20261126120600_create-api-keys.js';
import * as createHolds from './20261126120700_create-holds.js';
import * as createUsageEvents from './20261126120800_create-usage-events.js';
import * as createLedgerEntries from './20261126120900_create-ledger-entries.js';
import * as createManagementTokens from './20261126121000_create-management-tokens.js';
import * as createAuditEvents from './20261126121100_create-audit-events.js';
import * as createModels from './20261126121200_create-models.js';
import * as createJobLocks from './20261126121300_create-job-locks.js';
import * as createPeriodStatements from './20261126121400_create-period-statements.js';
import * as addPayerAmountToHolds from './20261201120000_add-payer-amount-to-holds.js';
import * as addCachePricesToModels from './20261201123000_add-cache-prices-to-models.js';
import * as addTokenKindsToUsageEvents from './20261201123100_add-token-kinds-to-usage-events.js';
import * as createModelAliases from './20261202120000_create-model-aliases.js';
import * as addKeyControls from './20261202140000_add-key-controls.js';
import * as addCurrentModels from './20261202120100_add-current-models.js';
import * as createLoginFailures from './20261202130000_create-login-failures.js';
import * as createStoredResponses from './20261202130000_create-stored-responses.js';
import * as createPasswordResets from './20261203120000_create-password-resets.js';
import * as createKeyRefusals from './20261203120100_create-key-refusals.js';
import * as addSpendAlerts from './20261204110000_add-spend-alerts.js';
import * as addBalanceAlerts from './20261204110100_add-balance-alerts.js';
import * as addKeyPolicyToTeams from './20261205100000_add-key-policy-to-teams.js';
import * as createInstallationSettings from './20261205100100_create-installation-settings.js';
import * as createTeamInvites from './20261205110000_create-team-invites.js';
import * as createEvents from './20261205120000_create-events.js';
import * as createWebhookEndpoints from './20261205120100_create-webhook-endpoints.js';
import * as createWebhookDeliveries from './20261205120200_create-webhook-deliveries.js';
import * as addKeyMaxAgeToPolicies from './20261206100000_add-key-max-age-to-policies.js';
import * as addAutoRotateToApiKeys from './20261206100100_add-auto-rotate-to-api-keys.js';
import * as addRowVersions from './20261207100000_add-row-versions.js';

type Migration = { up: (knex: Knex) => Promise<void>; down: (knex: Knex) => Promise<void> };

/**
 * Migrations are listed in code (append-only, in order) so they run the same under tsx, vitest and any bundler;
 * knex's directory scanning cannot load .ts files under vitest.
 */
const migrations: Array<[string, Migration]> = [
  ['20261126120000_create-plans', createPlans],
  ['20261126120100_create-users', createUsers],
  ['20261126120200_create-sessions', createSessions],
  ['20261126120300_create-personal-balances', createPersonalBalances],
  ['20261126120400_create-teams', createTeams],
  ['20261126120500_create-team-members', createTeamMembers],
  ['20261126120600_create-api-keys', createApiKeys],
  ['20261126120700_create-holds', createHolds],
  ['20261126120800_create-usage-events', createUsageEvents],
  ['20261126120900_create-ledger-entries', createLedgerEntries],
  ['20261126121000_create-management-tokens', createManagementTokens],
  ['20261126121100_create-audit-events', createAuditEvents],
  ['20261126121200_create-models', createModels],
  ['20261126121300_create-job-locks', createJobLocks],
  ['20261126121400_create-period-statements', createPeriodStatements],
  ['20261201120000_add-payer-amount-to-holds', addPayerAmountToHolds],
  ['20261201123000_add-cache-prices-to-models', addCachePricesToModels],
  ['20261201123100_add-token-kinds-to-usage-events', addTokenKindsToUsageEvents],
  ['20261202120000_create-model-aliases', createModelAliases],
  ['20261202120100_add-current-models', addCurrentModels],
  ['20261202130000_create-login-failures', createLoginFailures],
  ['20261202130000_create-stored-responses', createStoredResponses],
  ['20261202140000_add-key-controls', addKeyControls],
  ['20261203120000_create-password-resets', createPasswordResets],
  ['20261203120100_create-key-refusals', createKeyRefusals],
  ['20261204110000_add-spend-alerts', addSpendAlerts],
  ['20261204110100_add-balance-alerts', addBalanceAlerts],
  ['20261205100000_add-key-policy-to-teams', addKeyPolicyToTeams],
  ['20261205100100_create-installation-settings', createInstallationSettings],
  ['20261205110000_create-team-invites', createTeamInvites],
  ['20261205120000_create-events', createEvents],
  ['20261205120100_create-webhook-endpoints', createWebhookEndpoints],
  ['20261205120200_create-webhook-deliveries', createWebhookDeliveries],
  ['20261206100000_add-key-max-age-to-policies', addKeyMaxAgeToPolicies],
  ['20261206100100_add-auto-rotate-to-api-keys', addAutoRotateToApiKeys],
  ['20261207100000_add-row-versions', addRowVersions],
];

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => migrations.map(([name]) => name),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const found = migrations.find(([n]) => n === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found[1];
  },
};
