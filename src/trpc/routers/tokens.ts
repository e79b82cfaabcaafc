import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { id, isoDate, text } from '../inputs.js';
import { tokenDto } from '../presenters.js';

export const tokensRouter = router({
  /** A management token acting as the caller; the secret is in this response only. */
  create: authedProcedure
    .input(z.object({ name: text, expiresAt: isoDate.nullish() }).strict())
    .mutation(async ({ ctx, input }) => {
      const { token, secret } = await ctx.deps.services.tokens.create({ name: input.name, expiresAt: input.expiresAt ?? null }, ctx.actor);
      return { token: tokenDto(token), secret };
    }),

  list: authedProcedure.query(async ({ ctx }) => (await ctx.deps.services.tokens.list(ctx.actor)).map(tokenDto)),

  revoke: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => tokenDto(await ctx.deps.services.tokens.revoke(input.id, ctx.actor))),
});
