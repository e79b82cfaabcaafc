import type { Db, Queryable } from '../../db/knex.js';
import { BoundedMap } from '../../db/bounded-map.js';
import { MicroBatcher } from '../../db/micro-batcher.js';
import { toBool, toInt } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, forbidden, isDuplicateKeyError } from '../errors.js';
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

/** A catalog entry with the other names it answers to (what models.list and GET /v1/models show). */
export type CatalogListing = CatalogModel & { aliases: string[] };

/** The rule for every name a client may ask for: entry ids and aliases alike. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;
const MAX_ALIASES = 20;

/** A dated snapshot name: `<name>-YYYYMMDD` (Anthropic's form) or `<name>-YYYY-MM-DD` (OpenAI's). */
const SNAPSHOT_SUFFIX = /-(?:\d{8}|\d{4}-\d{2}-\d{2})$/;

/** The name a dated snapshot name is a snapshot of (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`), or null. */
export function snapshotBase(name: string): string | null {
  const suffix = SNAPSHOT_SUFFIX.exec(name);
  return suffix && suffix.index > 0 ? name.slice(0, suffix.index) : null;
}

/**
 * The model name sent upstream for a request that asked for `requested` and resolved to `model`. A dated snapshot
 * of the entry's upstream model goes as asked: the client pinned that snapshot, and it is priced as its entry. Any
 * other name — the id, an alias, a snapshot of an entry whose upstream name is not its id — goes as upstreamModel.
 */
export function upstreamModelFor(model: CatalogModel, requested: string): string {
  return snapshotBase(requested) === model.upstreamModel ? requested : model.upstreamModel;
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
/**
 * How long an instance trusts what an alias or snapshot name resolved to. The entry itself (price, cap, routing,
 * enabled) is checked at admission on every request; only which entry a name means can be this stale on the
 * instances where an admin did not make the change.
 */
const NAME_RECHECK_MS = 5_000;

export interface ModelsDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

export class ModelsService {
  private readonly lookups: MicroBatcher<string, CatalogModel | null>;
  /** Entries the proxy estimated from; admission checks each against the catalog (see AdmissionRequest.catalog). */
  private readonly remembered = new BoundedMap<string, CatalogModel>(MAX_REMEMBERED);
  /** Alias and snapshot names → the entry id they resolved to, and when. */
  private readonly resolved = new BoundedMap<string, { id: string; at: number }>(MAX_REMEMBERED);

  constructor(private readonly deps: ModelsDeps) {
    // Concurrent lookups share one query, which finds each name as an id, an alias or a dated snapshot of an id.
    this.lookups = new MicroBatcher((names) => this.resolveNames(names), { maxBatch: 100, maxConcurrent: 1 });
  }

  private async resolveNames(names: string[]): Promise<Array<CatalogModel | null>> {
    const asked = [...new Set(names)];
    const ids = new Set(asked);
    for (const name of asked) {
      const base = snapshotBase(name);
      if (base) ids.add(base);
    }
    const rows: Array<Record<string, unknown>> = await this.deps.db('models')
      .leftJoin('model_aliases', 'model_aliases.model_id', 'models.id')
      .select('models.*', 'model_aliases.alias as matched_alias')
      .whereIn('models.id', [...ids])
      .orWhereIn('model_aliases.alias', asked);
    const byId = new Map<string, CatalogModel>();
    const byAlias = new Map<string, CatalogModel>();
    for (const row of rows) {
      const model = modelFromRow(row);
      byId.set(model.id, model);
      if (typeof row.matched_alias === 'string') byAlias.set(row.matched_alias, model);
    }
    // Ids and aliases never collide (upsert refuses it); the snapshot reading comes last, so an entry whose own id
    // ends in a date is served as itself.
    return names.map((name) => byId.get(name) ?? byAlias.get(name) ?? byId.get(snapshotBase(name) ?? '') ?? null);
  }

  /** The catalog entry a request's model name means, from the database (batched with concurrent lookups). */
  async lookup(name: string): Promise<CatalogModel | null> {
    const model = await this.lookups.submit(name);
    // Only servable entries are remembered: a refusal (unknown, disabled) is always judged on the catalog as it is.
    if (model?.enabled) {
      this.remembered.set(model.id, model);
      if (model.id !== name) this.resolved.set(name, { id: model.id, at: this.deps.clock.now().getTime() });
    } else {
      this.remembered.delete(model?.id ?? name);
      this.resolved.delete(name);
    }
    return model;
  }

  /**
   * The catalog entry as last looked up by this instance, or looked up now. Only for a request whose admission
   * passes the entry along (AdmissionRequest.catalog): admission compares it with the catalog under the same
   * transaction and refuses with CatalogEntryChanged when it differs — then `lookup` gets the current entry.
   */
  recall(name: string): Promise<CatalogModel | null> {
    const model = this.remembered.get(name) ?? this.rememberedByName(name);
    return model ? Promise.resolve(model) : this.lookup(name);
  }

  private rememberedByName(name: string): CatalogModel | undefined {
    const resolved = this.resolved.get(name);
    if (!resolved || this.deps.clock.now().getTime() - resolved.at > NAME_RECHECK_MS) return undefined;
    return this.remembered.get(resolved.id);
  }

  async list(q: Queryable = this.deps.db): Promise<CatalogListing[]> {
    const models = (await q('models').orderBy('provider').orderBy('id')).map(modelFromRow);
    const aliases = await this.aliasesByModel(q);
    return models.map((m) => ({ ...m, aliases: aliases.get(m.id) ?? [] }));
  }

  private async aliasesByModel(q: Queryable, modelId?: string): Promise<Map<string, string[]>> {
    const all = q('model_aliases').orderBy('alias');
    const rows = await (modelId === undefined ? all : all.where({ model_id: modelId }));
    const byModel = new Map<string, string[]>();
    for (const r of rows as Array<{ alias: string; model_id: string }>) byModel.set(r.model_id, [...(byModel.get(r.model_id) ?? []), r.alias]);
    return byModel;
  }

  async find(id: string, q: Queryable = this.deps.db): Promise<CatalogModel | null> {
    const row = await q('models').where({ id }).first();
    return row ? modelFromRow(row) : null;
  }

  /**
   * Creates or edits an entry. `aliases`, when given, replaces the entry's aliases; omitted, they stay. Every name
   * is unique across the catalog — ids and aliases together — so a name always means one entry.
   */
  async upsert(model: CatalogModel & { aliases?: readonly string[] }, actor: Actor): Promise<CatalogListing> {
    if (actor.role !== 'admin') throw forbidden();
    if (!MODEL_NAME.test(model.id)) throw badInput('A model id is 1–100 letters, digits and . _ : / -');
    if (!model.upstreamModel.trim() || model.upstreamModel.length > 100) throw badInput('The upstream model name is 1–100 characters.');
    for (const price of [model.inputMicroPerMTok, model.outputMicroPerMTok, model.cachedInputMicroPerMTok, model.cacheWriteMicroPerMTok, model.cacheWrite1hMicroPerMTok])
      if (price !== null && (!Number.isSafeInteger(price) || price < 0 || price > MAX_AMOUNT_MICRO)) throw badInput('Prices are non-negative AUD amounts.');
    if (!Number.isInteger(model.maxOutputTokens) || model.maxOutputTokens < 0 || model.maxOutputTokens > 10_000_000)
      throw badInput('The output cap is 0 to 10,000,000 tokens.');
    const aliases = model.aliases === undefined ? undefined : validateAliases(model.id, model.aliases);
    const now = this.deps.clock.now();
    let saved: { entry: CatalogModel; aliases: string[] };
    try {
      saved = await withTransaction(this.deps.db, async (tx) => {
        const before = await tx('models').where({ id: model.id }).first();
        if (!before && (await tx('model_aliases').where({ alias: model.id }).first())) throw conflict(`'${model.id}' is already an alias of another model.`);
        const aliasesBefore = (await this.aliasesByModel(tx, model.id)).get(model.id) ?? [];
        const row = {
          provider: model.provider, upstream_model: model.upstreamModel.trim(), input_micro_per_mtok: model.inputMicroPerMTok,
          output_micro_per_mtok: model.outputMicroPerMTok, cached_input_micro_per_mtok: model.cachedInputMicroPerMTok,
          cache_write_micro_per_mtok: model.cacheWriteMicroPerMTok, cache_write_1h_micro_per_mtok: model.cacheWrite1hMicroPerMTok,
          max_output_tokens: model.maxOutputTokens, enabled: model.enabled, updated_at: now,
        };
        if (before) await tx('models').where({ id: model.id }).update(row);
        else await tx('models').insert({ id: model.id, ...row, created_at: now });
        if (aliases) await replaceAliases(tx, model.id, aliases, now);
        await this.deps.audit.record(tx, actor, before ? 'model.update' : 'model.create', { type: 'model', id: model.id }, {
          ...row, updated_at: undefined, aliases: aliases ?? aliasesBefore, previous: before ? { ...modelFromRow(before), aliases: aliasesBefore } : null,
        });
        const entry = modelFromRow((await tx('models').where({ id: model.id }).first())!);
        return { entry, aliases: aliases ? [...aliases].sort() : aliasesBefore };
      });
    } catch (err) {
      // Two admins claiming the same alias at once: the primary key refuses the second.
      if (isDuplicateKeyError(err)) throw conflict('That name is already taken by another model or alias.');
      throw err;
    }
    if (saved.entry.enabled) this.remembered.set(saved.entry.id, saved.entry);
    else this.remembered.delete(saved.entry.id);
    // Aliases may have moved: this instance forgets what names meant; the others recheck within NAME_RECHECK_MS.
    this.resolved.clear();
    return { ...saved.entry, aliases: saved.aliases };
  }
}

function validateAliases(id: string, aliases: readonly string[]): string[] {
  if (aliases.length > MAX_ALIASES) throw badInput(`A model has at most ${MAX_ALIASES} aliases.`);
  for (const alias of aliases) if (!MODEL_NAME.test(alias)) throw badInput('An alias is 1–100 letters, digits and . _ : / -');
  if (new Set(aliases).size !== aliases.length) throw badInput('An alias is listed twice.');
  if (aliases.includes(id)) throw badInput('An alias must differ from the model id.');
  return [...aliases];
}

/** Makes `aliases` the entry's aliases, refusing a name that is another entry's id or alias. */
async function replaceAliases(tx: Queryable, modelId: string, aliases: string[], now: Date): Promise<void> {
  if (aliases.length) {
    const asId = await tx('models').whereIn('id', aliases).first();
    if (asId) throw conflict(`'${asId.id as string}' is already a model id.`);
    const elsewhere = await tx('model_aliases').whereIn('alias', aliases).whereNot({ model_id: modelId }).first();
    if (elsewhere) throw conflict(`'${elsewhere.alias as string}' is already an alias of ${elsewhere.model_id as string}.`);
  }
  await tx('model_aliases').where({ model_id: modelId }).delete();
  if (aliases.length) await tx('model_aliases').insert(aliases.map((alias) => ({ alias, model_id: modelId, created_at: now })));
}
