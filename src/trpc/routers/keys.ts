import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { alertThresholds, aud, id, isoDate, keyStatus, limitReset, modelList, rateLimit, tags, text } from '../inputs.js';
import { keyDto, keyUsageDto } from '../presenters.js';

/** The controls of docs/limits.md, as keys.create and keys.update take them (null removes one). */
const controls = {
  limitReset: limitReset.nullable().optional(),
  allowedModels: modelList.nullable().optional(),
  rpmLimit: rateLimit.nullable().optional(),
  tpmLimit: rateLimit.nullable().optional(),
  maxParallel: rateLimit.nullable().optional(),
  tags: tags.optional(),
  alertThresholds: alertThresholds.nullable().optional(),
};
type ControlsInput = { [K in keyof typeof controls]?: z.output<(typeof controls)[K]> };
const controlsOf = (input: ControlsInput) => ({
  limitReset: input.limitReset, allowedModels: input.allowedModels, rpmLimit: input.rpmLimit, tpmLimit: input.tpmLimit,
  maxParallel: input.maxParallel, tags: input.tags, alertThresholds: input.alertThresholds,
});

export const keysRouter = router({
  /** Keys the caller may see; `all: true` lists every key of the installation (installation admins only). */
  list: authedProcedure
    .input(z.object({ teamId: id.optional(), status: keyStatus.optional(), all: z.boolean().optional() }).strict().optional())
    .query(async ({ ctx, input }) => (await ctx.deps.services.keys.list(input ?? {}, ctx.actor)).map(keyDto)),

  get: authedProcedure
    .input(z.object({ id }).strict())
    .query(async ({ ctx, input }) => keyDto(await ctx.deps.services.keys.get(input.id, ctx.actor))),

  /** Totals per day (installation time zone) and per model; default range: the last 30 days. */
  usage: authedProcedure
    .input(z.object({ id, from: isoDate.optional(), to: isoDate.optional() }).strict())
    .query(async ({ ctx, input }) => keyUsageDto(await ctx.deps.services.usage.keyUsage(input.id, input, ctx.actor))),

  /**
   * Requests with the key that were refused or failed: counts per local day, status and code over the last 30
   * days, and the latest refusals (time, status, code, model), newest first.
   */
  refusals: authedProcedure.input(z.object({ id }).strict()).query(async ({ ctx, input }) => {
    const { byDay, recent } = await ctx.deps.services.refusals.forKey(input.id, ctx.actor);
    return { byDay, recent: recent.map((r) => ({ ...r, at: r.at.toISOString() })) };
  }),

  /** The secret is in this response and nowhere else, ever. */
  create: authedProcedure
    .input(z.object({ name: text, spendLimitAud: aud.nullish(), expiresAt: isoDate.nullish(), teamId: id.nullish(), autoRotate: z.boolean().optional(), ...controls }).strict())
    .mutation(async ({ ctx, input }) => {
      const { key, secret } = await ctx.deps.services.keys.create(
        {
          name: input.name, spendLimitMicro: input.spendLimitAud ?? null, expiresAt: input.expiresAt ?? null, teamId: input.teamId ?? null,
          autoRotate: input.autoRotate, ...controlsOf(input),
        },
        ctx.actor,
      );
      return { key: keyDto(key), secret };
    }),

  /**
   * `spendLimitAud: null` removes the limit; omitting it leaves the limit as it is. `autoRotate: true` needs a webhook
   * endpoint of the key's owner subscribed to key.rotated_secret (the new secret goes there and nowhere else).
   */
  update: authedProcedure
    .input(z.object({ id, name: text.optional(), spendLimitAud: aud.nullable().optional(), autoRotate: z.boolean().optional(), ...controls }).strict())
    .mutation(async ({ ctx, input }) =>
      keyDto(await ctx.deps.services.keys.update(input.id, { name: input.name, spendLimitMicro: input.spendLimitAud, autoRotate: input.autoRotate, ...controlsOf(input) }, ctx.actor)),
    ),

  /** Pauses the key (401 key_disabled from the next request, every instance); enable resumes it. Audited. */
  disable: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => keyDto(await ctx.deps.services.keys.disable(input.id, ctx.actor))),

  enable: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => keyDto(await ctx.deps.services.keys.enable(input.id, ctx.actor))),

  revoke: authedProcedure
    .input(z.object({ id }).strict())
    .mutation(async ({ ctx, input }) => keyDto(await ctx.deps.services.keys.revoke(input.id, ctx.actor))),

  /** A successor with the same name, team, limit and expiry; the old key retires after the grace period (0 = now). */
  rotate: authedProcedure
    .input(z.object({ id, gracePeriodSeconds: z.number().int().min(0).optional() }).strict())
    .mutation(async ({ ctx, input }) => {
      const { key, secret, previous } = await ctx.deps.services.keys.rotate(input.id, input.gracePeriodSeconds ?? 0, ctx.actor);
      return { key: keyDto(key), secret, previous: keyDto(previous) };
    }),
});
