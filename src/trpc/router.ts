import { router } from './init.js';
import { adminRouter } from './routers/admin.js';
import { keysRouter } from './routers/keys.js';
import { meRouter } from './routers/me.js';
import { modelsRouter } from './routers/models.js';
import { teamsRouter } from './routers/teams.js';
import { tokensRouter } from './routers/tokens.js';
import { usageRouter } from './routers/usage.js';
import { webhooksRouter } from './routers/webhooks.js';

/** The whole API (SPEC §7). Its type is what the shipped client (src/client.ts) is typed against. */
export const appRouter = router({
  me: meRouter,
  keys: keysRouter,
  teams: teamsRouter,
  usage: usageRouter,
  tokens: tokensRouter,
  models: modelsRouter,
  webhooks: webhooksRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
