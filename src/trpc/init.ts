import { initTRPC, TRPCError } from '@trpc/server';
import { echo, MESSAGE_MAX } from '../http/echo.js';
import { actorFor } from '../http/request-auth.js';
import type { TrpcContext } from './context.js';
import { INTERNAL_MESSAGE, toTrpcError } from './errors.js';

/** The one initTRPC. Plain JSON, no transformer: curl and any language can call the API (SPEC §7). */
const t = initTRPC.context<TrpcContext>().create({
  // Never send stack traces, whatever NODE_ENV says.
  isDev: false,
  errorFormatter({ shape, error }) {
    const internal = error.code === 'INTERNAL_SERVER_ERROR';
    // Messages and the path are capped: an unknown path of thousands of characters is not reflected whole (tRPC's
    // own "No procedure found on path …" quotes it).
    const message = internal ? INTERNAL_MESSAGE : echo(shape.message, MESSAGE_MAX);
    const path = shape.data.path === undefined ? undefined : echo(shape.data.path);
    return { ...shape, message, data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path } };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Maps errors (outermost, so it sees everything below), refuses unusable credentials, and writes a debug line. */
const base = t.procedure.use(async ({ ctx, path, type, next }) => {
  const started = performance.now();
  const result = await (async () => {
    if (ctx.credentialProblem) throw new TRPCError({ code: 'UNAUTHORIZED', message: ctx.credentialProblem });
    // CSRF: a browser sends the cookie on cross-site posts too; only our own pages may change state with it.
    if (type === 'mutation' && ctx.via === 'session' && !ctx.sameOrigin)
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Cross-origin request refused: state changes with a session cookie must come from this site.' });
    return next();
  })().catch((err: unknown) => ({ ok: false as const, error: err instanceof TRPCError ? err : new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause: err }) }));
  const ms = Math.round((performance.now() - started) * 10) / 10;
  ctx.deps.logger.debug({ path, type, userId: ctx.user?.id ?? null, via: ctx.via, ok: result.ok, code: result.ok ? undefined : result.error.code, ms }, 'tRPC call');
  if (!result.ok) throw toTrpcError(result.error);
  return result;
});

export const publicProcedure = base;

export const authedProcedure = base.use(({ ctx, next }) => {
  if (!ctx.user || !ctx.via) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in, or send `Authorization: Bearer mbm_…`.' });
  return next({ ctx: { user: ctx.user, via: ctx.via, actor: actorFor(ctx.user, ctx.via, ctx.req) } });
});

export const adminProcedure = authedProcedure.use(({ ctx, next }) => {
  if (ctx.user.role !== 'admin') throw new TRPCError({ code: 'FORBIDDEN', message: 'Only installation admins may do that.' });
  return next();
});
