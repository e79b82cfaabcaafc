import { z } from 'zod';
import { EVENT_TYPES } from '../../domain/events/event-types.js';
import { authedProcedure, router } from '../init.js';
import { id } from '../inputs.js';
import { webhookDeliveryDto, webhookDto } from '../presenters.js';

/** Webhook endpoints (docs/webhooks.md): the caller's own, or a team's for its owners and admins. */
export const webhooksRouter = router({
  /** The signing secret is in this response only. */
  create: authedProcedure
    .input(z.object({ url: z.string().max(2000), events: z.array(z.enum(EVENT_TYPES)).min(1).max(EVENT_TYPES.length), teamId: id.nullish() }).strict())
    .mutation(async ({ ctx, input }) => {
      const { endpoint, secret } = await ctx.deps.services.webhooks.create({ url: input.url, events: input.events, teamId: input.teamId ?? null }, ctx.actor);
      return { webhook: webhookDto(endpoint), secret };
    }),

  list: authedProcedure
    .input(z.object({ teamId: id.nullish() }).strict().optional())
    .query(async ({ ctx, input }) => (await ctx.deps.services.webhooks.list({ teamId: input?.teamId ?? null }, ctx.actor)).map(webhookDto)),

  delete: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => {
      await ctx.deps.services.webhooks.delete(input.id, ctx.actor);
      return { id: input.id, deleted: true };
    }),

  /** Queues a `webhook.test` event for this endpoint; returns its id (the webhook-id the receiver will see). */
  test: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => ({ eventId: await ctx.deps.services.webhooks.test(input.id, ctx.actor) })),

  deliveries: authedProcedure
    .input(z.object({ id }).strict())
    .query(async ({ ctx, input }) => (await ctx.deps.services.webhooks.deliveries(input.id, ctx.actor)).map(webhookDeliveryDto)),
});
