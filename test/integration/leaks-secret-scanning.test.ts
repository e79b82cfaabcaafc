import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/auth/secret-format.js';
import { ScanningKeySet } from '../../src/scanning/key-set.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };

/** A locally generated P-256 pair stands in for the scanning service's published keys. */
function p256() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const signBody = (body: string, key: KeyObject) => sign('sha256', Buffer.from(body), { key, dsaEncoding: 'der' }).toString('base64');

function writeKeySet(file: string, keys: Array<[string, KeyObject]>) {
  fs.writeFileSync(file, JSON.stringify({ public_keys: keys.map(([id, k], i) => ({ key_identifier: id, key: pem(k), is_current: i === 0 })) }));
}

describe(`secret scanning partner endpoint (${dialect})`, () => {
  const github = p256();
  const stranger = p256();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scanning-keys-'));
  const keySetFile = path.join(dir, 'keys.json');
  const KEY_ID = 'a0b1c2d3e4f5-github-current';
  let fake: FakeUpstream;
  let app: TestApp;
  let owner: TestUser;
  let teamOwner: TestUser;

  beforeAll(async () => {
    writeKeySet(keySetFile, [[KEY_ID, github.publicKey]]);
    fake = await startFakeUpstream();
    app = await startTestApp({
      env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', SECRET_SCANNING_KEYS_URL: pathToFileURL(keySetFile).toString() },
    });
    owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    teamOwner = await makeUser(app.services);
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function report(body: string, headers: Record<string, string>) {
    const r = await fetch(`${app.url}/secret-scanning/github`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const text = await r.text();
    return { status: r.status, text, json: JSON.parse(text) as any };
  }
  const signed = (body: string, key = github.privateKey, id = KEY_ID) => report(body, { 'github-public-key-identifier': id, 'github-public-key-signature': signBody(body, key) });
  const finding = (token: string, type = 'modelbridge_api_key') => ({ token, type, url: 'https://github.com/acme/app/blob/abc/.env', source: 'content' });
  const chatWith = (secret: string) => fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });

  it('revokes every live key and token reported, audits where it was found, and labels what is ours', async () => {
    const personal = await makeKey(app.services, owner, { name: 'leaky laptop' });
    const team = await makeTeam(app.services, teamOwner);
    const teamKey = await makeKey(app.services, teamOwner, { teamId: team.id });
    const token = await app.services.tokens.create({ name: 'ci' }, owner.actor);
    const lookalike = generateSecret('mbk_').slice(0, -2) + 'zz';
    const unknown = generateSecret('mbk_');
    expect((await chatWith(personal.secret)).status).toBe(200);

    const findings = [finding(personal.secret), finding(teamKey.secret), finding(token.secret, 'modelbridge_management_token'), finding(lookalike), finding(unknown), finding('ghp_notours')];
    const r = await signed(JSON.stringify(findings));
    expect(r.status).toBe(200);
    expect(r.json).toEqual([
      { token_raw: personal.secret, token_type: 'modelbridge_api_key', label: 'true_positive' },
      { token_raw: teamKey.secret, token_type: 'modelbridge_api_key', label: 'true_positive' },
      { token_raw: token.secret, token_type: 'modelbridge_management_token', label: 'true_positive' },
      { token_raw: lookalike, token_type: 'modelbridge_api_key', label: 'false_positive' },
      { token_raw: unknown, token_type: 'modelbridge_api_key', label: 'false_positive' },
      { token_raw: 'ghp_notours', token_type: 'modelbridge_api_key', label: 'false_positive' },
    ]);

    expect((await app.services.keys.get(personal.key.id, owner.actor)).status).toBe('revoked');
    expect((await app.services.keys.get(teamKey.key.id, teamOwner.actor)).status).toBe('revoked');
    expect(await app.services.tokens.authenticate(token.secret)).toBeNull();
    const next = await chatWith(personal.secret);
    expect(next.status).toBe(401);
    expect(((await next.json()) as any).error.code).toBe('key_revoked');

    const [audit] = (await app.services.audit.list(app.t.db, { targetType: 'key', targetId: personal.key.id })).filter((e) => e.action === 'key.revoke');
    expect(audit).toMatchObject({ actorId: null, actorKind: 'scanner', details: { leaked: true, reportedBy: 'github', url: 'https://github.com/acme/app/blob/abc/.env', source: 'content' } });
    // The secrets themselves are in no log line and no audit row.
    const rows = JSON.stringify(await app.t.db('audit_events'));
    for (const secret of [personal.secret, teamKey.secret, token.secret]) {
      expect(rows).not.toContain(secret);
      expect(app.logs.join('')).not.toContain(secret);
    }
  });

  it('is idempotent: the same report twice revokes once and answers the same', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    const body = JSON.stringify([finding(secret)]);
    const first = await signed(body);
    const second = await signed(body);
    expect(second.status).toBe(200);
    expect(second.json).toEqual(first.json);
    const revocations = (await app.services.audit.list(app.t.db, { targetType: 'key', targetId: key.id })).filter((e) => e.action === 'key.revoke');
    expect(revocations).toHaveLength(1);
  });

  it('changes nothing for an unsigned, forged, tampered or unknown-key report', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    const body = JSON.stringify([finding(secret)]);
    expect((await report(body, {})).status).toBe(400);
    expect((await report(body, { 'github-public-key-identifier': KEY_ID })).status).toBe(400);
    expect((await signed(body, stranger.privateKey)).status).toBe(401);
    expect((await signed(body, github.privateKey, 'no-such-key')).status).toBe(401);
    const tampered = await report(JSON.stringify([finding(secret, 'other')]), { 'github-public-key-identifier': KEY_ID, 'github-public-key-signature': signBody(body, github.privateKey) });
    expect(tampered.status).toBe(401);
    expect((await report(body, { 'github-public-key-identifier': KEY_ID, 'github-public-key-signature': 'not base64 at all!' })).status).toBe(401);
    expect((await app.services.keys.get(key.id, owner.actor)).status).toBe('active');
    expect((await chatWith(secret)).status).toBe(200);
  });

  it('refuses a signed body that is not a report with 400, changing nothing', async () => {
    for (const body of ['{"token":"x"}', 'not json', '[{"type":"x"}]', JSON.stringify([{ token: 'x'.repeat(2000), type: 't' }])]) {
      const r = await signed(body);
      expect(r.status).toBe(400);
      expect(r.json.message).toEqual(expect.any(String));
    }
  });
});

describe('the scanning key set', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scanning-keyset-'));
  const file = path.join(dir, 'keys.json');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is cached, refreshed for a rotated-in key, and an unknown identifier refreshes at most once a minute', async () => {
    const [old, rotated] = [p256(), p256()];
    writeKeySet(file, [['old', old.publicKey]]);
    let now = 1_000_000;
    const set = new ScanningKeySet(pathToFileURL(file).toString(), () => now);
    const body = Buffer.from('[]');
    const sig = (k: KeyObject) => sign('sha256', body, { key: k, dsaEncoding: 'der' }).toString('base64');
    expect(await set.verify('old', sig(old.privateKey), body)).toBe(true);
    expect(await set.verify('old', sig(old.privateKey), body)).toBe(true);
    expect(set.fetches).toBe(1);

    writeKeySet(file, [['new', rotated.publicKey], ['old', old.publicKey]]);
    // A flood of made-up identifiers right after a fetch causes no fetch at all.
    for (let i = 0; i < 20; i++) expect(await set.verify(`forged-${i}`, sig(rotated.privateKey), body)).toBe(false);
    expect(set.fetches).toBe(1);
    now += 61_000;
    expect(await set.verify('new', sig(rotated.privateKey), body)).toBe(true);
    expect(set.fetches).toBe(2);
    expect(await set.verify('new', sig(old.privateKey), body)).toBe(false);
  });

  it('skips keys that are not P-256 and reports an unreadable set as unavailable', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(file, JSON.stringify({ public_keys: [{ key_identifier: 'rsa', key: pem(rsa.publicKey) }, { key_identifier: 'junk', key: 'nope' }] }));
    const set = new ScanningKeySet(pathToFileURL(file).toString());
    const body = Buffer.from('[]');
    expect(await set.verify('rsa', sign('sha256', body, rsa.privateKey).toString('base64'), body)).toBe(false);
    await expect(new ScanningKeySet(pathToFileURL(path.join(dir, 'missing.json')).toString()).verify('x', 'y', body)).rejects.toThrow(/could not be read/);
  });
});
