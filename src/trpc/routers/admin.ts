import { z } from 'zod';
import { adminProcedure, router } from '../init.js';
import { aud, id, isoDate, keyPolicyInput, provider, text } from '../inputs.js';
import { microToAud } from '../../domain/money.js';
import { auditDto, installationSummaryDto, modelDto, planDto, userDto, violatingKeyDto } from '../presenters.js';

const planFields = {
  name: text,
  includedAud: aud,
  overageAllowed: z.boolean(),
  /** null = unlimited overage (when allowed). */
  overageCapAud: aud.nullable(),
  isDefault: z.boolean().optional(),
};

const usersRouter = router({
  list: adminProcedure.query(async ({ ctx }) => (await ctx.deps.services.users.list()).map(userDto)),

  setPlan: adminProcedure
    .input(z.object({ userId: id, planId: id }).strict())
    .mutation(async ({ ctx, input }) => userDto(await ctx.deps.services.users.setPlan(input.userId, input.planId, ctx.actor))),

  /**
   * A one-time password reset link for a user, shown once: valid for 24 hours, for one use, voiding earlier
   * links. The portal path is returned with the installation's public URL when it has one.
   */
  resetLink: adminProcedure.input(z.object({ userId: id }).strict()).mutation(async ({ ctx, input }) => {
    const { token, expiresAt } = await ctx.deps.services.users.issuePasswordReset(input.userId, ctx.actor);
    const path = `/reset/${token}`;
    return { url: ctx.deps.config.publicUrl ? new URL(path, ctx.deps.config.publicUrl).toString() : path, expiresAt: expiresAt.toISOString() };
  }),

  /** Disabling ends the user's sessions and stops their tokens; `disabled: false` re-enables. */
  disable: adminProcedure
    .input(z.object({ userId: id, disabled: z.boolean().default(true) }).strict())
    .mutation(async ({ ctx, input }) => userDto(await ctx.deps.services.users.setDisabled(input.userId, input.disabled, ctx.actor))),
});

/** An optional nullable input: as given (null included), else the current value, else null. */
const givenOr = <T>(given: T | null | undefined, current: T | null | undefined): T | null => (given !== undefined ? given : (current ?? null));

const modelsRouter = router({
  upsert: adminProcedure
    .input(
      z
        .object({
          id: z.string().max(200),
          provider,
          upstreamModel: text,
          inputAudPerMTok: aud,
          outputAudPerMTok: aud,
          /** Cache prices: null = billed at the input price; omitted = keep the model's current one (new models: null). */
          cachedInputAudPerMTok: aud.nullable().optional(),
          cacheWriteAudPerMTok: aud.nullable().optional(),
          cacheWrite1hAudPerMTok: aud.nullable().optional(),
          maxOutputTokens: z.number().int().optional(),
          enabled: z.boolean().default(true),
          /** Other names the model answers to; replaces its aliases. Omitted: they stay as they are. */
          aliases: z.array(z.string().max(200)).max(100).optional(),
        })
        .strict(),
    )
    .mutation(async ({ ctx, input }) => {
      const { models } = ctx.deps.services;
      const existing = await models.find(input.id);
      const saved = await models.upsert(
        {
          id: input.id,
          provider: input.provider,
          upstreamModel: input.upstreamModel,
          inputMicroPerMTok: input.inputAudPerMTok,
          outputMicroPerMTok: input.outputAudPerMTok,
          cachedInputMicroPerMTok: givenOr(input.cachedInputAudPerMTok, existing?.cachedInputMicroPerMTok),
          cacheWriteMicroPerMTok: givenOr(input.cacheWriteAudPerMTok, existing?.cacheWriteMicroPerMTok),
          cacheWrite1hMicroPerMTok: givenOr(input.cacheWrite1hAudPerMTok, existing?.cacheWrite1hMicroPerMTok),
          // Omitted: keep the model's current output cap (new models start at 4096 tokens).
          maxOutputTokens: input.maxOutputTokens ?? existing?.maxOutputTokens ?? 4096,
          enabled: input.enabled,
          aliases: input.aliases,
        },
        ctx.actor,
      );
      return { ...modelDto(saved), maxOutputTokens: saved.maxOutputTokens };
    }),
});

const plansRouter = router({
  list: adminProcedure.query(async ({ ctx }) => (await ctx.deps.services.plans.list()).map(planDto)),

  create: adminProcedure.input(z.object(planFields).strict()).mutation(async ({ ctx, input }) =>
    planDto(
      await ctx.deps.services.plans.create(
        { name: input.name, includedMicro: input.includedAud, overageAllowed: input.overageAllowed, overageCapMicro: input.overageCapAud, isDefault: input.isDefault },
        ctx.actor,
      ),
    ),
  ),

  /** Only the fields given change; `overageCapAud: null` makes overage unlimited. */
  update: adminProcedure
    .input(z.object({ id, ...planFields }).partial().required({ id: true }).strict())
    .mutation(async ({ ctx, input }) =>
      planDto(
        await ctx.deps.services.plans.update(
          input.id,
          { name: input.name, includedMicro: input.includedAud, overageAllowed: input.overageAllowed, overageCapMicro: input.overageCapAud, isDefault: input.isDefault },
          ctx.actor,
        ),
      ),
    ),
});

const auditRouter = router({
  /** Newest first. Pass the last id back as `cursor` for older events. */
  list: adminProcedure
    .input(z.object({ targetType: z.string().max(20).optional(), targetId: id.optional(), cursor: z.string().regex(/^\d{1,19}$/).optional(), limit: z.number().int().min(1).max(500).optional() }).strict().optional())
    .query(async ({ ctx, input }) => {
      const { db, audit } = ctx.deps.services;
      const limit = input?.limit ?? 100;
      const events = await audit.list(db, { targetType: input?.targetType, targetId: input?.targetId, beforeId: input?.cursor, limit });
      return { items: events.map(auditDto), nextCursor: events.length === limit ? events[events.length - 1]!.id : null };
    }),
});

const keyPolicyRouter = router({
  /** The installation's guard-rails on every new key, and the keys of the installation that break the policy in force. */
  get: adminProcedure.query(async ({ ctx }) => {
    const { keyPolicy } = ctx.deps.services;
    return { policy: await keyPolicy.installation(), violatingKeys: (await keyPolicy.violatingKeys({ all: true }, ctx.actor)).map(violatingKeyDto) };
  }),
  set: adminProcedure.input(z.object(keyPolicyInput).strict()).mutation(async ({ ctx, input }) => ctx.deps.services.keyPolicy.setInstallation(input, ctx.actor)),
});

const usageRouter = router({
  /**
   * The whole installation's usage in [from, to) (at most 366 days): totals, spend over time, and by model,
   * provider, team and user. Day boundaries of the chart are the installation's time zone.
   */
  summary: adminProcedure
    .input(z.object({ from: isoDate, to: isoDate }).strict())
    .query(async ({ ctx, input }) =>
      installationSummaryDto(await ctx.deps.services.usageReports.installationSummary(input, ctx.actor, ctx.deps.config.timeZone))),
});

export const adminRouter = router({
  keyPolicy: keyPolicyRouter,
  users: usersRouter,
  models: modelsRouter,
  plans: plansRouter,
  audit: auditRouter,
  usage: usageRouter,
  /** Records a top-up (payments happen outside ModelBridge) on a user's prepaid balance or a team's balance. */
  credit: adminProcedure
    .input(
      z
        .object({ userId: id.optional(), teamId: id.optional(), amountAud: aud, note: z.string().max(255).optional() })
        .strict()
        .refine((v) => !v.userId !== !v.teamId, 'Give exactly one of userId or teamId.'),
    )
    .mutation(async ({ ctx, input }) => {
      const target = input.userId ? { userId: input.userId } : { teamId: input.teamId! };
      const balance = await ctx.deps.services.balances.credit(target, input.amountAud, input.note ?? null, ctx.actor);
      return { ...target, balanceAud: microToAud(balance) };
    }),
});
