import { describe, expect, it } from 'vitest';
import { snapshotBase, upstreamModelFor, type CatalogModel } from '../../src/domain/models/models.service.js';

describe('dated snapshot names', () => {
  it('reads both date forms and nothing else as a snapshot', () => {
    expect(snapshotBase('claude-sonnet-4-5-20250929')).toBe('claude-sonnet-4-5');
    expect(snapshotBase('gpt-4o-mini-2024-07-18')).toBe('gpt-4o-mini');
    for (const name of ['claude-sonnet-4-5', 'gpt-4-0613', 'text-embedding-3-small', '-20250929', 'gpt-5.5']) expect(snapshotBase(name), name).toBeNull();
  });

  it('forwards a snapshot of the upstream model as asked, anything else as the upstream model', () => {
    const entry: CatalogModel = { id: 'claude-sonnet-4-5', provider: 'anthropic', upstreamModel: 'claude-sonnet-4-5', inputMicroPerMTok: 1, outputMicroPerMTok: 1, cachedInputMicroPerMTok: null, cacheWriteMicroPerMTok: null, cacheWrite1hMicroPerMTok: null, maxOutputTokens: 1, enabled: true };
    expect(upstreamModelFor(entry, 'claude-sonnet-4-5-20250929')).toBe('claude-sonnet-4-5-20250929');
    expect(upstreamModelFor(entry, 'claude-sonnet-4-5')).toBe('claude-sonnet-4-5');
    expect(upstreamModelFor(entry, 'sonnet')).toBe('claude-sonnet-4-5');
    const renamed = { ...entry, id: 'house', upstreamModel: 'claude-haiku-4-5' };
    expect(upstreamModelFor(renamed, 'house-20250929')).toBe('claude-haiku-4-5');
  });
});
