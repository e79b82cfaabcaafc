import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { id, isoDate } from '../inputs.js';
import { usageEventDto } from '../presenters.js';
import { USAGE_PAGE_MAX } from '../../domain/usage/usage.service.js';

export const usageRouter = router({
  /** Usage events, newest first, of the keys the caller may see. Pass `nextCursor` back as `cursor` for more. */
  list: authedProcedure
    .input(
      z
        .object({
          keyId: id.optional(),
          teamId: id.optional(),
          tag: z.string().min(1).max(32).optional(),
          all: z.boolean().optional(),
          from: isoDate.optional(),
          to: isoDate.optional(),
          cursor: z.string().max(40).optional(),
          limit: z.number().int().min(1).max(USAGE_PAGE_MAX).optional(),
        })
        .strict()
        .optional(),
    )
    .query(async ({ ctx, input }) => {
      const { events, nextCursor } = await ctx.deps.services.usage.list(input ?? {}, ctx.actor);
      return { items: events.map(usageEventDto), nextCursor };
    }),
});
