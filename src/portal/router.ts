import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import helmet from 'helmet';
import type { AppDeps } from '../app-deps.js';
import type { Portal } from './context.js';
import { loadSession, requireAdmin, requireUser, sameOriginOnly } from './guards.js';
import { createRender } from './render.js';
import { notFoundHandler, portalErrorHandler } from './errors.js';
import { authRoutes } from './auth.routes.js';
import { dashboardRoutes } from './dashboard.routes.js';
import { keysRoutes } from './keys.routes.js';
import { keyControlsRoutes } from './key-controls.routes.js';
import { teamsRoutes } from './teams.routes.js';
import { usageRoutes } from './usage.routes.js';
import { tokensRoutes } from './tokens.routes.js';
import { webhooksRoutes } from './webhooks.routes.js';
import { adminRoutes } from './admin.routes.js';
import { adminUsageRoutes } from './admin-usage.routes.js';
import { adminKeyPolicyRoutes } from './admin-key-policy.routes.js';
import { accountRoutes, passwordResetRoutes } from './account.routes.js';
import { inviteRoutes } from './invites.routes.js';

const PUBLIC_DIR = fileURLToPath(new URL('../../public', import.meta.url));
const HTMX_FILE = createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js');

/**
 * The browser portal: server-rendered pages (Eta), enhanced by htmx when JavaScript runs. Middleware order:
 * security headers → assets → CSRF origin check → form parsing → session → public pages → everything else
 * behind sign-in → the one error handler.
 */
export function createPortalRouter(deps: AppDeps): Router {
  const { services, config } = deps;
  const render = createRender(config, services.clock);
  const portal: Portal = {
    deps,
    render,
    reports: services.usageReports,
  };
  const secure = config.publicUrl?.startsWith('https:') ?? false;
  const router = Router();

  router.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          // No inline script or style anywhere: htmx is told not to inject its indicator <style> (see layout.eta),
          // charts are SVG attributes, page behaviour lives in /assets/app.js.
          'default-src': ["'self'"],
          'script-src': ["'self'"],
          'style-src': ["'self'"],
          'img-src': ["'self'", 'data:'],
          'connect-src': ["'self'"],
          'form-action': ["'self'"],
          'frame-ancestors': ["'none'"],
          'upgrade-insecure-requests': secure ? [] : null,
        },
      },
      strictTransportSecurity: secure,
      // Not helmet's no-referrer: under it browsers send "Origin: null" on form posts, and the CSRF check needs the
      // real origin. same-origin still never tells other sites which portal page linked to them.
      referrerPolicy: { policy: 'same-origin' },
    }),
  );
  router.get('/assets/htmx.min.js', (_req, res) => res.sendFile(HTMX_FILE, { maxAge: '1d' }));
  router.use('/assets', express.static(PUBLIC_DIR, { index: false, maxAge: '1h', fallthrough: true }));
  router.use(sameOriginOnly(deps));
  router.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 100 }));
  router.use(loadSession(deps));

  router.use(authRoutes(portal));
  router.use(passwordResetRoutes(portal));
  router.use(inviteRoutes(portal));
  router.use(requireUser);
  router.use(accountRoutes(portal));
  router.use(dashboardRoutes(portal));
  router.use(keysRoutes(portal));
  router.use(keyControlsRoutes(portal));
  router.use(teamsRoutes(portal));
  router.use(usageRoutes(portal));
  router.use(tokensRoutes(portal));
  router.use(webhooksRoutes(portal));
  router.use('/admin', requireAdmin, adminRoutes(portal), adminUsageRoutes(portal), adminKeyPolicyRoutes(portal));

  router.use(notFoundHandler);
  router.use(portalErrorHandler(render, deps.logger));
  return router;
}
