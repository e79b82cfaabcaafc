import type { Actor } from '../../src/domain/actor.js';
import type { User } from '../../src/domain/accounts/users.service.js';
import type { Services } from '../../src/domain/services.js';
import { randomBase62 } from '../../src/domain/ids.js';
import type { TeamRole } from '../../src/domain/teams/roles.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestUser {
  user: User;
  actor: Actor;
  email: string;
  password: string;
}

export const adminActor: Actor = { userId: 'test-admin', role: 'admin', via: 'cli' };

export function actorOf(user: User): Actor {
  return { userId: user.id, role: user.role, via: 'session', ip: '127.0.0.1', userAgent: 'vitest' };
}

/** A user, optionally on a plan and with a prepaid top-up (AUD micro). */
export async function makeUser(
  services: Services,
  options: { admin?: boolean; plan?: 'Free' | 'Pro'; prepaidMicro?: number; email?: string } = {},
): Promise<TestUser> {
  const email = options.email ?? `user-${randomBase62(8).toLowerCase()}@example.test`;
  const user = await services.users.create(
    { email, password: TEST_PASSWORD, name: email.split('@')[0], role: options.admin ? 'admin' : 'user', planName: options.plan },
    adminActor,
  );
  if (options.prepaidMicro) await services.balances.credit({ userId: user.id }, options.prepaidMicro, 'test top-up', adminActor);
  return { user, actor: actorOf(user), email, password: TEST_PASSWORD };
}

/** A team owned by `owner`, with members in the given roles and an optional balance. */
export async function makeTeam(
  services: Services,
  owner: TestUser,
  options: { members?: Array<[TestUser, TeamRole]>; balanceMicro?: number; name?: string } = {},
) {
  const team = await services.teams.create(options.name ?? `Team ${randomBase62(4)}`, owner.actor);
  for (const [member, role] of options.members ?? []) await services.teams.addMember(team.id, member.email, role, owner.actor);
  if (options.balanceMicro) await services.balances.credit({ teamId: team.id }, options.balanceMicro, 'test top-up', adminActor);
  return team;
}

export async function makeKey(
  services: Services,
  owner: TestUser,
  options: { name?: string; spendLimitMicro?: number | null; expiresAt?: Date | null; teamId?: string } = {},
) {
  return services.keys.create({ name: options.name ?? 'test key', spendLimitMicro: options.spendLimitMicro ?? null, expiresAt: options.expiresAt ?? null, teamId: options.teamId }, owner.actor);
}
