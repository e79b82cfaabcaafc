import type { Db, Queryable } from '../../db/knex.js';
import { BoundedMap } from '../../db/bounded-map.js';
import { MicroBatcher } from '../../db/micro-batcher.js';
import { toBool, toInt } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, forbidden } from '../errors.js';
import { MAX_AMOUNT_MICRO, toMicro, toMicroOrNull, type Micro } from '../money.js';

/** The cost rule lives in pricing.ts; re-exported for the callers that know the catalog by this module. */
export { requestCost, type TokenUsage } from './pricing.js';

export const PROVIDERS = ['openai', 'anthropic'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface CatalogModel {
  id: string;
  provider: Provider;
  upstreamModel: string;
  inputMicroPerMTok: Micro;
  outputMicroPerMTok: Micro;
  /** Cache reads (Anthropic) and cached input (OpenAI); null: billed at the input price. */
  cachedInputMicroPerMTok: Micro | null;
  /** 5-minute prompt-cache writes (Anthropic); null: billed at the input price. */
  cacheWriteMicroPerMTok: Micro | null;
  /** 1-hour prompt-cache writes (Anthropic); null: billed at the input price. */
  cacheWrite1hMicroPerMTok: Micro | null;
  maxOutputTokens: number;
  enabled: boolean;
}

export function modelFromRow(r: Record<string, unknown>): CatalogModel {
  return {
    id: r.id as string,
    provider: r.provider as Provider,
    upstreamModel: r.upstream_model as string,
    inputMicroPerMTok: toMicro(r.input_micro_per_mtok),
    outputMicroPerMTok: toMicro(r.output_micro_per_mtok),
    cachedInputMicroPerMTok: toMicroOrNull(r.cached_input_micro_per_mtok),
    cacheWriteMicroPerMTok: toMicroOrNull(r.cache_write_micro_per_mtok),
    cacheWrite1hMicroPerMTok: toMicroOrNull(r.cache_write_1h_micro_per_mtok),
    maxOutputTokens: toInt(r.max_output_tokens),
    enabled: toBool(r.enabled),
  };
}

/** Whether two catalog entries price, cap and route a request the same way. */
export function sameCatalogEntry(a: CatalogModel, b: CatalogModel): boolean {
  return a.id === b.id && a.provider === b.provider && a.upstreamModel === b.upstreamModel && a.inputMicroPerMTok === b.inputMicroPerMTok &&
    a.outputMicroPerMTok === b.outputMicroPerMTok && a.cachedInputMicroPerMTok === b.cachedInputMicroPerMTok &&
    a.cacheWriteMicroPerMTok === b.cacheWriteMicroPerMTok && a.cacheWrite1hMicroPerMTok === b.cacheWrite1hMicroPerMTok &&
    a.maxOutputTokens === b.maxOutputTokens && a.enabled === b.enabled;
}

/** Admission found the catalog entry a request was estimated from changed (price, cap, routing, enabled) or gone. */
export class CatalogEntryChanged extends Error {
  constructor(readonly modelId: string) {
    super(`the catalog entry of ${modelId} changed`);
    this.name = 'CatalogEntryChanged';
  }
}

const MAX_REMEMBERED = 10_000;

export interface ModelsDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

export class ModelsService {
  private readonly lookups: MicroBatcher<string, CatalogModel | null>;
  /** Entries the proxy estimated from; admission checks each against the catalog (see AdmissionRequest.catalog). */
  private readonly remembered = new BoundedMap<string, CatalogModel>(MAX_REMEMBERED);

  constructor(private readonly deps: ModelsDeps) {
    // Concurrent lookups share one query.
    this.lookups = new MicroBatcher(
      async (ids) => {
        const rows = await this.deps.db('models').whereIn('id', [...new Set(ids)]);
        const byId = new Map(rows.map((r: Record<string, unknown>) => [r.id as string, modelFromRow(r)]));
        return ids.map((id) => byId.get(id) ?? null);
      },
      { maxBatch: 100, maxConcurrent: 1 },
    );
  }

  /** The catalog entry for a request, from the database (batched with concurrent lookups). */
  async lookup(id: string): Promise<CatalogModel | null> {
    const model = await this.lookups.submit(id);
    // Only servable entries are remembered: a refusal (unknown, disabled) is always judged on the catalog as it is.
    if (model?.enabled) this.remembered.set(model.id, model);
    else this.remembered.delete(id);
    return model;
  }

  /**
   * The catalog entry as last looked up by this instance, or looked up now. Only for a request whose admission
   * passes the entry along (AdmissionRequest.catalog): admission compares it with the catalog under the same
   * transaction and refuses with CatalogEntryChanged when it differs — then `lookup` gets the current entry.
   */
  recall(id: string): Promise<CatalogModel | null> {
    const model = this.remembered.get(id);
    return model ? Promise.resolve(model) : this.lookup(id);
  }


  async list(q: Queryable = this.deps.db): Promise<CatalogModel[]> {
    return (await q('models').orderBy('provider').orderBy('id')).map(modelFromRow);
  }

  async find(id: string, q: Queryable = this.deps.db): Promise<CatalogModel | null> {
    const row = await q('models').where({ id }).first();
    return row ? modelFromRow(row) : null;
  }

  async upsert(model: CatalogModel, actor: Actor): Promise<CatalogModel> {
    if (actor.role !== 'admin') throw forbidden();
    if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/.test(model.id)) throw badInput('A model id is 1–100 letters, digits and . _ : / -');
    if (!model.upstreamModel.trim() || model.upstreamModel.length > 100) throw badInput('The upstream model name is 1–100 characters.');
    for (const price of [model.inputMicroPerMTok, model.outputMicroPerMTok, model.cachedInputMicroPerMTok, model.cacheWriteMicroPerMTok, model.cacheWrite1hMicroPerMTok])
      if (price !== null && (!Number.isSafeInteger(price) || price < 0 || price > MAX_AMOUNT_MICRO)) throw badInput('Prices are non-negative AUD amounts.');
    if (!Number.isInteger(model.maxOutputTokens) || model.maxOutputTokens < 0 || model.maxOutputTokens > 10_000_000)
      throw badInput('The output cap is 0 to 10,000,000 tokens.');
    const now = this.deps.clock.now();
    const saved = await withTransaction(this.deps.db, async (tx) => {
      const before = await tx('models').where({ id: model.id }).first();
      const row = {
        provider: model.provider, upstream_model: model.upstreamModel.trim(), input_micro_per_mtok: model.inputMicroPerMTok,
        output_micro_per_mtok: model.outputMicroPerMTok, cached_input_micro_per_mtok: model.cachedInputMicroPerMTok,
        cache_write_micro_per_mtok: model.cacheWriteMicroPerMTok, cache_write_1h_micro_per_mtok: model.cacheWrite1hMicroPerMTok,
        max_output_tokens: model.maxOutputTokens, enabled: model.enabled, updated_at: now,
      };
      if (before) await tx('models').where({ id: model.id }).update(row);
      else await tx('models').insert({ id: model.id, ...row, created_at: now });
      await this.deps.audit.record(tx, actor, before ? 'model.update' : 'model.create', { type: 'model', id: model.id }, {
        ...row, updated_at: undefined, previous: before ? modelFromRow(before) : null,
      });
      return modelFromRow((await tx('models').where({ id: model.id }).first())!);
    });
    if (saved.enabled) this.remembered.set(saved.id, saved);
    else this.remembered.delete(saved.id);
    return saved;
  }
}
