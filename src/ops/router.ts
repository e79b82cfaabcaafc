import { timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import type { AppDeps } from '../app-deps.js';
import { bearerToken } from '../http/request-auth.js';
import { AddressList } from '../http/address-list.js';
import { refreshScrapeGauges } from './scrape-gauges.js';

/** How long /healthz waits for the database before answering 503: a load balancer must get an answer quickly. */
const HEALTH_DB_TIMEOUT_MS = 2000;

/**
 * Operations endpoints, no portal or API auth:
 * - GET /healthz — 200 when the process is up and the database answers `select 1`, 503 otherwise. Public: it says
 *   nothing but "up" or "down", and load balancers cannot log in.
 * - GET /metrics — Prometheus text. Every series is an aggregate (labels are endpoints, outcomes, phases, job names,
 *   drift kinds: never a key, user or team), yet volumes and balances-in-flight are still business data, so it
 *   answers only the scrapers the operator opted in (see metricsAccess).
 */
export function createOpsRouter(deps: AppDeps): Router {
  const router = Router();

  router.get('/healthz', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      await withTimeout(deps.services.db.raw('select 1').then(() => undefined), HEALTH_DB_TIMEOUT_MS);
      res.json({ status: 'ok', database: 'ok' });
    } catch (err) {
      deps.logger.warn({ err }, 'health check: database unreachable');
      res.status(503).json({ status: 'unavailable', database: 'unreachable' });
    }
  });

  router.get('/metrics', metricsAccess(deps), async (_req, res) => {
    try {
      await refreshScrapeGauges(deps);
    } catch (err) {
      // Serve what we have: a scrape with stale gauges beats no scrape while the database is down.
      deps.logger.warn({ err }, 'metrics: refreshing database gauges failed');
    }
    res.set('Cache-Control', 'no-store');
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  return router;
}

/**
 * Who may scrape — opt-in, nobody by default (docs/operations.md): a client address in METRICS_ALLOW (req.ip, so
 * the forwarded client when a proxy trusted by TRUST_PROXY sits in front), a bearer METRICS_TOKEN, or a bearer
 * management token of an installation admin. Being on the same private network is not enough: behind a load
 * balancer that is everyone on that network.
 */
function metricsAccess(deps: AppDeps): RequestHandler {
  const allowed = new AddressList(deps.config.metrics.allow);
  const scrapeToken = deps.config.metrics.token ? Buffer.from(deps.config.metrics.token) : null;
  return async (req, res, next) => {
    if (allowed.has(req.ip ?? req.socket.remoteAddress ?? '')) return next();
    const token = bearerToken(req);
    if (token && scrapeToken && sameSecret(Buffer.from(token), scrapeToken)) return next();
    const user = token?.startsWith('mbm_') ? await deps.services.tokens.authenticate(token).catch(() => null) : null;
    if (user?.role === 'admin') return next();
    res.status(token ? 403 : 401).set('Cache-Control', 'no-store').type('text/plain')
      .send('Metrics need METRICS_ALLOW to list this address, METRICS_TOKEN, or an admin management token.\n');
  };
}

function sameSecret(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
