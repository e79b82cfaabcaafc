import { describe, expect, it } from 'vitest';
import { catalogSeed } from '../../migrations/seed/catalog.js';
import { seedModels } from '../../migrations/seed/models.js';
import { seedRow, usdToMicroAud } from '../../migrations/seed/seed-models.js';
import { PROVIDERS } from '../../src/domain/models/models.service.js';

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;

describe('the seed catalog data file', () => {
  it('names its date, sources and AUD/USD rate', () => {
    expect(catalogSeed.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(catalogSeed.sources.anthropic.length).toBeGreaterThan(0);
    expect(catalogSeed.sources.openai.length).toBeGreaterThan(0);
    expect(catalogSeed.audPerUsd).toBeGreaterThan(1);
  });

  it('gives every entry a valid id, a provider, an output cap and input and output prices', () => {
    for (const m of catalogSeed.models) {
      expect(m.id, m.id).toMatch(MODEL_NAME);
      expect(PROVIDERS).toContain(m.provider);
      expect(m.upstreamModel.length, m.id).toBeGreaterThan(0);
      expect(Number.isInteger(m.maxOutputTokens), m.id).toBe(true);
      expect(m.usdPerMTok.input, m.id).toBeGreaterThan(0);
      expect(m.usdPerMTok.output, m.id).toBeGreaterThanOrEqual(0);
      // Only embeddings produce no output tokens.
      if (m.maxOutputTokens > 0) expect(m.usdPerMTok.output, m.id).toBeGreaterThan(0);
      for (const price of Object.values(m.usdPerMTok)) expect(Number.isFinite(price) && price >= 0, m.id).toBe(true);
    }
    expect(new Set(catalogSeed.models.map((m) => m.id)).size).toBe(catalogSeed.models.length);
  });

  it('holds what Claude Code and the Codex CLI ask for, and the models the first seed had', () => {
    const ids = catalogSeed.models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-5-5', 'gpt-6-astra']));
    expect(ids).toEqual(expect.arrayContaining(seedModels.map((m) => m.id)));
  });

  it('prices the first seed’s models exactly as that seed did, so no existing price moves', () => {
    const now = new Date();
    for (const first of seedModels) {
      const entry = catalogSeed.models.find((m) => m.id === first.id)!;
      expect(seedRow(entry, now)).toMatchObject(first);
    }
  });

  it('converts USD to micro-AUD at the stated rate, rounded to the micro-AUD', () => {
    expect(usdToMicroAud(4)).toBe(6_200_000);
    expect(usdToMicroAud(0.15)).toBe(232_500);
    expect(usdToMicroAud(0.01)).toBe(15_500);
  });
});
