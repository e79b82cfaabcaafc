import { expect } from 'vitest';
import { catalogSeed, type SeedModel } from '../../../migrations/seed/catalog.js';
import type { Db } from '../../../src/db/knex.js';
import { toMicro } from '../../../src/domain/money.js';
import type { RecordedRequest, TokenKinds } from '../../support/fake-upstream.js';

/**
 * The bill check of the client tier, computed independently of ModelBridge's pricing code: from the seed catalog's
 * published USD prices and its AUD/USD rate, with BigInt arithmetic.
 *
 * Rounding rule (the one docs/metering.md states for requestCost): a price per million tokens is the USD list price ×
 * audPerUsd in micro-AUD, rounded to the nearest micro-AUD (as the seed migration stores it); a request costs
 * ceil(Σ input-side tokens × their prices / 10^6) — fresh input, cache reads, 5-minute and 1-hour cache writes summed
 * exactly, rounded up once — plus ceil(output tokens × output price / 10^6). Reasoning tokens are part of the output.
 */

const KINDS = ['inputTokens', 'cachedInputTokens', 'cacheWrite5mTokens', 'cacheWrite1hTokens', 'outputTokens', 'reasoningTokens'] as const;

export interface MicroPrices {
  input: bigint;
  output: bigint;
  cachedInput: bigint;
  cacheWrite5m: bigint;
  cacheWrite1h: bigint;
}

/** The seed entry serving a model name: its id, or its id plus a dated snapshot suffix. */
export function seedEntry(model: string): SeedModel {
  const entry = catalogSeed.models.find((m) => m.id === model || model.replace(/-\d{8}$/, '') === m.id);
  if (!entry) throw new Error(`the client tier bills only models of the seed catalog; ${model} is not one`);
  return entry;
}

/** micro-AUD per million tokens of each kind; a cache price the catalog leaves out is the input price. */
export function catalogPrices(model: string): MicroPrices {
  const usd = seedEntry(model).usdPerMTok;
  const micro = (price: number) => BigInt(Math.round(price * catalogSeed.audPerUsd * 1_000_000));
  const input = micro(usd.input);
  return {
    input, output: micro(usd.output),
    cachedInput: usd.cachedInput === undefined ? input : micro(usd.cachedInput),
    cacheWrite5m: usd.cacheWrite === undefined ? input : micro(usd.cacheWrite),
    cacheWrite1h: usd.cacheWrite1h === undefined ? input : micro(usd.cacheWrite1h),
  };
}

const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d;

/** What a request with these tokens costs at the catalog's prices, in micro-AUD (see the rounding rule above). */
export function expectedCost(model: string, t: TokenKinds): number {
  const p = catalogPrices(model);
  const M = 1_000_000n;
  const inputSide = BigInt(t.inputTokens) * p.input + BigInt(t.cachedInputTokens) * p.cachedInput
    + BigInt(t.cacheWrite5mTokens) * p.cacheWrite5m + BigInt(t.cacheWrite1hTokens) * p.cacheWrite1h;
  return Number(ceilDiv(inputSide, M) + ceilDiv(BigInt(t.outputTokens) * p.output, M));
}

export interface BilledEvent extends TokenKinds {
  model: string;
  outcome: string;
  costMicro: number;
  httpStatus: number;
}

/** The usage events recorded after the event with id `afterId`. */
export async function usageEvents(db: Db, afterId = 0): Promise<BilledEvent[]> {
  const rows = await db('usage_events').where('id', '>', afterId).orderBy('id');
  return rows.map((r: Record<string, unknown>) => ({
    model: String(r.model), outcome: String(r.outcome), costMicro: toMicro(r.cost_micro), httpStatus: Number(r.http_status),
    inputTokens: Number(r.input_tokens), cachedInputTokens: Number(r.cached_input_tokens), cacheWrite5mTokens: Number(r.cache_write_5m_tokens),
    cacheWrite1hTokens: Number(r.cache_write_1h_tokens), outputTokens: Number(r.output_tokens), reasoningTokens: Number(r.reasoning_tokens),
  }));
}

/** The requests the fake answered with usage, to completion (what a provider would bill). */
export function servedWithUsage(requests: readonly RecordedRequest[]): Array<RecordedRequest & { reported: TokenKinds }> {
  return requests.filter((r): r is RecordedRequest & { reported: TokenKinds } => r.reported !== undefined && r.outcome === 'completed');
}

const tokensOf = (t: TokenKinds) => KINDS.map((k) => `${k}=${t[k]}`).join(' ');

export interface BillSummary {
  charged: number;
  refused: number;
  totalMicro: number;
}

/**
 * Every usage event ModelBridge recorded against every request the fake served: as many charged (`ok`) events as
 * served requests, matched one to one by upstream model and token kinds (each kind equal to what the fake reported);
 * each charged event costs exactly expectedCost; every other event (a refusal passed through) costs nothing.
 * Models compare as catalog entries (the fake may see a dated snapshot name where the event has the entry's id); only
 * events after `afterEventId` count.
 */
export async function expectBill(db: Db, requests: readonly RecordedRequest[], afterEventId = 0): Promise<BillSummary> {
  const served = servedWithUsage(requests);
  const events = await usageEvents(db, afterEventId);
  const charged = events.filter((e) => e.outcome === 'ok');
  const refused = events.filter((e) => e.outcome !== 'ok');
  for (const e of refused) expect(e.costMicro, `a refused request (${e.outcome}, HTTP ${e.httpStatus}) costs nothing`).toBe(0);

  const servedKeys = served.map((r) => `${seedEntry(r.body.model).id} ${tokensOf(r.reported)}`).sort();
  const chargedKeys = charged.map((e) => `${seedEntry(e.model).id} ${tokensOf(e)}`).sort();
  expect(chargedKeys, 'charged events = served requests, model and every token kind as the upstream reported').toEqual(servedKeys);

  for (const e of charged) {
    expect(e.costMicro, `${e.model} ${tokensOf(e)}: cost = usage × catalog prices`).toBe(expectedCost(e.model, e));
  }
  return { charged: charged.length, refused: refused.length, totalMicro: charged.reduce((s, e) => s + e.costMicro, 0) };
}
