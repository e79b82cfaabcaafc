import knexFactory from 'knex';
import cron from 'node-cron';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { listJobStatus } from '../../src/domain/jobs/job-locks.js';
import type { Job } from '../../src/jobs/job.js';
import { JobRunner } from '../../src/jobs/runner.js';
import { startScheduler } from '../../src/jobs/scheduler.js';
import { start, wire } from '../../src/main.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { admit, metricValue, spend } from '../support/jobs.js';

describe(`ops endpoints (${dialect})`, () => {
  let app: TestApp;
  beforeAll(async () => {
    // Scrapers on this machine are let in; the rest need a token (/metrics is opt-in: docs/operations.md).
    app = await startTestApp({ env: { METRICS_ALLOW: 'loopback' } });
  });
  afterAll(async () => app.close());

  it('GET /healthz answers ok when the database does, without auth', async () => {
    const res = await request(app.url).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', database: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('GET /healthz answers 503 when the database is unreachable', async () => {
    const config = parseConfig({ LOG_LEVEL: 'silent', MODELBRIDGE_JOBS: '0' });
    // Nothing listens on port 1; knex's own console logging of the refused connection is silenced.
    const quiet = { warn() {}, error() {}, debug() {}, deprecate() {} };
    const db = Object.assign(knexFactory({ client: 'mysql2', connection: { host: '127.0.0.1', port: 1, user: 'nobody' }, log: quiet }), { meteringPool: null });
    try {
      const res = await request(createApp(wire(config, { db }))).get('/healthz');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ status: 'unavailable', database: 'unreachable' });
    } finally {
      await db.destroy();
    }
  });

  it('GET /metrics serves Prometheus text to an allowed scraper, with holds outstanding counted at scrape time', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    const { key } = await makeKey(app.services, owner);
    await admit(app.services, key.id, 1000);
    await admit(app.services, key.id, 1000);
    const outstanding = Number((await app.t.db('holds').count({ n: '*' }).first())?.n);

    const res = await request(app.url).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain(`modelbridge_holds_outstanding ${outstanding}`);
    expect(outstanding).toBeGreaterThanOrEqual(2);
    for (const name of ['modelbridge_proxy_requests_total', 'modelbridge_metering_duration_seconds', 'modelbridge_job_runs_total', 'modelbridge_reconciliation_drift_total', 'process_cpu_seconds_total'])
      expect(res.text).toContain(`# HELP ${name}`);
    // This instance's settlements: none pending, none retried yet.
    expect(res.text).toContain('modelbridge_settlements_pending 0');
    expect(res.text).toContain(`modelbridge_settlement_retries ${app.services.metering.settlements.retried}`);
  });

  it('refuses /metrics to the public internet (through a local reverse proxy) unless an admin management token comes along', async () => {
    const publicClient = { 'X-Forwarded-For': '203.0.113.9' };
    expect((await request(app.url).get('/metrics').set(publicClient)).status).toBe(401);

    const admin = await makeUser(app.services, { admin: true });
    const user = await makeUser(app.services);
    const adminToken = (await app.services.tokens.create({ name: 'prometheus' }, admin.actor)).secret;
    const userToken = (await app.services.tokens.create({ name: 'mine' }, user.actor)).secret;
    expect((await request(app.url).get('/metrics').set(publicClient).set('Authorization', `Bearer ${userToken}`)).status).toBe(403);
    expect((await request(app.url).get('/metrics').set(publicClient).set('Authorization', 'Bearer mbm_not-a-token')).status).toBe(403);
    const ok = await request(app.url).get('/metrics').set(publicClient).set('Authorization', `Bearer ${adminToken}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('modelbridge_holds_outstanding');
    // Being on a private network is not enough: behind a load balancer that is everyone on it.
    expect((await request(app.url).get('/metrics').set('X-Forwarded-For', '10.1.2.3')).status).toBe(401);
  });

  it('never exposes a key, user, team or e-mail in /metrics', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    const team = await makeTeam(app.services, owner, { balanceMicro: 10_000_000 });
    const personal = await makeKey(app.services, owner);
    const teamKey = await makeKey(app.services, owner, { teamId: team.id });
    await spend(app.services, personal.key.id, 1234);
    await spend(app.services, teamKey.key.id, 1234);
    app.deps.metrics.proxyRequests.inc({ endpoint: '/v1/chat/completions', outcome: 'ok' });
    const res = await request(app.url).get('/metrics');
    for (const secretish of [personal.key.id, teamKey.key.id, personal.secret, personal.key.last4, owner.user.id, team.id, owner.email])
      expect(res.text).not.toContain(secretish);
  });

  it('a failing job is logged, counted and recorded, and the server carries on', async () => {
    const { services, logger, metrics } = app.deps;
    const explode: Job = {
      name: 'explode',
      schedule: '* * * * * *', // every second
      leaseMs: 60_000,
      async run() {
        throw new Error('boom: the job broke');
      },
    };
    const scheduler = startScheduler([explode], new JobRunner({ db: services.db, clock: services.clock, logger, metrics }), logger);
    try {
      const deadline = Date.now() + 5000;
      while ((await metricValue(metrics, 'modelbridge_job_runs_total', { job: 'explode', result: 'failed' })) < 1 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await scheduler.stop();
    }
    expect(await metricValue(metrics, 'modelbridge_job_runs_total', { job: 'explode', result: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(app.logs.some((l) => l.includes('"job":"explode"') && l.includes('boom: the job broke') && l.includes('job failed'))).toBe(true);
    const status = (await listJobStatus(services.db, services.clock.now())).find((s) => s.name === 'explode');
    expect(status).toMatchObject({ running: false, lastOk: false, lastResult: 'failed: boom: the job broke' });
    expect((await request(app.url).get('/healthz')).status).toBe(200);
    const scrape = await request(app.url).get('/metrics');
    expect(scrape.text).toContain('modelbridge_job_last_run_failed{job="explode"} 1');
  });

  it('start() schedules the jobs when MODELBRIDGE_JOBS=1 and stop() ends them; MODELBRIDGE_JOBS=0 schedules none', async () => {
    const env = { PORT: '0', LOG_LEVEL: 'silent', ...(app.t.url ? { DATABASE_URL: app.t.url } : { SQLITE_PATH: app.t.sqlitePath! }) };
    const ours = () => [...cron.getTasks().values()].filter((task) => task.name?.startsWith('modelbridge:')).map((task) => task.name).sort();

    const on = await start(parseConfig({ ...env, MODELBRIDGE_JOBS: '1' }));
    expect(ours()).toEqual(['modelbridge:deliver-webhooks', 'modelbridge:expire-keys', 'modelbridge:reconcile', 'modelbridge:release-holds', 'modelbridge:rollover', 'modelbridge:rotate-keys']);
    expect((await request(on.url).get('/healthz')).status).toBe(200);
    await on.stop();
    expect(ours()).toEqual([]);

    const off = await start(parseConfig({ ...env, MODELBRIDGE_JOBS: '0' }));
    expect(ours()).toEqual([]);
    await off.stop();
  });
});
