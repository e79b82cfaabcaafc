import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';
import { clientFor } from '../support/trpc.js';

/** Issue #15 point 3, API side: a rotated key in its grace period says when it retires and what replaced it. */
describe(`keys.list / keys.get: retiring keys (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let ivy: TestUser;

  beforeAll(async () => {
    clock = new ManualClock('2026-12-02T00:00:00.000Z');
    app = await startTestApp({ clock });
    ivy = await makeUser(app.services);
  });
  afterAll(() => app.close());

  it('reports retiresAt and successorId while the grace period runs, and a revoked key once it ends', async () => {
    const mb = await clientFor(app, ivy);
    const { key: old } = await makeKey(app.services, ivy, { name: 'deploy' });
    const { key: successor } = await mb.keys.rotate.mutate({ id: old.id, gracePeriodSeconds: 3600 });

    const listed = (await mb.keys.list.query()).find((k) => k.id === old.id)!;
    expect(listed).toMatchObject({ status: 'active', successorId: successor.id, retiresAt: '2026-12-02T01:00:00.000Z', expiresAt: null });
    expect(await mb.keys.get.query({ id: old.id })).toMatchObject({ successorId: successor.id, retiresAt: '2026-12-02T01:00:00.000Z' });
    expect(await mb.keys.get.query({ id: successor.id })).toMatchObject({ successorId: null, retiresAt: null });

    clock.set('2026-12-02T01:00:01.000Z');
    expect(await mb.keys.get.query({ id: old.id })).toMatchObject({ status: 'revoked', successorId: successor.id, retiresAt: null, revokedAt: '2026-12-02T01:00:00.000Z' });
  });
});
