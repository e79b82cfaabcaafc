import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChanges, planBatch } from '../../src/domain/billing/metering/planner.js';
import { keyRow } from '../support/metering-rows.js';
import type { GrowResult, Hold, KeyRow, MeteringOp, MeteringRows, PlanContext, SettleResult } from '../../src/domain/billing/metering/types.js';
import { billingPeriodAt } from '../../src/domain/billing/period.js';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';

/**
 * Holds that grow with the stream, in the pure planner: streams are admitted with their input and one output
 * increment, ask for one more increment when less than half of one is left, and are cut — charged what they
 * produced — when what they produced passes what they hold. The proxy's side of that contract (ask ahead, cut at
 * the hold) is modelled here; the planner's side is what is checked:
 * - the overshoot bound: a key's spend (a payer's debits) passes its limit (balance) only by what streams produced
 *   past their holds before being cut — each at most one output increment — plus one request admitted alone at the
 *   end of the headroom;
 * - liveness: when the limit and the balance have room for every stream's whole cost, no stream is ever cut, and
 *   each is charged exactly its cost (the increments never starve parallel streams).
 */

const NOW = new Date('2026-12-01T00:00:00.000Z');
const ctx: PlanContext = { now: NOW, period: billingPeriodAt(NOW, 'Australia/Sydney'), holdTtlMs: 45_000, timeZone: 'Australia/Sydney' };
const USER = 'user-1';
const TEAM = 'team-1';
/** The output increment, in micro-AUD (the proxy's is a token count at the model's output price). */
const INC = 1_000;

/** Which sides' headroom capped a hold at admission (the request is then the one admitted alone past that end). */
interface Capped { key: boolean; payer: boolean }

interface Stream {
  hold: Hold;
  /** Its whole cost if it runs to its end. */
  total: number;
  /** Cost produced so far (its input from the start). */
  produced: number;
  /** Admitted with a hold capped at the rest of a headroom, alone there: on the key's side, on the payer's. */
  cappedAtAdmission: Capped;
}

const installation = fc.record({
  team: fc.boolean(),
  payerRoom: fc.oneof(fc.integer({ min: 0, max: 40_000 }), fc.constant(10_000_000)),
  keys: fc.array(fc.option(fc.integer({ min: 1, max: 30_000 }), { nil: null }), { minLength: 1, maxLength: 4 }),
});
const request = fc.record({
  key: fc.nat(),
  streamed: fc.boolean(),
  input: fc.integer({ min: 0, max: 3_000 }),
  output: fc.integer({ min: 0, max: 12_000 }),
});
/** Per round: new requests, and how much each stream in flight produces before the next batch (≤ half an increment). */
const rounds = fc.array(fc.record({ arrivals: fc.array(request, { maxLength: 4 }), pace: fc.array(fc.integer({ min: 0, max: INC / 2 }), { minLength: 8, maxLength: 8 }) }), {
  minLength: 1, maxLength: 60,
});

type Of<A> = A extends fc.Arbitrary<infer T> ? T : never;

function rowsOf(i: Of<typeof installation>): MeteringRows {
  const keys = new Map<string, KeyRow>();
  i.keys.forEach((limit, n) => keys.set(`key-${n}`, keyRow({ id: `key-${n}`, ownerId: USER, teamId: i.team ? TEAM : null, limitMicro: limit })));
  return {
    keys,
    balances: new Map([[USER, {
      userId: USER, includedUsedMicro: 0, overageUsedMicro: 0, prepaidMicro: i.payerRoom, heldMicro: 0, periodStart: ctx.period.start,
      includedMicro: 0, overageAllowed: false, overageCapMicro: null, alertThresholds: null, alertFiredPct: 0,
    }]]),
    teams: new Map([[TEAM, { id: TEAM, balanceMicro: i.payerRoom, heldMicro: 0, alertThresholds: null, alertBaseMicro: i.payerRoom, alertSince: NOW, alertFiredPct: 0 }]]),
    holds: new Map(),
    members: new Map(),
    models: new Map(),
  };
}

function settle(hold: Hold, costMicro: number): MeteringOp {
  return { settle: { hold, settlement: { ...NO_TOKENS, costMicro, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 1 } } };
}

interface Outcome {
  rows: MeteringRows;
  /** Per key and per payer: what settlements cost beyond what they held, by kind of request. */
  overshoot: Map<string, { streams: number[]; admittedAlone: number[] }>;
  cut: number;
  charged: Map<string, number>;
  totals: Map<string, number>;
}

/** Runs the traffic through the planner, one batch per round, the proxy's side modelled as the module doc says. */
function simulate(inst: Of<typeof installation>, traffic: Of<typeof rounds>): Outcome {
  let rows = rowsOf(inst);
  const streams = new Map<string, Stream>();
  const oneShot = new Map<string, { hold: Hold; cost: number; capped: Capped }>();
  const out: Outcome = { rows, overshoot: new Map(), cut: 0, charged: new Map(), totals: new Map() };
  const over = (id: string, kind: 'streams' | 'admittedAlone', amount: number) => {
    const o = out.overshoot.get(id) ?? { streams: [], admittedAlone: [] };
    o[kind].push(Math.max(0, amount));
    out.overshoot.set(id, o);
  };
  const payerOf = (h: Hold) => h.teamId ?? h.userId;
  let n = 0;
  const pending: Array<{ op: MeteringOp; done: (r: unknown) => void }> = [];
  const settleNow = (hold: Hold, cost: number, alone: Capped | null) => {
    pending.push({
      op: settle(hold, cost),
      done: (r) => {
        if (!(r as SettleResult).applied) return;
        // The locked row's amounts are what the settlement released: the overshoot is measured against them.
        const held = rows.holds.get(hold.requestId)!;
        // A hold capped on one side only is alone past that end; on the other side it is a stream like any other.
        over(hold.keyId, alone?.key ? 'admittedAlone' : 'streams', cost - held.keyHoldMicro);
        over(payerOf(hold), alone?.payer ? 'admittedAlone' : 'streams', cost - held.payerHoldMicro);
        out.charged.set(hold.requestId, cost);
      },
    });
  };
  const keyIds = [...rows.keys.keys()];
  for (const round of [...traffic, ...Array.from({ length: 40 }, () => ({ arrivals: [], pace: Array(8).fill(INC / 2) as number[] }))]) {
    // The proxy's side, between batches: streams produce, finish, are cut, or ask for more.
    let lane = 0;
    for (const s of streams.values()) {
      s.produced = Math.min(s.total, s.produced + round.pace[lane++ % round.pace.length]!);
      const budget = Math.min(s.hold.keyHoldMicro, s.hold.payerHoldMicro);
      if (s.produced >= s.total && s.produced <= budget) settleNow(s.hold, s.total, null);
      else if (s.produced > budget) {
        out.cut++;
        settleNow(s.hold, s.produced, s.cappedAtAdmission);
      } else if (s.produced >= budget - INC / 2) pending.push({ op: { grow: { hold: s.hold, byMicro: INC } }, done: (r) => {
        const g = r as GrowResult;
        s.hold = { ...s.hold, keyHoldMicro: g.keyHoldMicro, payerHoldMicro: g.payerHoldMicro };
      } });
    }
    for (const o of oneShot.values()) settleNow(o.hold, o.cost, o.capped);
    for (const a of round.arrivals) {
      const key = rows.keys.get(keyIds[a.key % keyIds.length]!)!;
      const requestId = `req-${n++}`;
      const estimate = a.streamed ? a.input + INC : a.input + a.output;
      out.totals.set(requestId, a.input + a.output);
      pending.push({
        op: { admit: { requestId, keyId: key.id, ownerId: USER, teamId: key.teamId, estimateMicro: estimate, model: 'm', provider: 'anthropic', endpoint: '/v1/messages', streamed: a.streamed } },
        done: (r) => {
          if (r instanceof Error) return;
          const hold = r as Hold;
          const capped = { key: hold.keyHoldMicro < estimate, payer: hold.payerHoldMicro < estimate };
          if (a.streamed) streams.set(requestId, { hold, total: a.input + a.output, produced: a.input, cappedAtAdmission: capped });
          else oneShot.set(requestId, { hold, cost: a.input + a.output, capped });
        },
      });
    }
    const batch = pending.splice(0);
    const plan = planBatch(rows, batch.map((p) => p.op), ctx);
    batch.forEach((p, i) => {
      const r = plan.results[i];
      if ('settle' in p.op) {
        streams.delete(p.op.settle.hold.requestId);
        oneShot.delete(p.op.settle.hold.requestId);
      }
      p.done(r);
    });
    rows = applyChanges(rows, plan.changes);
  }
  expect(streams.size + oneShot.size, 'every request ends').toBe(0);
  out.rows = rows;
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('holds that grow with the stream (pure planner)', () => {
  it('keeps every key and payer within its limit + one increment per stream cut + one request admitted alone', () => {
    fc.assert(
      fc.property(installation, rounds, (inst, traffic) => {
        const { rows, overshoot } = simulate(inst, traffic);
        const bound = (id: string) => {
          const o = overshoot.get(id) ?? { streams: [], admittedAlone: [] };
          for (const s of o.streams) expect(s, `a stream on ${id} past its hold`).toBeLessThanOrEqual(INC / 2);
          expect(o.admittedAlone.filter((x) => x > 0).length, `requests admitted alone past ${id}'s end`).toBeLessThanOrEqual(1);
          return sum(o.streams) + sum(o.admittedAlone);
        };
        for (const k of rows.keys.values()) {
          if (k.limitMicro !== null) expect(k.spendMicro, `key ${k.id}`).toBeLessThanOrEqual(k.limitMicro + bound(k.id));
          expect(k.heldMicro).toBe(0);
        }
        if (inst.team) expect(rows.teams.get(TEAM)!.balanceMicro, 'team balance').toBeGreaterThanOrEqual(-bound(TEAM));
        else expect(rows.balances.get(USER)!.prepaidMicro, 'prepaid').toBeGreaterThanOrEqual(-bound(USER));
        expect(rows.teams.get(TEAM)!.heldMicro + rows.balances.get(USER)!.heldMicro).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('never cuts a stream while the limit and the balance have room for every request, and charges each its cost', () => {
    fc.assert(
      fc.property(installation, rounds, (inst, traffic) => {
        const everything = sum(traffic.flatMap((r) => r.arrivals.map((a) => a.input + a.output)));
        const roomy = { ...inst, payerRoom: everything + INC * 100, keys: inst.keys.map((l) => (l === null ? null : everything + INC * 100)) };
        const { cut, charged, totals } = simulate(roomy, traffic);
        expect(cut).toBe(0);
        expect(charged).toEqual(totals);
      }),
      { numRuns: 500 },
    );
  });

  it('grows as far as the headroom goes, names what ran out, and grows nothing for a request already over', () => {
    let rows = rowsOf({ team: false, payerRoom: 1_000_000, keys: [5_000] });
    const admit = planBatch(rows, [{ admit: { requestId: 'r1', keyId: 'key-0', ownerId: USER, teamId: null, estimateMicro: 2_000, model: 'm', provider: 'anthropic', endpoint: '/v1/messages', streamed: true } }], ctx);
    rows = applyChanges(rows, admit.changes);
    const hold = admit.results[0] as Hold;
    const grow = planBatch(rows, [{ grow: { hold, byMicro: 2_000 } }, { grow: { hold, byMicro: 2_000 } }], ctx);
    const [first, second] = grow.results as GrowResult[];
    expect(first).toMatchObject({ grantedMicro: 2_000, keyHoldMicro: 4_000, payerHoldMicro: 4_000, refusal: null });
    expect(second).toMatchObject({ grantedMicro: 1_000, keyHoldMicro: 5_000, payerHoldMicro: 5_000 });
    expect((second!.refusal as MeteringRefusal).reason).toBe('spend_limit_reached');
    expect(grow.changes.holdsResized).toEqual([{ requestId: 'r1', keyHoldMicro: 5_000, payerHoldMicro: 5_000, memberHoldMicro: 0 }]);
    rows = applyChanges(rows, grow.changes);
    expect(rows.keys.get('key-0')!.heldMicro).toBe(5_000);
    const settled = applyChanges(rows, planBatch(rows, [settle(hold, 4_500)], ctx).changes);
    expect(settled.keys.get('key-0')).toMatchObject({ heldMicro: 0, spendMicro: 4_500 });
    const late = planBatch(settled, [{ grow: { hold, byMicro: 2_000 } }], ctx);
    expect(late.results[0]).toEqual({ grantedMicro: 0, keyHoldMicro: 0, payerHoldMicro: 0, memberHoldMicro: 0, refusal: null });
    expect(late.changes.holdsResized).toEqual([]);
    const revoked = new Map(rows.keys);
    revoked.set('key-0', { ...rows.keys.get('key-0')!, status: 'revoked' });
    const refused = planBatch({ ...rows, keys: revoked }, [{ grow: { hold, byMicro: 10 } }], ctx).results[0] as GrowResult;
    expect(refused.grantedMicro).toBe(0);
    expect(refused.refusal?.reason).toBe('key_revoked');
  });
});
