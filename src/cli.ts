import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, type Config } from './config.js';
import { createDb, migrateLatest } from './db/knex.js';
import type { Actor } from './domain/actor.js';
import { DomainError } from './domain/errors.js';
import { randomBase62 } from './domain/ids.js';
import { formatAud, parseAud } from './domain/money.js';
import { createServices, type Services } from './domain/services.js';
import { systemClock } from './domain/clock.js';
import { serveCluster } from './cluster.js';
import { ListenError, start } from './main.js';

/**
 * `npm run cli -- <command>`. Output contract (SPEC §7): user:create prints only the user id, token:create only
 * the token, so scripts can capture them; everything else goes to stderr.
 */
const USAGE = `Usage: npm run cli -- <command>
  serve                                   migrate, then serve HTTP (what npm start runs)
  migrate                                 apply database migrations
  user:create --email E --password P [--name N] [--admin] [--plan NAME]
  user:password --email E [--password P]  set a user's password and end their sessions (prints a generated
                                          password when --password is not given)
  token:create --email E --name N [--expires ISO]
  credit (--email E | --team NAME-OR-ID) --amount AUD [--note T]
  key:disable <key id>                    pause a key (incident response; reversible, audited)
  key:enable <key id>                     resume a paused key
  jobs:run <expire-keys|release-holds|reconcile|rollover|all>`;

const cliActor: Actor = { userId: 'cli', role: 'admin', via: 'cli' };

async function withServices<T>(config: Config, fn: (services: Services) => Promise<T>): Promise<T> {
  const db = createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  try {
    await migrateLatest(db);
    return await fn(createServices({ db, clock: systemClock, timeZone: config.timeZone }));
  } finally {
    await db.destroy();
  }
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (args[i]!.startsWith('--') && !args[i]!.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else out.push(args[i]!);
  }
  return out;
}

/** `--team` takes the name an operator sees in the portal, or the id; a name two teams share must be given as an id. */
async function teamIdByNameOrId(s: Services, nameOrId: string): Promise<string> {
  const teams = await s.teams.listAll(cliActor);
  const byId = teams.find((team) => team.id === nameOrId);
  if (byId) return byId.id;
  const byName = teams.filter((team) => team.name.toLowerCase() === nameOrId.trim().toLowerCase());
  if (byName.length === 1) return byName[0]!.id;
  if (byName.length > 1) fail(`${byName.length} teams are named "${nameOrId}": give one of their ids (${byName.map((t) => t.id).join(', ')})`);
  fail(`no team named or with id "${nameOrId}"`);
}

export async function runCli(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { values, positionals } = parseArgs({
    // `--amount -5` would read as a flag: join option values that start with '-' to their option.
    args: joinNegativeValues(rest),
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      password: { type: 'string' },
      name: { type: 'string' },
      admin: { type: 'boolean' },
      plan: { type: 'string' },
      expires: { type: 'string' },
      team: { type: 'string' },
      amount: { type: 'string' },
      note: { type: 'string' },
    },
  });
  const config = parseConfig();
  switch (command) {
    case 'serve': {
      if (config.workers > 1) return serveCluster(config);
      const running = await start(config);
      const stop = () => void running.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'migrate': {
      const db = createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
      await migrateLatest(db);
      await db.destroy();
      process.stderr.write('migrations applied\n');
      return;
    }
    case 'user:create': {
      if (!values.email || !values.password) fail('user:create needs --email and --password');
      const user = await withServices(config, (s) =>
        s.users.create({ email: values.email!, password: values.password!, name: values.name, role: values.admin ? 'admin' : 'user', planName: values.plan }, cliActor),
      );
      process.stdout.write(`${user.id}\n`);
      return;
    }
    case 'user:password': {
      if (!values.email) fail('user:password needs --email');
      const password = values.password ?? randomBase62(20);
      await withServices(config, (s) => s.users.setPassword(values.email!, password, cliActor));
      if (values.password) process.stderr.write('password set; the user\'s sessions have ended\n');
      else process.stdout.write(`${password}\n`);
      return;
    }
    case 'token:create': {
      if (!values.email || !values.name) fail('token:create needs --email and --name');
      const expiresAt = values.expires ? new Date(values.expires) : null;
      if (expiresAt && Number.isNaN(expiresAt.getTime())) fail('--expires must be an ISO-8601 date');
      const secret = await withServices(config, async (s) => {
        const user = await s.users.findByEmail(values.email!);
        if (!user) fail(`no user with e-mail ${values.email}`);
        return (await s.tokens.create({ name: values.name!, expiresAt, ownerId: user.id }, cliActor)).secret;
      });
      process.stdout.write(`${secret}\n`);
      return;
    }
    case 'credit': {
      const amount = values.amount ? parseAud(values.amount) : null;
      if (amount === null || amount <= 0) fail('credit needs --amount, a positive AUD amount such as 25 or 12.50');
      if (!values.email === !values.team) fail('credit needs exactly one of --email or --team');
      const balance = await withServices(config, async (s) => {
        let target: { userId: string } | { teamId: string };
        if (values.email) {
          const user = await s.users.findByEmail(values.email);
          if (!user) fail(`no user with e-mail ${values.email}`);
          target = { userId: user.id };
        } else target = { teamId: await teamIdByNameOrId(s, values.team!) };
        return s.balances.credit(target, amount, values.note ?? null, cliActor);
      });
      process.stderr.write(`credited; the ${values.email ? 'prepaid' : 'team'} balance is now ${formatAud(balance)}\n`);
      return;
    }
    case 'key:disable':
    case 'key:enable': {
      const id = positionals[0];
      if (!id) fail(`${command} needs a key id`);
      const key = await withServices(config, (s) => (command === 'key:disable' ? s.keys.disable(id, cliActor) : s.keys.enable(id, cliActor)));
      process.stderr.write(`key ${key.id} (${key.name}) is now ${key.status}\n`);
      return;
    }
    case 'jobs:run': {
      const { runJobsFromCli } = await import('./jobs/cli.js');
      await runJobsFromCli(config, positionals[0]);
      return;
    }
    default:
      fail(USAGE);
  }
}

runCli(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DomainError) fail(err.message);
  if (err instanceof ListenError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
