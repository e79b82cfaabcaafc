import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { ZodError } from 'zod';
import type { Logger } from '../logger.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { DomainError, type DomainErrorCode } from '../domain/errors.js';
import { echo } from '../http/echo.js';

/**
 * The one place domain errors become tRPC errors (the Express error handlers are the other door's place).
 * Domain messages are written to be shown; anything unexpected becomes a generic 500 and is logged instead.
 */
const CODE_FOR: Record<DomainErrorCode, TRPC_ERROR_CODE_KEY> = {
  BAD_INPUT: 'BAD_REQUEST',
  UNAUTHENTICATED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
};

export const INTERNAL_MESSAGE = 'Something went wrong on our side; it has been logged.';
export const UNAVAILABLE_MESSAGE = 'ModelBridge cannot reach its database right now; retry shortly.';
/** Retry-After of a 503 (see createTrpcHandler's responseMeta). */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** Translates whatever a procedure threw (tRPC has wrapped it in a TRPCError with the original as `cause`). */
export function toTrpcError(error: TRPCError): TRPCError {
  const cause = error.cause;
  if (cause instanceof DomainError) return new TRPCError({ code: CODE_FOR[cause.code], message: cause.message, cause });
  if (cause instanceof ZodError) return new TRPCError({ code: 'BAD_REQUEST', message: describeZodError(cause), cause });
  // tRPC 11's SERVICE_UNAVAILABLE is answered with HTTP 503.
  if (isDatabaseUnavailable(cause)) return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: UNAVAILABLE_MESSAGE, cause });
  return error;
}

/** "name: String must contain at most 1000 character(s)" — paths and rules only, never the submitted values. */
function describeZodError(error: ZodError): string {
  const first = error.issues.slice(0, 3).map((issue) => {
    // Zod's enum message quotes the received value; a mistaken paste of a secret must not come back in a response.
    const rule = issue.code === 'invalid_enum_value' ? `Expected one of ${issue.options.join(', ')}`
      // Zod lists every unknown key in full: a few, each capped, say enough.
      : issue.code === 'unrecognized_keys' ? `Unrecognized key(s) in object: ${unknownKeys(issue.keys)}`
      : issue.message.replace(/,? received '[\s\S]*'$/, '');
    return issue.path.length ? `${issue.path.join('.')}: ${rule}` : rule;
  });
  return `Invalid input. ${first.join('; ')}`;
}

const UNKNOWN_KEYS_SHOWN = 3;

function unknownKeys(keys: string[]): string {
  const shown = keys.slice(0, UNKNOWN_KEYS_SHOWN).map((k) => `'${echo(k, 40)}'`).join(', ');
  return keys.length > UNKNOWN_KEYS_SHOWN ? `${shown} and ${keys.length - UNKNOWN_KEYS_SHOWN} more` : shown;
}

/**
 * Logs errors nobody planned for. Only the error's type, code and message go to the log: request inputs and
 * headers never do, and database errors carry only hashes of secrets (the secrets themselves are never stored).
 */
export function logUnexpected(logger: Logger, error: TRPCError, path: string | undefined): void {
  if (error.code !== 'INTERNAL_SERVER_ERROR' && error.code !== 'SERVICE_UNAVAILABLE') return;
  const cause = (error.cause ?? error) as Error & { code?: unknown; errno?: unknown };
  if (error.code === 'SERVICE_UNAVAILABLE') return logger.warn({ path, error: { type: cause.name, code: cause.code } }, 'tRPC call refused: database unavailable');
  logger.error({ path, error: { type: cause.name, code: cause.code, errno: cause.errno, message: String(cause.message).slice(0, 500) } }, 'tRPC procedure failed');
}
