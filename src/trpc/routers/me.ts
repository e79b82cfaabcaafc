import { authedProcedure, router } from '../init.js';
import { balanceDto, planDto, teamDto, userDto } from '../presenters.js';

export const meRouter = router({
  /** Who am I: the user, their plan, this period's personal balance and their teams with roles. */
  get: authedProcedure.query(async ({ ctx }) => {
    const { services } = ctx.deps;
    const [balance, teams] = await Promise.all([services.balances.personal(ctx.user.id), services.teams.list(ctx.actor)]);
    return { user: userDto(ctx.user), plan: planDto(balance.plan), balance: balanceDto(balance), teams: teams.map(teamDto) };
  }),
});
