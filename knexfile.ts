import { parseConfig } from './src/config.js';
import { migrationSource } from './migrations/index.js';

// For the knex CLI; the app itself migrates through `npm run cli -- migrate` (and on `npm start`).
const config = parseConfig();

export default config.databaseUrl
  ? { client: 'mysql2', connection: config.databaseUrl, migrations: { migrationSource } }
  : { client: 'better-sqlite3', connection: { filename: config.sqlitePath }, useNullAsDefault: true, migrations: { migrationSource } };
