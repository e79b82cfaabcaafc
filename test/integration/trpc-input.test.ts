import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser, type TestUser } from '../support/factories.js';
import { allProcedures, bearer, clientFor, expectTrpcError, rawCall, tokenFor } from '../support/trpc.js';

const BAD_NAMES = ['', '   ', '\t\n', 'x'.repeat(101), ' '.repeat(50) + 'y'.repeat(101)];
const BAD_AMOUNTS = ['-1', '-0.5', 'abc', '1.1234567', '1e3', '', ' ', '0x10', '1,5', '12345678901', 'NaN', 'Infinity'];
const BAD_DATES = ['tomorrow', '2026-13-01T00:00:00Z', '2026-12-01', '2026-12-01T00:00:00', '1700000000', ''];
const UNKNOWN = 'NoSuchThing000000000';

describe(`malformed input over tRPC is answered 4xx, never 5xx (${dialect})`, () => {
  let app: TestApp;
  let alice: TestUser;
  let mb: ModelBridgeClient;
  let adminMb: ModelBridgeClient;
  let adminToken: string;
  let keyId: string;

  beforeAll(async () => {
    app = await startTestApp();
    alice = await makeUser(app.services);
    mb = await clientFor(app, alice);
    const admin = await makeUser(app.services, { admin: true });
    adminToken = await tokenFor(app, admin);
    adminMb = await clientFor(app, admin);
    keyId = (await mb.keys.create.mutate({ name: 'target', spendLimitAud: '5' })).key.id;
  });
  afterAll(async () => app.close());

  it('refuses empty, blank and 101-character names for keys, teams and tokens; accepts 100 trimmed', async () => {
    for (const name of BAD_NAMES) {
      await expectTrpcError(mb.keys.create.mutate({ name }), 'BAD_REQUEST');
      await expectTrpcError(mb.keys.update.mutate({ id: keyId, name }), 'BAD_REQUEST');
      await expectTrpcError(mb.teams.create.mutate({ name }), 'BAD_REQUEST');
      await expectTrpcError(mb.tokens.create.mutate({ name }), 'BAD_REQUEST');
    }
    const long = 'n'.repeat(100);
    expect((await mb.keys.create.mutate({ name: `  ${long}  ` })).key.name).toBe(long);
    expect((await mb.teams.create.mutate({ name: long })).name).toBe(long);
    expect((await mb.keys.get.query({ id: keyId })).name).toBe('target');
  });

  it('refuses negative, non-numeric, over-precise and huge AUD amounts; keeps six decimals exactly', async () => {
    for (const spendLimitAud of BAD_AMOUNTS) {
      await expectTrpcError(mb.keys.create.mutate({ name: 'limit', spendLimitAud }), 'BAD_REQUEST');
      await expectTrpcError(mb.keys.update.mutate({ id: keyId, spendLimitAud }), 'BAD_REQUEST');
    }
    const raw = await rawCall(app, 'mutation', 'keys.create', { name: 'number', spendLimitAud: 5 }, bearer(await tokenFor(app, alice)));
    expect(raw.status).toBe(400);
    expect((await mb.keys.get.query({ id: keyId })).spendLimitAud).toBe('5');
    expect((await mb.keys.create.mutate({ name: 'tiny', spendLimitAud: '0.000001' })).key.spendLimitAud).toBe('0.000001');
    expect((await mb.keys.create.mutate({ name: 'big', spendLimitAud: '1000000000' })).key.spendLimitAud).toBe('1000000000');
    await expectTrpcError(mb.keys.create.mutate({ name: 'too big', spendLimitAud: '1000000000.000001' }), 'BAD_REQUEST');
    expect((await mb.keys.create.mutate({ name: 'trailing', spendLimitAud: '12.500000' })).key.spendLimitAud).toBe('12.5');
  });

  it('refuses malformed and past expiry dates for keys and tokens', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    for (const expiresAt of [...BAD_DATES, past]) {
      await expectTrpcError(mb.keys.create.mutate({ name: 'expiring', expiresAt }), 'BAD_REQUEST');
      await expectTrpcError(mb.tokens.create.mutate({ name: 'expiring', expiresAt }), 'BAD_REQUEST');
    }
    const future = new Date(Date.now() + 86_400_000);
    const offset = future.toISOString().replace('Z', '+00:00');
    expect((await mb.keys.create.mutate({ name: 'offset', expiresAt: offset })).key.expiresAt).toBe(future.toISOString());
  });

  it('answers unknown ids with NOT_FOUND', async () => {
    await expectTrpcError(mb.keys.get.query({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.update.mutate({ id: UNKNOWN, name: 'x' }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.revoke.mutate({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.rotate.mutate({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.usage.query({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.list.query({ teamId: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.create.mutate({ name: 'x', teamId: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.usage.list.query({ keyId: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.teams.get.query({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(mb.teams.addMember.mutate({ teamId: UNKNOWN, email: alice.email, role: 'member' }), 'NOT_FOUND');
    await expectTrpcError(mb.tokens.revoke.mutate({ id: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.users.setPlan.mutate({ userId: UNKNOWN, planId: 'plan_pro' }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.users.setPlan.mutate({ userId: alice.user.id, planId: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.users.disable.mutate({ userId: UNKNOWN }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.credit.mutate({ userId: UNKNOWN, amountAud: '5' }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.credit.mutate({ teamId: UNKNOWN, amountAud: '5' }), 'NOT_FOUND');
    await expectTrpcError(adminMb.admin.plans.update.mutate({ id: UNKNOWN, name: 'x' }), 'NOT_FOUND');
  });

  it('refuses unknown fields, wrong types, bad enums, reversed ranges and foreign cursors with BAD_REQUEST', async () => {
    const token = await tokenFor(app, alice);
    const cases: Array<[string, 'query' | 'mutation', unknown]> = [
      ['keys.create', 'mutation', { name: 'x', owner: 'someone-else' }],
      ['keys.create', 'mutation', { name: 42 }],
      ['keys.get', 'query', { id: 42 }],
      ['keys.get', 'query', { id: '' }],
      ['keys.get', 'query', { id: 'x'.repeat(65) }],
      ['keys.list', 'query', { status: 'paused' }],
      ['keys.list', 'query', { all: 'yes' }],
      ['keys.rotate', 'mutation', { id: keyId, gracePeriodSeconds: '60' }],
      ['keys.usage', 'query', { id: keyId, from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' }],
      ['keys.usage', 'query', { id: keyId, from: '2020-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }],
      ['teams.addMember', 'mutation', { teamId: 'x', email: 'a@b.c', role: 'superuser' }],
      ['usage.list', 'query', { cursor: "1 OR 1=1" }],
      ['usage.list', 'query', { limit: 0 }],
      ['keys.create', 'mutation', null],
      ['keys.create', 'mutation', []],
      ['keys.create', 'mutation', 'a string'],
    ];
    for (const [path, type, input] of cases) {
      const res = await rawCall(app, type, path, input, bearer(token));
      expect(res.status, `${path} ${JSON.stringify(input)}`).toBe(400);
      expect(res.body.error.data.code).toBe('BAD_REQUEST');
    }
  });

  it('names the offending field without echoing the submitted value', async () => {
    const canary = 'value-that-must-not-echo';
    const res = await rawCall(app, 'query', 'keys.list', { status: canary }, bearer(await tokenFor(app, alice)));
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('status');
    expect(res.text).not.toContain(canary);
  });

  it('never answers 5xx to garbage sent to any procedure, even as an installation admin', async () => {
    const garbage: unknown[] = [undefined, null, 0, -1, 'x', [], [1, 2], {}, { id: {} }, { id: null }, { id: UNKNOWN }, { id: keyId, name: 'y'.repeat(2000) },
      { teamId: UNKNOWN, userId: UNKNOWN, email: 'not-an-email', role: 'owner' }, { userId: UNKNOWN, teamId: UNKNOWN, amountAud: '1' },
      { amountAud: '-1', userId: alice.user.id }, { from: 'x', to: 'y' }, { cursor: '9'.repeat(40) }, { name: 'p', includedAud: '1', overageAllowed: 'no', overageCapAud: null },
      { id: '../../etc/passwd', provider: 'openai', upstreamModel: 'x', inputAudPerMTok: '1', outputAudPerMTok: '1' }, { __proto__: { admin: true } }, { constructor: { prototype: {} } }];
    for (const { path, type } of await allProcedures()) {
      for (const input of garbage) {
        const res = await rawCall(app, type, path, input, bearer(adminToken));
        expect(res.status, `${path} ${JSON.stringify(input)}`).toBeLessThan(500);
      }
    }
  });
});
