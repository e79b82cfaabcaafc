import { badInput } from '../domain/errors.js';
import { thresholdsOf } from '../domain/billing/alerts.js';
import { text } from './forms.js';
import type { FormBody } from './context.js';

/**
 * Alert thresholds in the portal's forms: "50, 80, 100" (empty: the defaults, "none": no alerts). The domain
 * validates the numbers (validateAlertThresholds), as for tRPC.
 */
export function thresholdsFromForm(body: FormBody, name = 'alertThresholds'): number[] | null {
  const raw = text(body, name).trim();
  if (raw === '') return null;
  if (raw.toLowerCase() === 'none') return [];
  return raw.split(',').map((s) => s.trim().replace(/\s*%$/, '')).filter((s) => s.length > 0).map((s) => {
    if (!/^\d{1,3}$/.test(s)) throw badInput('Alert thresholds are whole percentages from 1 to 100, separated by commas.');
    return Number(s);
  });
}

/** The thresholds in effect, for people: "50 %, 80 %, 100 %" or "none". */
export function thresholdsText(stored: number[] | null): string {
  const list = thresholdsOf(stored);
  return list.length ? list.map((t) => `${t} %`).join(', ') : 'none';
}
