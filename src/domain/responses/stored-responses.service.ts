import type { Db } from '../../db/knex.js';
import { toInt } from '../../db/rows.js';
import type { KeyIdentity } from '../billing/metering.service.js';
import type { Clock } from '../clock.js';

/** A response created through ModelBridge, as recorded at its settlement. */
export interface StoredResponse {
  responseId: string;
  keyId: string;
  ownerId: string;
  teamId: string | null;
  model: string;
  /** Input + output tokens of the response: the most context a request chaining on it adds (see the migration). */
  contextTokens: number;
}

/**
 * Who may touch a stored response: the account that paid for it. A team key's response belongs to the team (any of
 * its keys may read, delete or chain on it); a personal key's to its user's personal keys. Never across the two:
 * a team's responses are not its members' own, nor the reverse.
 */
export function belongsTo(response: Pick<StoredResponse, 'ownerId' | 'teamId'>, key: Pick<KeyIdentity, 'ownerId' | 'teamId'>): boolean {
  if (response.teamId !== null) return response.teamId === key.teamId;
  return key.teamId === null && response.ownerId === key.ownerId;
}

/** A plausible upstream response id: what the table's key holds, and nothing that could be anything else. */
const RESPONSE_ID = /^[A-Za-z0-9_-]{1,191}$/;

export function isResponseId(value: unknown): value is string {
  return typeof value === 'string' && RESPONSE_ID.test(value);
}

/**
 * The record of the upstream response ids of responses created through ModelBridge. Stored responses live in the
 * operator's upstream account, where the operator's credential can read any of them; the proxy forwards a read,
 * a delete or a chain (previous_response_id) only for an id recorded here for the caller's own account.
 */
export class StoredResponsesService {
  constructor(private readonly deps: { db: Db; clock: Clock }) {}

  /** Recorded once per id (a replayed settlement records nothing new). */
  async record(r: { responseId: string; requestId: string; key: KeyIdentity; model: string; contextTokens: number }): Promise<void> {
    if (!isResponseId(r.responseId)) return;
    await this.deps.db('stored_responses')
      .insert({
        response_id: r.responseId,
        request_id: r.requestId,
        key_id: r.key.id,
        owner_id: r.key.ownerId,
        team_id: r.key.teamId,
        model: r.model,
        context_tokens: Math.max(0, Math.floor(r.contextTokens)),
        created_at: this.deps.clock.now(),
      })
      .onConflict('response_id')
      .ignore();
  }

  /** The response if it was created through ModelBridge by the key's own account (belongsTo), else null. */
  async findFor(responseId: string, key: Pick<KeyIdentity, 'ownerId' | 'teamId'>): Promise<StoredResponse | null> {
    if (!isResponseId(responseId)) return null;
    const row = await this.deps.db('stored_responses').where({ response_id: responseId }).first();
    if (!row) return null;
    const response: StoredResponse = {
      responseId: row.response_id as string,
      keyId: row.key_id as string,
      ownerId: row.owner_id as string,
      teamId: (row.team_id as string | null) ?? null,
      model: row.model as string,
      contextTokens: toInt(row.context_tokens),
    };
    return belongsTo(response, key) ? response : null;
  }

  /** After the upstream deleted it: the id no longer names anything to read or chain on. */
  async forget(responseId: string): Promise<void> {
    await this.deps.db('stored_responses').where({ response_id: responseId }).delete();
  }
}
