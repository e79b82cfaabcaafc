import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AppDeps } from '../app-deps.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { MAX_REPORT_FINDINGS } from '../domain/keys/leaks.service.js';
import { KeySetUnavailable, ScanningKeySet } from './key-set.js';

const MAX_REPORT_BYTES = 1024 * 1024;

const reportSchema = z
  .array(
    z.object({
      token: z.string().min(1).max(1000),
      type: z.string().max(200).default(''),
      url: z.string().max(2000).nullish(),
      source: z.string().max(200).nullish(),
    }),
  )
  .max(MAX_REPORT_FINDINGS);

/**
 * POST /secret-scanning/github: the receiving side of GitHub's secret scanning partner program. GitHub posts the
 * `mbk_` keys and `mbm_` tokens it found in public code as `[{token, type, url, source}]`, signed with ECDSA P-256
 * over the raw body (`Github-Public-Key-Identifier` names the key of its published set, `Github-Public-Key-Signature`
 * is the base64 DER signature). Nothing is read from the body before the signature verifies, so an unsigned,
 * forged or unknown-key report changes nothing (400/401). The answer is GitHub's feedback format:
 * `[{token_raw, token_type, label: "true_positive" | "false_positive"}]`. Reported tokens are never logged.
 */
export function createSecretScanningRouter(deps: AppDeps, keySet = new ScanningKeySet(deps.config.secretScanningKeysUrl)): Router {
  const router = Router();
  router.post('/secret-scanning/github', express.raw({ type: () => true, limit: MAX_REPORT_BYTES }), async (req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    const identifier = req.get('github-public-key-identifier');
    const signature = req.get('github-public-key-signature');
    if (!identifier || !signature) return res.status(400).json({ message: 'Unsigned report: Github-Public-Key-Identifier and Github-Public-Key-Signature are required.' });
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    try {
      if (!(await keySet.verify(identifier, signature, body))) return res.status(401).json({ message: 'The report signature does not verify.' });
      const parsed = reportSchema.safeParse(parseJson(body));
      if (!parsed.success) return res.status(400).json({ message: 'The report is not a JSON array of {token, type, url, source}.' });
      const reports = parsed.data.map((r) => ({ token: r.token, type: r.type, url: r.url ?? null, source: r.source ?? null }));
      const findings = await deps.services.leaks.handleReport(reports, 'github', { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
      const revoked = findings.filter((f) => f.label === 'true_positive').length;
      deps.logger.info({ findings: findings.length, ours: revoked }, 'secret scanning report handled');
      res.json(findings.map((f) => ({ token_raw: f.token, token_type: f.type, label: f.label })));
    } catch (err) {
      // The scanner retries a report it got no answer to: a key set or database we cannot reach is a 503.
      if (err instanceof KeySetUnavailable || isDatabaseUnavailable(err)) {
        deps.logger.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'secret scanning report not handled');
        return res.status(503).json({ message: 'The report could not be handled right now; send it again later.' });
      }
      throw err;
    }
  });
  router.use('/secret-scanning', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = (err as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) return res.status(status).json({ message: 'The report could not be read.' });
    next(err);
  });
  return router;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
