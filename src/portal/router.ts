import { Router } from 'express';
import type { AppDeps } from '../app-deps.js';

// Placeholder until this door is built.
export function createPortalRouter(_deps: AppDeps): Router {
  return Router();
}
