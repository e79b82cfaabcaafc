/**
 * The model catalog ModelBridge ships: the current models of both providers, with the providers' published USD
 * list prices per million tokens. Migrations convert them to micro-AUD at `audPerUsd` and insert the entries an
 * installation does not have yet (see seedMissingModels); entries it has are never changed, so an admin's edits stay.
 *
 * This file is data: to follow a provider's price list, change it here and add a migration that calls
 * seedMissingModels again (new entries arrive; existing ones are for admins to re-price).
 *
 * `migrations/seed/models.ts` is not a second catalog: it is the frozen list the first models migration inserted.
 */

export interface SeedPrices {
  input: number;
  output: number;
  /** Cache reads (Anthropic "cache hits", OpenAI "cached input"). */
  cachedInput?: number;
  /** Anthropic 5-minute cache writes; OpenAI cache writes (30-minute retention). */
  cacheWrite?: number;
  /** Anthropic 1-hour cache writes. */
  cacheWrite1h?: number;
}

export interface SeedModel {
  id: string;
  provider: 'openai' | 'anthropic';
  upstreamModel: string;
  /** USD per million tokens, as published. */
  usdPerMTok: SeedPrices;
  maxOutputTokens: number;
  /** Which client asks for it, when that is why it is here. */
  askedBy?: string;
  /** What could not be confirmed, or what the single price leaves out. */
  caveat?: string;
}

export const catalogSeed = {
  asOf: '2026-12-02',
  sources: {
    anthropic: [
      'https://platform.claude.com/docs/en/about-claude/pricing (model pricing table)',
      'https://platform.claude.com/docs/en/models/opus-5-5/overview, /sonnet-5-5/overview, /haiku-5-5/overview, /opus-5/overview, /sonnet-5/overview',
    ],
    openai: [
      'https://developers.openai.com/api/docs/pricing',
      'https://developers.openai.com/api/docs/models/gpt-6.2-sol (the one OpenAI model page read directly here)',
    ],
    clients: [
      'Claude Code 2.1.x: default model claude-opus-5-5; --model sonnet → claude-sonnet-5-5, --model haiku → claude-haiku-5-5 (from the issue report; the alias targets were not read in Claude Code source here)',
      'Codex CLI (npm @openai/codex, codex-rs): bundled default gpt-6-astra since rust-v0.153.4 (release notes, 2026-09-04, as quoted in public issues); no later change of default was found',
    ],
  },
  /**
   * The rate the first seed used. It is not a market rate read on `asOf`; keeping it means no price already in a
   * catalog moves with this data. Admins re-price in the portal or with admin.models.upsert.
   */
  audPerUsd: 1.55,
  /**
   * Tiered prices are not modelled (an entry has one input and one output price): the entries below carry the
   * standard band. Requests above the provider's long-prompt threshold are charged less than the provider charges:
   * Claude Haiku 5.5 over 100,000 prompt tokens (5×), OpenAI GPT-6 / GPT-6.2 / GPT-5.6 over 272,000 input tokens
   * (input 2×, output 1.5×).
   */
  models: [
    // ---- Anthropic ------------------------------------------------------------------------------------------------
    { id: 'claude-opus-5-5', provider: 'anthropic', upstreamModel: 'claude-opus-5-5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 4, output: 20, cachedInput: 0.2, cacheWrite: 5, cacheWrite1h: 8 }, askedBy: 'Claude Code (default model)' },
    { id: 'claude-sonnet-5-5', provider: 'anthropic', upstreamModel: 'claude-sonnet-5-5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 2, output: 10, cachedInput: 0.1, cacheWrite: 2.5, cacheWrite1h: 4 }, askedBy: 'Claude Code (--model sonnet)',
      caveat: 'Cache reads: the overview page read here says $0.20; a cut to $0.10 from 2026-10-07 is reported by third parties only.' },
    { id: 'claude-haiku-5-5', provider: 'anthropic', upstreamModel: 'claude-haiku-5-5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 0.1, output: 0.5, cachedInput: 0.01, cacheWrite: 0.125, cacheWrite1h: 0.2 }, askedBy: 'Claude Code (--model haiku, background tasks)',
      caveat: 'Prompts over 100,000 tokens cost $0.50 / $2.50 (cache $0.05 / $0.625 / $1.00) upstream; not modelled.' },
    { id: 'claude-opus-5', provider: 'anthropic', upstreamModel: 'claude-opus-5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 5, output: 25, cachedInput: 0.5, cacheWrite: 6.25, cacheWrite1h: 10 } },
    { id: 'claude-sonnet-5', provider: 'anthropic', upstreamModel: 'claude-sonnet-5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 2, output: 10, cachedInput: 0.2, cacheWrite: 2.5, cacheWrite1h: 4 } },
    { id: 'claude-sonnet-4-6', provider: 'anthropic', upstreamModel: 'claude-sonnet-4-6', maxOutputTokens: 64_000,
      usdPerMTok: { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 },
      caveat: 'Price from third-party listings and the Sonnet 4.x rate card; its output cap was not confirmed here.' },
    { id: 'claude-sonnet-4-5', provider: 'anthropic', upstreamModel: 'claude-sonnet-4-5', maxOutputTokens: 64_000,
      usdPerMTok: { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 } },
    { id: 'claude-haiku-4-5', provider: 'anthropic', upstreamModel: 'claude-haiku-4-5', maxOutputTokens: 64_000,
      usdPerMTok: { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25, cacheWrite1h: 2 } },

    // ---- OpenAI ---------------------------------------------------------------------------------------------------
    { id: 'gpt-6-astra', provider: 'openai', upstreamModel: 'gpt-6-astra', maxOutputTokens: 128_000,
      usdPerMTok: { input: 10, output: 50, cachedInput: 1, cacheWrite: 12.5 }, askedBy: 'Codex CLI (bundled default)' },
    { id: 'gpt-6.2-astra', provider: 'openai', upstreamModel: 'gpt-6.2-astra', maxOutputTokens: 128_000,
      usdPerMTok: { input: 8, output: 40, cachedInput: 0.4 },
      caveat: 'Cached input derived from "60% cheaper than GPT-6 Astra" (third-party); not read on an OpenAI page here.' },
    { id: 'gpt-6.2-sol', provider: 'openai', upstreamModel: 'gpt-6.2-sol', maxOutputTokens: 128_000,
      usdPerMTok: { input: 2, output: 10, cachedInput: 0.1, cacheWrite: 2.5 } },
    { id: 'gpt-5.6-sol', provider: 'openai', upstreamModel: 'gpt-5.6-sol', maxOutputTokens: 128_000,
      usdPerMTok: { input: 5, output: 30, cachedInput: 0.5 }, askedBy: 'Codex CLI (model picker)',
      caveat: 'Output cap not confirmed here (128K assumed, as for the GPT-6 family).' },
    { id: 'gpt-5.6-terra', provider: 'openai', upstreamModel: 'gpt-5.6-terra', maxOutputTokens: 128_000,
      usdPerMTok: { input: 2, output: 12, cachedInput: 0.2 }, askedBy: 'Codex CLI (model picker)',
      caveat: 'Price after the 2026-07-30 cut; output cap not confirmed here.' },
    { id: 'gpt-5.6-luna', provider: 'openai', upstreamModel: 'gpt-5.6-luna', maxOutputTokens: 128_000,
      usdPerMTok: { input: 0.2, output: 1.2, cachedInput: 0.02 }, askedBy: 'Codex CLI (model picker)',
      caveat: 'Price after the 2026-07-30 cut; output cap not confirmed here.' },
    { id: 'gpt-5.5', provider: 'openai', upstreamModel: 'gpt-5.5', maxOutputTokens: 128_000,
      usdPerMTok: { input: 5, output: 30, cachedInput: 0.5 }, askedBy: 'Codex CLI (model picker)',
      caveat: 'Price from a third-party price table; output cap not confirmed here.' },
    { id: 'gpt-4.1', provider: 'openai', upstreamModel: 'gpt-4.1', maxOutputTokens: 32_768,
      usdPerMTok: { input: 2, output: 8, cachedInput: 0.5 } },
    { id: 'gpt-4o', provider: 'openai', upstreamModel: 'gpt-4o', maxOutputTokens: 16_384,
      usdPerMTok: { input: 2.5, output: 10, cachedInput: 1.25 } },
    { id: 'gpt-4o-mini', provider: 'openai', upstreamModel: 'gpt-4o-mini', maxOutputTokens: 16_384,
      usdPerMTok: { input: 0.15, output: 0.6, cachedInput: 0.075 } },
    { id: 'text-embedding-3-small', provider: 'openai', upstreamModel: 'text-embedding-3-small', maxOutputTokens: 0,
      usdPerMTok: { input: 0.02, output: 0 } },
  ] satisfies SeedModel[] as SeedModel[],
};
