import { z } from 'zod';
import { authedProcedure, router } from '../init.js';
import { id, teamRole, text } from '../inputs.js';
import { memberDto, teamDto } from '../presenters.js';

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

  addMember: authedProcedure
    .input(z.object({ teamId: id, email: text, role: teamRole }).strict())
    .mutation(async ({ ctx, input }) => memberDto(await ctx.deps.services.teams.addMember(input.teamId, input.email, input.role, ctx.actor))),

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
