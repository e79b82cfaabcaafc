/** Who is acting, and from where: every door builds one and passes it to the domain, which audits with it. */
export interface Actor {
  userId: string;
  /** Installation role: admins operate the installation (users, plans, prices, incident response). */
  role: 'admin' | 'user';
  /** How the actor authenticated: a browser session, a management token, the CLI, or a scheduled job. */
  via: 'session' | 'token' | 'cli' | 'system';
  ip?: string | null;
  userAgent?: string | null;
}

export const systemActor: Actor = { userId: 'system', role: 'admin', via: 'system' };

export function isInstallationAdmin(actor: Actor): boolean {
  return actor.role === 'admin';
}
