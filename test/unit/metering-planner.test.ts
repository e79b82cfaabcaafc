import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChanges, planBatch } from '../../src/domain/billing/metering/planner.js';
import { keyRow, memberRow } from '../support/metering-rows.js';
import type { AlertFiring, Hold, KeyRow, MeteringOp, MeteringRows, OpResult, PlanContext } from '../../src/domain/billing/metering/types.js';
import { billingPeriodAt } from '../../src/domain/billing/period.js';
import { limitPeriodAt, spendInPeriod } from '../../src/domain/keys/controls.js';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';

/**
 * The metering planner without a database: random installations (a team, a personal balance, keys with and without
 * limits on either), random traffic (admissions with estimates, settlements costing at most their estimate — or
 * anything, for a request whose cost cannot be bounded), grouped into random batches. Every property of
 * docs/metering.md that the rules alone decide is checked here, on thousands of cases in milliseconds.
 */

const NOW = new Date('2026-12-01T00:00:00.000Z');
const ZONE = 'Australia/Sydney';
/** The clock of a world: batches move it on (by up to 6 hours, never out of the billing month), so periods and windows roll. */
const ctxAt = (now: Date): PlanContext => ({ now, period: billingPeriodAt(now, ZONE), holdTtlMs: 45_000, timeZone: ZONE });
const ctx = ctxAt(NOW);
const USER = 'user-1';
const TEAM = 'team-1';

interface World {
  rows: MeteringRows;
  /** What each admitted request will cost when settled (at most its estimate unless unbounded). */
  costs: Map<string, number>;
  now: Date;
}

const installation = fc.record({
  teamBalance: fc.integer({ min: 0, max: 60_000 }),
  included: fc.integer({ min: 0, max: 40_000 }),
  prepaid: fc.integer({ min: 0, max: 40_000 }),
  overageAllowed: fc.boolean(),
  overageCap: fc.option(fc.integer({ min: 0, max: 30_000 }), { nil: null }),
  // Many keys, often with a small limit left: what overran payers before holds were reserved at each side apart.
  keys: fc.array(fc.record({
    team: fc.boolean(),
    limit: fc.option(fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: 30_000 })), { nil: null }),
    // The controls of docs/limits.md, each often absent.
    limitReset: fc.option(fc.constantFrom('daily' as const, 'weekly' as const, 'monthly' as const), { nil: null }),
    rpm: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
    tpm: fc.option(fc.integer({ min: 1, max: 40_000 }), { nil: null }),
    maxParallel: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
    onlyModelA: fc.boolean(),
  }), { minLength: 1, maxLength: 12 }),
  memberBudget: fc.option(fc.integer({ min: 1, max: 30_000 }), { nil: null }),
});

type Installation = typeof installation extends fc.Arbitrary<infer T> ? T : never;
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function worldOf(i: Installation): World {
  const keys = new Map<string, KeyRow>();
  i.keys.forEach((k, n) => {
    const id = `key-${n}`;
    keys.set(id, keyRow({
      id, ownerId: USER, teamId: k.team ? TEAM : null, limitMicro: k.limit, limitReset: k.limitReset,
      allowedModels: k.onlyModelA ? ['model-a'] : null, rateLimits: { rpmLimit: k.rpm, tpmLimit: k.tpm, maxParallel: k.maxParallel },
    }));
  });
  return {
    rows: {
      keys,
      balances: new Map([[USER, {
        userId: USER, includedUsedMicro: 0, overageUsedMicro: 0, prepaidMicro: i.prepaid, heldMicro: 0, periodStart: ctx.period.start,
        includedMicro: i.included, overageAllowed: i.overageAllowed, overageCapMicro: i.overageCap, alertThresholds: null, alertFiredPct: 0,
      }]]),
      teams: new Map([[TEAM, { id: TEAM, balanceMicro: i.teamBalance, heldMicro: 0, alertThresholds: null, alertBaseMicro: i.teamBalance, alertSince: NOW, alertFiredPct: 0 }]]),
      members: new Map([[memberRow(TEAM, USER, i.memberBudget).id, memberRow(TEAM, USER, i.memberBudget)]]),
      holds: new Map(),
      models: new Map(),
    },
    costs: new Map(),
    now: NOW,
  };
}

/** One step of traffic: admit on a key, or settle the n-th request in flight. */
const step = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('admit' as const),
      key: fc.nat(),
      estimate: fc.integer({ min: 1, max: 20_000 }),
      costShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
      unbounded: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
      unboundedCost: fc.integer({ min: 0, max: 200_000 }),
      model: fc.constantFrom('model-a', 'model-b'),
      tokens: fc.integer({ min: 0, max: 20_000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('settle' as const), which: fc.nat() }) },
  // A stream's hold grown ahead of its output (holds that grow: test/unit/metering-growth.test.ts).
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('grow' as const), which: fc.nat(), by: fc.integer({ min: 0, max: 5_000 }) }) },
);
const traffic = fc.array(fc.record({
  batch: fc.array(step, { minLength: 1, maxLength: 6 }),
  // Time before the batch: often none, sometimes seconds (rate windows), sometimes hours (budget periods).
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 90_000 }), fc.integer({ min: 0, max: 6 * 3_600_000 })),
}), { minLength: 1, maxLength: 25 });

let nextRequest = 0;
/** The ops of one batch, against the holds in flight before it (a batch cannot settle what it admits). */
function opsOf(world: World, steps: Step[]): MeteringOp[] {
  const inFlight = [...world.rows.holds.values()];
  const keyIds = [...world.rows.keys.keys()];
  const ops: MeteringOp[] = [];
  const settling = new Set<string>();
  for (const s of steps) {
    if (s.kind === 'admit') {
      const key = world.rows.keys.get(keyIds[s.key % keyIds.length]!)!;
      const requestId = `req-${nextRequest++}`;
      world.costs.set(requestId, s.unbounded ? s.unboundedCost : Math.floor(s.estimate * s.costShare));
      ops.push({ admit: {
        requestId, keyId: key.id, ownerId: key.ownerId, teamId: key.teamId, estimateMicro: s.estimate, unbounded: s.unbounded,
        estimatedTokens: s.tokens, model: s.model, provider: 'openai', endpoint: '/v1/chat/completions', streamed: false,
      } });
    } else if (s.kind === 'grow') {
      if (inFlight.length) ops.push({ grow: { hold: inFlight[s.which % inFlight.length]!, byMicro: s.by } });
    } else if (inFlight.length) {
      const hold = inFlight[s.which % inFlight.length]!;
      if (settling.has(hold.requestId)) continue;
      settling.add(hold.requestId);
      ops.push(settleOp(hold, world.costs.get(hold.requestId)!));
    }
  }
  return ops;
}

function settleOp(hold: Hold, costMicro: number): MeteringOp {
  return { settle: { hold, settlement: { ...NO_TOKENS, inputTokens: 1, outputTokens: 1, costMicro, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 1 } } };
}

function run(world: World, ops: MeteringOp[]) {
  const plan = planBatch(world.rows, ops, ctxAt(world.now));
  world.rows = applyChanges(world.rows, plan.changes);
  return plan;
}

/** Results compared by what matters: the holds placed, the refusal reason, the charge. */
function summary(r: OpResult): unknown {
  if (r instanceof MeteringRefusal) return r.reason;
  if (r instanceof Error) return r.name;
  return r;
}

/** Settle everything still in flight, one batch. */
function drain(world: World) {
  return run(world, [...world.rows.holds.values()].map((h) => settleOp(h, world.costs.get(h.requestId)!)));
}

describe('the metering planner (pure, no database)', () => {
  it('a batch admits and charges exactly what the same operations one at a time would (settlements first)', () => {
    fc.assert(
      fc.property(installation, traffic, (inst, batches) => {
        const batched = worldOf(inst);
        const single = worldOf(inst);
        for (const { batch, advanceMs } of batches) {
          batched.now = single.now = new Date(batched.now.getTime() + advanceMs);
          const ops = opsOf(batched, batch);
          single.costs = batched.costs;
          const together = run(batched, ops).results.map(summary);
          const rank = (op: MeteringOp) => ('admit' in op ? 2 : 'grow' in op ? 1 : 0);
          const ordered = [...ops.keys()].sort((a, b) => rank(ops[a]!) - rank(ops[b]!));
          const alone: unknown[] = new Array(ops.length);
          for (const i of ordered) alone[i] = summary(run(single, [ops[i]!]).results[0]!);
          expect(together).toEqual(alone);
          expect(batched.rows).toEqual(single.rows);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every key within its limit + its largest single cost, and every payer overrun by at most one request', () => {
    fc.assert(
      fc.property(installation, traffic, (inst, batches) => {
        const world = worldOf(inst);
        const charged = new Map<string, number[]>(); // key or payer → costs charged
        const note = (id: string, cost: number) => charged.set(id, [...(charged.get(id) ?? []), cost]);
        const account = (plan: ReturnType<typeof run>) => {
          for (const e of plan.changes.usageEvents) {
            note(e.keyId, e.costMicro);
            note(e.teamId ?? e.userId, e.costMicro);
          }
        };
        for (const { batch } of batches) account(run(world, opsOf(world, batch)));
        account(drain(world));
        const largest = (id: string) => Math.max(0, ...(charged.get(id) ?? []));
        for (const k of world.rows.keys.values()) {
          if (k.limitMicro !== null) expect(k.spendMicro, `key ${k.id}`).toBeLessThanOrEqual(k.limitMicro + largest(k.id));
          expect(k.heldMicro).toBe(0);
        }
        const team = world.rows.teams.get(TEAM)!;
        expect(team.balanceMicro, 'team balance').toBeGreaterThanOrEqual(-largest(TEAM));
        expect(team.heldMicro).toBe(0);
        const me = world.rows.balances.get(USER)!;
        expect(me.prepaidMicro, 'prepaid').toBeGreaterThanOrEqual(-largest(USER));
        expect(me.includedUsedMicro).toBeLessThanOrEqual(inst.included);
        if (inst.overageCap !== null) expect(me.overageUsedMicro).toBeLessThanOrEqual(inst.overageCap);
        if (!inst.overageAllowed) expect(me.overageUsedMicro).toBe(0);
        expect(me.heldMicro).toBe(0);
      }),
      { numRuns: 1_000 },
    );
  });

  it('keeps every key within its rate limits and allow-list, and a member within budget + one request, as the clock moves', () => {
    fc.assert(
      fc.property(installation, traffic, (inst, batches) => {
        const world = worldOf(inst);
        const admittedPerWindow = new Map<string, number>(); // key + window → admissions
        const memberCharges: number[] = [];
        for (const { batch, advanceMs } of batches) {
          world.now = new Date(world.now.getTime() + advanceMs);
          const ops = opsOf(world, batch);
          const plan = run(world, ops);
          plan.results.forEach((r, i) => {
            const op = ops[i]!;
            if (!('admit' in op) || r instanceof Error) return;
            const key = world.rows.keys.get(op.admit.keyId)!;
            expect(key.allowedModels === null || key.allowedModels.includes(op.admit.model)).toBe(true);
            const slot = `${key.id}@${Math.floor(world.now.getTime() / 60_000)}`;
            admittedPerWindow.set(slot, (admittedPerWindow.get(slot) ?? 0) + 1);
            if (key.rateLimits.rpmLimit !== null) expect(admittedPerWindow.get(slot)).toBeLessThanOrEqual(key.rateLimits.rpmLimit);
          });
          for (const k of world.rows.keys.values()) {
            const held = [...world.rows.holds.values()].filter((h) => h.keyId === k.id).length;
            expect(k.inFlight, `in flight on ${k.id}`).toBe(held);
            if (k.rateLimits.maxParallel !== null) expect(k.inFlight).toBeLessThanOrEqual(k.rateLimits.maxParallel);
          }
          for (const e of plan.changes.usageEvents) if (e.teamId) memberCharges.push(e.costMicro);
        }
        const member = world.rows.members.get(memberRow(TEAM, USER, null).id)!;
        if (inst.memberBudget !== null) expect(member.spendMicro).toBeLessThanOrEqual(inst.memberBudget + Math.max(0, ...memberCharges));
        expect(member.heldMicro).toBe([...world.rows.holds.values()].filter((h) => h.teamId).reduce((s, h) => s + h.memberHoldMicro, 0));
      }),
      { numRuns: 500 },
    );
  });

  it('fires each alert threshold once per scope and period: never twice, and every one the spend has passed (batched or not)', () => {
    fc.assert(
      fc.property(installation, traffic, (inst, batches) => {
        const batched = worldOf(inst);
        const single = worldOf(inst);
        const firedBatched: string[] = [], firedSingle: string[] = [];
        const name = (a: AlertFiring) => `${a.eventType} ${a.scopeId} ${a.periodStart.toISOString()} ${a.threshold}`;
        for (const { batch, advanceMs } of [...batches, { batch: [] as Step[], advanceMs: 0 }]) {
          batched.now = single.now = new Date(batched.now.getTime() + advanceMs);
          const ops = batch.length ? opsOf(batched, batch) : [...batched.rows.holds.values()].map((h) => settleOp(h, batched.costs.get(h.requestId)!));
          single.costs = batched.costs;
          firedBatched.push(...run(batched, ops).changes.alerts.map(name));
          const rank = (op: MeteringOp) => ('admit' in op ? 2 : 'grow' in op ? 1 : 0);
          for (const i of [...ops.keys()].sort((a, b) => rank(ops[a]!) - rank(ops[b]!))) firedSingle.push(...run(single, [ops[i]!]).changes.alerts.map(name));
        }
        expect(new Set(firedBatched).size).toBe(firedBatched.length);
        expect([...firedBatched].sort()).toEqual([...firedSingle].sort());
        // Every threshold passed in the period each row is in now has fired in it (no threshold of 50/80/100 missed).
        const fired = new Set(firedBatched);
        const expectFired = (type: string, scope: string, start: Date, spent: number, limit: number) => {
          for (const t of [50, 80, 100]) if (spent * 100 >= t * limit) expect(fired.has(`${type} ${scope} ${start.toISOString()} ${t}`), `${type} ${scope} ${t}`).toBe(true);
        };
        const c = ctxAt(batched.now);
        for (const k of batched.rows.keys.values()) {
          if (k.limitMicro === null || (k.limitReset && !k.periodStart)) continue;
          expectFired('key.limit_threshold', k.id, k.limitReset ? k.periodStart! : new Date(0), k.limitReset ? spendInPeriod(k, limitPeriodAt(k.limitReset, c.now, ZONE)) : k.spendMicro, k.limitMicro);
        }
        const team = batched.rows.teams.get(TEAM)!;
        if (team.alertBaseMicro) expectFired('team.balance_threshold', TEAM, team.alertSince!, team.alertBaseMicro - team.balanceMicro, team.alertBaseMicro);
        const me = batched.rows.balances.get(USER)!;
        if (me.includedMicro > 0) expectFired('balance.threshold', USER, c.period.start, me.includedUsedMicro, me.includedMicro);
        const member = batched.rows.members.get(memberRow(TEAM, USER, null).id)!;
        if (member.budgetMicro !== null && member.periodStart) expectFired('member.budget_threshold', member.id, member.periodStart, member.spendMicro, member.budgetMicro);
      }),
      { numRuns: 500 },
    );
  });

  it('splits every debit so that it adds up to the cost, in ledger entries and in the usage event', () => {
    fc.assert(
      fc.property(installation, traffic, (inst, batches) => {
        const world = worldOf(inst);
        for (const { batch } of [...batches, { batch: [] }]) {
          const plan = batch.length ? run(world, opsOf(world, batch)) : drain(world);
          for (const e of plan.changes.usageEvents) {
            expect(e.includedMicro + e.prepaidMicro + e.overageMicro + e.teamMicro).toBe(e.costMicro);
            const ledger = plan.changes.ledger.filter((l) => l.requestId === e.requestId);
            expect(ledger.reduce((s, l) => s - l.amountMicro, 0)).toBe(e.costMicro);
            expect(ledger.every((l) => l.amountMicro < 0)).toBe(true);
            expect(e.costMicro).toBe(world.costs.get(e.requestId));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('changes nothing when a settlement is replayed, in a later batch or in the same one', () => {
    fc.assert(
      fc.property(installation, traffic, fc.boolean(), (inst, batches, sameBatch) => {
        const world = worldOf(inst);
        for (const { batch } of batches) run(world, opsOf(world, batch));
        const holds = [...world.rows.holds.values()];
        const ops = holds.map((h) => settleOp(h, world.costs.get(h.requestId)!));
        if (sameBatch) {
          const plan = run(world, [...ops, ...ops]);
          expect(plan.results.slice(ops.length).every((r) => (r as { applied: boolean }).applied === false)).toBe(true);
          expect(plan.changes.usageEvents).toHaveLength(holds.length);
        } else {
          run(world, ops);
          const before = world.rows;
          const replay = run(world, ops);
          expect(replay.results.every((r) => (r as { applied: boolean }).applied === false)).toBe(true);
          expect(replay.changes).toEqual({ keys: [], balances: [], teams: [], members: [], holdsPlaced: [], holdsRemoved: [], holdsResized: [], usageEvents: [], ledger: [], alerts: [] });
          expect(world.rows).toEqual(before);
        }
      }),
      { numRuns: 300 },
    );
  });
});
