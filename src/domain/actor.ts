/** Who is acting, and from where: every door builds one and passes it to the domain, which audits with it. */
export interface Actor {
  userId: string;
  /** Installation role: admins operate the installation (users, plans, prices, incident response). */
  role: 'admin' | 'user';
  /**
   * How the actor authenticated: a browser session, a management token, the CLI, a scheduled job — or, for the one
   * thing they may do (revoke what they hold), an API key presented as its own credential (`key`) and a secret
   * scanning service's signed report (`scanner`). Those two act for no user: the audit row names no actor.
   */
  via: 'session' | 'token' | 'cli' | 'system' | 'key' | 'scanner';
  ip?: string | null;
  userAgent?: string | null;
}

export const systemActor: Actor = { userId: 'system', role: 'admin', via: 'system' };

export function isInstallationAdmin(actor: Actor): boolean {
  return actor.role === 'admin';
}
