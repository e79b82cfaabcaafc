import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { alertThresholds, aud, id, keyPolicyInput, modelList, rateLimit, teamRole, text } from '../inputs.js';
import { publicBase } from '../../http/public-base.js';
import { inviteDto, memberBudgetDto, memberDto, teamControlsDto, teamDto, violatingKeyDto } from '../presenters.js';

export const teamsRouter = router({
  create: authedProcedure
    .input(z.object({ name: text }).strict())
    .mutation(async ({ ctx, input }) => teamDto(await ctx.deps.services.teams.create(input.name, ctx.actor))),

  /** Teams the caller belongs to, with the caller's role in each. */
  list: authedProcedure.query(async ({ ctx }) => (await ctx.deps.services.teams.list(ctx.actor)).map(teamDto)),

  get: authedProcedure.input(z.object({ id }).strict()).query(async ({ ctx, input }) => {
    const team = await ctx.deps.services.teams.get(input.id, ctx.actor);
    return { ...teamDto(team), members: team.members.map(memberDto) };
  }),

  /** The team's key controls and every member's monthly budget (any member may read them). */
  controls: authedProcedure.input(z.object({ teamId: id }).strict()).query(async ({ ctx, input }) => {
    const c = await ctx.deps.services.teamControls.get(input.teamId, ctx.actor);
    return { ...teamControlsDto(c), members: c.members.map(memberBudgetDto) };
  }),

  /**
   * Owners and admins: the allow-list the team's keys cannot widen, rate-limit defaults, and the alert thresholds on
   * member budgets (null removes one; null thresholds: the defaults).
   */
  setControls: authedProcedure
    .input(z.object({
      teamId: id, allowedModels: modelList.nullable().optional(), defaultRpmLimit: rateLimit.nullable().optional(),
      defaultTpmLimit: rateLimit.nullable().optional(), defaultMaxParallel: rateLimit.nullable().optional(),
      alertThresholds: alertThresholds.nullable().optional(),
    }).strict())
    .mutation(async ({ ctx, input }) => {
      const { teamId, ...changes } = input;
      return teamControlsDto(await ctx.deps.services.teamControls.setControls(teamId, changes, ctx.actor));
    }),

  /** Owners and admins: a member's monthly budget on what their team keys spend (null removes it). */
  setMemberBudget: authedProcedure
    .input(z.object({ teamId: id, userId: id, budgetAud: aud.nullable() }).strict())
    .mutation(async ({ ctx, input }) =>
      memberBudgetDto(await ctx.deps.services.teamControls.setMemberBudget(input.teamId, input.userId, input.budgetAud, ctx.actor))),

  /** The team's guard-rails on new keys and the team keys that break the policy now in force (listed, not broken). */
  keyPolicy: authedProcedure.input(z.object({ teamId: id }).strict()).query(async ({ ctx, input }) => {
    const { keyPolicy } = ctx.deps.services;
    const policy = await keyPolicy.team(input.teamId, ctx.actor);
    const violating = await keyPolicy.violatingKeys({ teamId: input.teamId }, ctx.actor);
    return { policy, violatingKeys: violating.map(violatingKeyDto) };
  }),

  /** Owners and admins: every new team key needs a limit / an expiry within N days / a name unique per owner. */
  setKeyPolicy: authedProcedure
    .input(z.object({ teamId: id, ...keyPolicyInput }).strict())
    .mutation(async ({ ctx, input }) => {
      const { teamId, ...changes } = input;
      return ctx.deps.services.keyPolicy.setTeam(teamId, changes, ctx.actor);
    }),

  addMember: authedProcedure
    .input(z.object({ teamId: id, email: text, role: teamRole }).strict())
    .mutation(async ({ ctx, input }) => memberDto(await ctx.deps.services.teams.addMember(input.teamId, input.email, input.role, ctx.actor))),

  /**
   * Owners and admins invite an e-mail address in a role. The link (its secret) is in this answer only, once: only
   * its SHA-256 is stored. It works once, for 7 days, for whoever signs in as (or signs up with) that address.
   */
  invite: authedProcedure
    .input(z.object({ teamId: id, email: text, role: teamRole }).strict())
    .mutation(async ({ ctx, input }) => {
      const { invite, token } = await ctx.deps.services.invites.create(input.teamId, input.email, input.role, ctx.actor);
      return { ...inviteDto(invite), url: `${publicBase(ctx.req, ctx.deps.config.publicUrl)}/invite/${token}` };
    }),

  /** Pending invitations of a team (owners and admins). */
  invites: authedProcedure.input(z.object({ teamId: id }).strict()).query(async ({ ctx, input }) =>
    (await ctx.deps.services.invites.listPending(input.teamId, ctx.actor)).map(inviteDto)),

  revokeInvite: authedProcedure
    .input(z.object({ teamId: id, inviteId: id }).strict())
    .mutation(async ({ ctx, input }) => {
      await ctx.deps.services.invites.revoke(input.teamId, input.inviteId, ctx.actor);
      return { teamId: input.teamId, inviteId: input.inviteId, revoked: true as const };
    }),

  setRole: authedProcedure
    .input(z.object({ teamId: id, userId: id, role: teamRole }).strict())
    .mutation(async ({ ctx, input }) => memberDto(await ctx.deps.services.teams.setRole(input.teamId, input.userId, input.role, ctx.actor))),

  /** Also how a member leaves (their own userId). Their team keys are revoked. */
  removeMember: authedProcedure
    .input(z.object({ teamId: id, userId: id }).strict())
    .mutation(async ({ ctx, input }) => {
      await ctx.deps.services.teams.removeMember(input.teamId, input.userId, ctx.actor);
      return { teamId: input.teamId, userId: input.userId, removed: true as const };
    }),
});
