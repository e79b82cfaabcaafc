import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';
import { startReceiver } from '../support/webhook-receiver.js';

/** webhooks.* over tRPC (docs/webhooks.md): create shows the secret once, and only the endpoint's managers reach it. */
describe(`webhooks over tRPC (${dialect})`, () => {
  let app: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let mb: ModelBridgeClient;
  let asBob: ModelBridgeClient;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    app = await startTestApp({ env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    receiver = await startReceiver();
    alice = await makeUser(app.services);
    bob = await makeUser(app.services);
    mb = await clientFor(app, alice);
    asBob = await clientFor(app, bob);
  });
  afterAll(async () => {
    await receiver?.close();
    await app?.close();
  });

  it('creates, lists, tests, shows deliveries and deletes an endpoint; the secret appears once', async () => {
    const { webhook, secret } = await mb.webhooks.create.mutate({ url: receiver.url, events: ['key.revoked', 'key.expiring'] });
    receiver.state.secret = secret;
    expect(webhook).toMatchObject({ url: receiver.url, events: ['key.revoked', 'key.expiring'], teamId: null });
    const listed = await mb.webhooks.list.query();
    expect(listed.map((w) => w.id)).toEqual([webhook.id]);
    expect(JSON.stringify(listed)).not.toContain(secret);
    const { eventId } = await mb.webhooks.test.mutate({ id: webhook.id });
    await app.services.webhookDelivery.deliverDue();
    expect(receiver.accepted().map((r) => [r.id, r.signatureOk])).toEqual([[eventId, true]]);
    expect(await mb.webhooks.deliveries.query({ id: webhook.id })).toMatchObject([{ eventId, eventType: 'webhook.test', status: 'delivered', attempts: 1, lastStatusCode: 200 }]);
    expect(app.logs.join('')).not.toContain(secret);
    await mb.webhooks.delete.mutate({ id: webhook.id });
    expect(await mb.webhooks.list.query()).toEqual([]);
  });

  it('hides another user’s endpoint and refuses a team’s to members who do not manage it', async () => {
    const { webhook } = await mb.webhooks.create.mutate({ url: receiver.url, events: ['key.revoked'] });
    await expectTrpcError(asBob.webhooks.deliveries.query({ id: webhook.id }), 'NOT_FOUND');
    await expectTrpcError(asBob.webhooks.delete.mutate({ id: webhook.id }), 'NOT_FOUND');
    await expectTrpcError(asBob.webhooks.test.mutate({ id: webhook.id }), 'NOT_FOUND');
    const team = await makeTeam(app.services, alice, { members: [[bob, 'member']] });
    await expectTrpcError(asBob.webhooks.create.mutate({ url: receiver.url, events: ['team.balance_threshold'], teamId: team.id }), 'NOT_FOUND');
    await expectTrpcError(asBob.webhooks.list.query({ teamId: team.id }), 'NOT_FOUND');
    const teamHook = await mb.webhooks.create.mutate({ url: receiver.url, events: ['team.balance_threshold'], teamId: team.id });
    await expectTrpcError(asBob.webhooks.deliveries.query({ id: teamHook.webhook.id }), 'NOT_FOUND');
    expect((await mb.webhooks.list.query({ teamId: team.id })).map((w) => w.id)).toEqual([teamHook.webhook.id]);
  });

  it('refuses bad input with a 400 that says why', async () => {
    const err = await expectTrpcError(mb.webhooks.create.mutate({ url: 'ftp://example.com/', events: ['key.revoked'] }), 'BAD_REQUEST');
    expect(err.message).toContain('https://');
    // @ts-expect-error an unknown event type
    await expectTrpcError(mb.webhooks.create.mutate({ url: receiver.url, events: ['key.nope'] }), 'BAD_REQUEST');
    await expectTrpcError(mb.webhooks.create.mutate({ url: receiver.url, events: [] }), 'BAD_REQUEST');
  });
});
