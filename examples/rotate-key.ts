/**
 * Rotating an API key with ModelBridge's typed client — the automation the management API exists for.
 *
 *   MODELBRIDGE_URL=http://127.0.0.1:3000 MODELBRIDGE_TOKEN=mbm_… npx tsx examples/rotate-key.ts
 *
 * It creates a key (as a stand-in for the one your deployment uses), rotates it with a grace period, lists your
 * keys, raises the successor's spending limit, and revokes the old key once "the deploy" has switched over.
 * Get a token with `npm run cli -- token:create --email you@example.com --name automation` or on the portal's
 * Tokens page. Only the new key's secret is printed, once, labelled; store it in your secret manager.
 */
import { TRPCClientError } from '@trpc/client';
import { createModelBridgeClient, type Key } from '../src/client.js';

const GRACE_PERIOD_SECONDS = 15 * 60;

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`Set ${name} (see the comment at the top of this file).`);
    process.exit(2);
  }
  return value;
}

const describe = (k: Key) =>
  `${k.name} (id ${k.id}, …${k.last4}) ${k.status}, spent A$${k.spendAud}${k.spendLimitAud === null ? '' : ` of A$${k.spendLimitAud}`}`;

async function main(): Promise<void> {
  const mb = createModelBridgeClient({ url: requireEnv('MODELBRIDGE_URL'), token: requireEnv('MODELBRIDGE_TOKEN') });

  const me = await mb.me.get.query();
  console.log(`Signed in as ${me.user.email} (plan ${me.plan.name}).`);

  // 1. The key a deployment currently uses. Its secret would go to the deployment; this example never prints it.
  const { key: current } = await mb.keys.create.mutate({ name: `example deploy key ${new Date().toISOString()}`, spendLimitAud: '10' });
  console.log(`Created:  ${describe(current)}`);

  // 2. Rotate: a successor with the same name, team, limit and expiry; the old key keeps working for the grace period.
  const rotated = await mb.keys.rotate.mutate({ id: current.id, gracePeriodSeconds: GRACE_PERIOD_SECONDS });
  console.log(`Rotated:  ${describe(rotated.key)}`);
  console.log(`          the old key keeps working for ${GRACE_PERIOD_SECONDS / 60} minutes: ${describe(rotated.previous)}`);
  console.log('');
  console.log(`NEW KEY SECRET (shown once, store it now): ${rotated.secret}`);
  console.log('');

  // 3. What the account holds now.
  const keys = await mb.keys.list.query();
  console.log(`Your keys (${keys.length}):`);
  for (const k of keys) console.log(`  - ${describe(k)}`);

  // 4. The new deployment needs more headroom.
  const raised = await mb.keys.update.mutate({ id: rotated.key.id, spendLimitAud: '25' });
  console.log(`Updated:  ${describe(raised)}`);

  // 5. The deploy has switched to the new key: retire the old one now rather than waiting out the grace period.
  const revoked = await mb.keys.revoke.mutate({ id: current.id });
  console.log(`Revoked:  ${describe(revoked)}`);
}

main().catch((err: unknown) => {
  // The client's errors carry the API's message and code; they never contain the token.
  if (err instanceof TRPCClientError) console.error(`ModelBridge refused: ${err.message} (${String(err.data?.code ?? 'no code')})`);
  else console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
