import { expect, vi } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import type { TestApp } from './app.js';
import type { FakeUpstream, Format, TokenKinds } from './fake-upstream.js';

export type EventRow = Record<string, any>;

/**
 * The usage events of one key from a mark on: `mark()` before each test (a beforeEach), `settled()` waits for the
 * one event of the request just made and returns it. Takes getters, as fixtures fill their fields in beforeAll.
 */
export type KeyEvents = ReturnType<typeof keyEvents>;

export function keyEvents(app: () => TestApp, keyId: () => string) {
  let seen = 0;
  const all = async (): Promise<EventRow[]> => app().t.db('usage_events').where({ key_id: keyId() }).orderBy('id');
  return {
    async mark(): Promise<void> {
      seen = (await all()).length;
    },
    /** How many events the key had at the mark. */
    get seen(): number {
      return seen;
    },
    async settled(): Promise<EventRow> {
      let fresh: EventRow[] = [];
      await vi.waitFor(async () => {
        fresh = (await all()).slice(seen);
        expect(fresh).toHaveLength(1);
      }, { timeout: 5_000 });
      return fresh[0]!;
    },
  };
}

/** A usage event's tokens by kind, as the fake upstream's expectedTokens gives them. */
export function tokenKindsOf(e: EventRow): TokenKinds {
  return {
    inputTokens: Number(e.input_tokens), cachedInputTokens: Number(e.cached_input_tokens), cacheWrite5mTokens: Number(e.cache_write_5m_tokens),
    cacheWrite1hTokens: Number(e.cache_write_1h_tokens), outputTokens: Number(e.output_tokens), reasoningTokens: Number(e.reasoning_tokens),
  };
}

/**
 * The event of the request just made is the upstream's reported usage (of the fake's first recorded request, in
 * `api`'s format) at the catalog's prices, kind by kind, exactly, not estimated. Returns the usage.
 */
export async function expectBilledAsReported(r: { events: KeyEvents; fake: FakeUpstream; model: CatalogModel; api: Format; endpoint: string }): Promise<TokenKinds> {
  const reported = r.fake.expectedTokens(r.fake.requests[0]!.body, r.api);
  const event = await r.events.settled();
  expect(event).toMatchObject({ provider: r.model.provider, endpoint: r.endpoint, outcome: 'ok', model: r.model.id });
  expect(tokenKindsOf(event)).toEqual(reported);
  expect(Boolean(event.estimated)).toBe(false);
  expect(toMicro(event.cost_micro)).toBe(requestCost(r.model, reported));
  return reported;
}
