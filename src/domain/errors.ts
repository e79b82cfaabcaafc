/**
 * Typed domain errors. Services throw these; exactly two places translate them: the tRPC error middleware and the
 * Express error handlers (portal pages, proxy formats). Messages are safe to show: they never contain secrets.
 */
export type DomainErrorCode =
  | 'BAD_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'TOO_MANY_REQUESTS';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** For BAD_INPUT of a form of several fields: each field's own message (the message joins them). */
    readonly fields?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const badInput = (message: string, fields?: Record<string, string>) => new DomainError('BAD_INPUT', message, fields);

/** Runs each field's check, keeping every failure: one error naming all bad fields, not just the first. */
export function collectFieldErrors(checks: Record<string, () => unknown>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [field, check] of Object.entries(checks)) {
    try {
      check();
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== 'BAD_INPUT') throw err;
      fields[field] = err.message;
    }
  }
  return fields;
}

export function throwIfFieldErrors(fields: Record<string, string>): void {
  if (Object.keys(fields).length > 0) throw badInput(Object.values(fields).join(' '), fields);
}
export const unauthenticated = (message = 'Sign in first.') => new DomainError('UNAUTHENTICATED', message);
export const forbidden = (message = 'You are not allowed to do that.') => new DomainError('FORBIDDEN', message);
/** Also used where the caller may not see the thing: "not found" rather than "forbidden" hides its existence. */
/** No account has this e-mail address (adding a team member): a NOT_FOUND the portal shows at the e-mail field. */
export class UnknownEmailError extends DomainError {
  constructor(email: string) {
    super('NOT_FOUND', `No account uses ${email.trim().slice(0, 254)}. Check the address, or invite them by e-mail.`);
    this.name = 'UnknownEmailError';
  }
}

export const notFound = (what: string) => new DomainError('NOT_FOUND', `${what} not found.`);
export const conflict = (message: string) => new DomainError('CONFLICT', message);
export const tooManyRequests = (message: string) => new DomainError('TOO_MANY_REQUESTS', message);

export function isDuplicateKeyError(err: unknown): boolean {
  const e = err as { code?: string; errno?: number } | null;
  return !!e && (e.errno === 1062 || e.code === 'ER_DUP_ENTRY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY');
}
