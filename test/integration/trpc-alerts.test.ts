import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

/** The alert settings of docs/limits.md over tRPC: per key, per team, per user; bad lists are a 400 that says why. */
describe(`alert thresholds over tRPC (${dialect})`, () => {
  let app: TestApp;
  let alice: TestUser;
  let mb: ModelBridgeClient;

  beforeAll(async () => {
    app = await startTestApp();
    alice = await makeUser(app.services);
    mb = await clientFor(app, alice);
  });
  afterAll(async () => app.close());

  it('sets a key’s thresholds at creation and update, defaults to none set (50, 80, 100), refuses bad ones', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'alerting', spendLimitAud: '10', alertThresholds: [90, 60, 90] });
    expect(key.alertThresholds).toEqual([60, 90]);
    expect((await mb.keys.update.mutate({ id: key.id, alertThresholds: null })).alertThresholds).toBeNull();
    expect((await mb.keys.update.mutate({ id: key.id, alertThresholds: [] })).alertThresholds).toEqual([]);
    const err = await expectTrpcError(mb.keys.update.mutate({ id: key.id, alertThresholds: [101] }), 'BAD_REQUEST');
    expect(err.message).toContain('1 to 100');
  });

  it('sets a team’s thresholds (owners and admins) and a user’s own', async () => {
    const team = await makeTeam(app.services, alice);
    expect((await mb.teams.setControls.mutate({ teamId: team.id, alertThresholds: [75] })).alertThresholds).toEqual([75]);
    expect((await mb.teams.controls.query({ teamId: team.id })).alertThresholds).toEqual([75]);
    expect(await mb.me.setAlertThresholds.mutate({ alertThresholds: [40] })).toEqual({ alertThresholds: [40] });
    expect((await mb.me.get.query()).balance.alertThresholds).toEqual([40]);
    await expectTrpcError(mb.me.setAlertThresholds.mutate({ alertThresholds: [1, 2, 3, 4, 5, 6] }), 'BAD_REQUEST');
  });
});
