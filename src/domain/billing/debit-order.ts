import type { Micro } from '../money.js';

export interface PersonalBuckets {
  includedMicro: Micro;
  includedUsedMicro: Micro;
  prepaidMicro: Micro;
  overageUsedMicro: Micro;
  overageAllowed: boolean;
  overageCapMicro: Micro | null;
}

export interface PersonalSplit {
  includedMicro: Micro;
  prepaidMicro: Micro;
  overageMicro: Micro;
}

/** What a personal payer can still spend, before holds: included remaining + prepaid + overage headroom. */
export function personalAvailable(b: PersonalBuckets): Micro {
  const included = Math.max(0, b.includedMicro - b.includedUsedMicro);
  const prepaid = Math.max(0, b.prepaidMicro);
  if (!b.overageAllowed) return included + prepaid;
  if (b.overageCapMicro === null) return Number.MAX_SAFE_INTEGER;
  return included + prepaid + Math.max(0, b.overageCapMicro - b.overageUsedMicro);
}

/**
 * Splits a cost over a user's buckets in the fixed order plan-included → prepaid → overage (when the plan allows
 * it, up to the cap). Whatever no bucket can cover — only possible for the one request that crossed the last
 * headroom and the streams cut there, since admission refuses requests once nothing is left and holds never grow
 * past it — is taken from prepaid, which goes negative:
 * the request is charged in full and the shortfall is visible, never lost.
 */
export function splitPersonalDebit(cost: Micro, b: PersonalBuckets): PersonalSplit {
  let rest = cost;
  const included = Math.min(rest, Math.max(0, b.includedMicro - b.includedUsedMicro));
  rest -= included;
  let prepaid = Math.min(rest, Math.max(0, b.prepaidMicro));
  rest -= prepaid;
  let overage = 0;
  if (b.overageAllowed) {
    const room = b.overageCapMicro === null ? rest : Math.max(0, b.overageCapMicro - b.overageUsedMicro);
    overage = Math.min(rest, room);
    rest -= overage;
  }
  prepaid += rest;
  return { includedMicro: included, prepaidMicro: prepaid, overageMicro: overage };
}
