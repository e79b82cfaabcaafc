import { Lucia, TimeSpan, type Adapter, type DatabaseSession, type DatabaseUser } from 'lucia';
import type { Db } from '../db/knex.js';
import { toDate } from '../db/rows.js';
import { hashSecret } from './secret-format.js';

/**
 * Browser sessions. lucia 3 is in maintenance, so it stays behind this one module: the rest of the app sees
 * SessionManager only. The adapter stores SHA-256(session id), never the cookie value itself, so a leaked
 * sessions table cannot be replayed.
 */
export const SESSION_COOKIE = 'mb_session';

interface SessionAttributes {
  ip: string | null;
  userAgent: string | null;
}

declare module 'lucia' {
  interface Register {
    Lucia: Lucia<SessionAttributes, Record<string, never>>;
    DatabaseSessionAttributes: SessionAttributes;
    DatabaseUserAttributes: Record<string, never>;
  }
}

function knexAdapter(db: Db): Adapter {
  const toSession = (r: Record<string, unknown>, id: string): DatabaseSession => ({
    id,
    userId: r.user_id as string,
    expiresAt: toDate(r.expires_at),
    attributes: { ip: (r.ip as string | null) ?? null, userAgent: (r.user_agent as string | null) ?? null },
  });
  return {
    async getSessionAndUser(sessionId) {
      const row = await db('sessions as s')
        .join('users as u', 'u.id', 's.user_id')
        .where('s.id', hashSecret(sessionId))
        .first('s.*', 'u.disabled');
      // A disabled user's sessions are deleted when they are disabled; refusing here too closes any race.
      if (!row || row.disabled === 1 || row.disabled === true) return [null, null];
      const user: DatabaseUser = { id: row.user_id as string, attributes: {} };
      return [toSession(row, sessionId), user];
    },
    async getUserSessions(userId) {
      const rows = await db('sessions').where({ user_id: userId });
      return rows.map((r: Record<string, unknown>) => toSession(r, r.id as string));
    },
    async setSession(session) {
      await db('sessions').insert({
        id: hashSecret(session.id),
        user_id: session.userId,
        expires_at: session.expiresAt,
        ip: session.attributes.ip?.slice(0, 64) ?? null,
        user_agent: session.attributes.userAgent?.slice(0, 255) ?? null,
        created_at: new Date(),
      });
    },
    async updateSessionExpiration(sessionId, expiresAt) {
      await db('sessions').where({ id: hashSecret(sessionId) }).update({ expires_at: expiresAt });
    },
    async deleteSession(sessionId) {
      await db('sessions').where({ id: hashSecret(sessionId) }).delete();
    },
    async deleteUserSessions(userId) {
      await db('sessions').where({ user_id: userId }).delete();
    },
    async deleteExpiredSessions() {
      await db('sessions').where('expires_at', '<=', new Date()).delete();
    },
  };
}

export interface SessionCookie {
  name: string;
  value: string;
  attributes: { secure?: boolean; path?: string; domain?: string; sameSite?: 'lax' | 'strict' | 'none'; httpOnly?: boolean; maxAge?: number; expires?: Date };
  serialize(): string;
}

export interface SessionManager {
  /** Starts a fresh session (a new random id: logging in always rotates the session). */
  create(userId: string, meta: { ip?: string | null; userAgent?: string | null }): Promise<SessionCookie>;
  /** The user of a session cookie, plus a refreshed cookie when lucia extended the session. */
  validate(sessionId: string): Promise<{ userId: string; sessionId: string; refreshed: SessionCookie | null } | null>;
  invalidate(sessionId: string): Promise<void>;
  invalidateUser(userId: string): Promise<void>;
  blankCookie(): SessionCookie;
  readCookie(cookieHeader: string | undefined): string | null;
}

export function createSessionManager(db: Db, options: { secure: boolean }): SessionManager {
  const lucia = new Lucia(knexAdapter(db), {
    sessionExpiresIn: new TimeSpan(14, 'd'),
    sessionCookie: {
      name: SESSION_COOKIE,
      expires: true,
      // HttpOnly + SameSite=Lax; Secure when the installation is served over HTTPS.
      attributes: { secure: options.secure, sameSite: 'lax' },
    },
  });
  return {
    async create(userId, meta) {
      const session = await lucia.createSession(userId, { ip: meta.ip ?? null, userAgent: meta.userAgent ?? null });
      return lucia.createSessionCookie(session.id);
    },
    async validate(sessionId) {
      const { session, user } = await lucia.validateSession(sessionId);
      if (!session || !user) return null;
      return { userId: user.id, sessionId: session.id, refreshed: session.fresh ? lucia.createSessionCookie(session.id) : null };
    },
    invalidate: (sessionId) => lucia.invalidateSession(sessionId),
    invalidateUser: (userId) => lucia.invalidateUserSessions(userId),
    blankCookie: () => lucia.createBlankSessionCookie(),
    readCookie: (header) => (header ? lucia.readSessionCookie(header) : null),
  };
}
