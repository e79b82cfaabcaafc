import { authedProcedure, router } from '../init.js';
import { modelDto } from '../presenters.js';

export const modelsRouter = router({
  list: authedProcedure.query(async ({ ctx }) => (await ctx.deps.services.models.list()).map(modelDto)),
});
