import type { UsersService, User } from './users.service.js';
import { conflict } from '../errors.js';

let pending: Promise<unknown> = Promise.resolve();

/**
 * The one-time set-up: creates the first installation admin, and only while no user exists. Calls are serialised
 * in this process so two quick submissions cannot both pass the "no user yet" check; across instances the window
 * is the length of one insert during an operator's first minute, which is accepted (the CLI is the alternative).
 */
export function createFirstAdmin(users: UsersService, input: { email: string; password: string; name?: string }): Promise<User> {
  const run = pending.then(async () => {
    if ((await users.count()) > 0) throw conflict('This installation is already set up. Sign in instead.');
    return users.create({ ...input, role: 'admin' }, null);
  });
  pending = run.catch(() => undefined);
  return run;
}

export async function needsFirstRun(users: UsersService): Promise<boolean> {
  return (await users.count()) === 0;
}
