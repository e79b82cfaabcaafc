import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DatabaseUnavailable } from '../../src/db/errors.js';
import { DomainError, type DomainErrorCode } from '../../src/domain/errors.js';
import { toTrpcError } from '../../src/trpc/errors.js';

/** The one mapping from domain errors to the API (STYLE: typed domain errors, mapped in exactly one place). */
describe('domain errors → tRPC codes and HTTP statuses', () => {
  const expected: Record<DomainErrorCode, [string, number]> = {
    BAD_INPUT: ['BAD_REQUEST', 400],
    UNAUTHENTICATED: ['UNAUTHORIZED', 401],
    FORBIDDEN: ['FORBIDDEN', 403],
    NOT_FOUND: ['NOT_FOUND', 404],
    CONFLICT: ['CONFLICT', 409],
    TOO_MANY_REQUESTS: ['TOO_MANY_REQUESTS', 429],
  };

  it.each(Object.entries(expected))('maps %s with its message', (code, [trpcCode, status]) => {
    const mapped = toTrpcError(new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause: new DomainError(code as DomainErrorCode, 'Shown to the caller.') }));
    expect(mapped.code).toBe(trpcCode);
    expect(getHTTPStatusCodeFromError(mapped)).toBe(status);
    expect(mapped.message).toBe('Shown to the caller.');
  });

  it('maps validation failures to 400 naming the field, not the value', () => {
    const zodError = z.object({ role: z.enum(['owner', 'viewer']) }).safeParse({ role: 'mbk_secret_value' }).error!;
    const mapped = toTrpcError(new TRPCError({ code: 'BAD_REQUEST', cause: zodError }));
    expect(mapped.code).toBe('BAD_REQUEST');
    expect(mapped.message).toBe('Invalid input. role: Expected one of owner, viewer');
  });

  it('maps a database that does not answer to SERVICE_UNAVAILABLE, HTTP 503', () => {
    const timedOut = Object.assign(new Error('Query inactivity timeout'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' });
    for (const cause of [new DatabaseUnavailable(timedOut), timedOut]) {
      const mapped = toTrpcError(new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause }));
      expect(mapped.code).toBe('SERVICE_UNAVAILABLE');
      expect(getHTTPStatusCodeFromError(mapped)).toBe(503);
      expect(mapped.message).not.toContain('inactivity');
    }
  });

  it('leaves anything else alone (the formatter hides internal messages)', () => {
    const internal = new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause: new Error('connect ECONNREFUSED') });
    expect(toTrpcError(internal)).toBe(internal);
  });
});
