import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** How long a fetched key set is trusted before it is fetched again. */
const KEY_SET_TTL_MS = 60 * 60 * 1000;
/**
 * An unknown key identifier refreshes the set (the service rotates keys, announcing the new one), but at most this
 * often: forged reports naming made-up identifiers must not turn us into a fetch loop against the key set URL.
 */
const UNKNOWN_ID_REFRESH_MS = 60 * 1000;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_KEY_SET_BYTES = 256 * 1024;

export class KeySetUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySetUnavailable';
  }
}

/**
 * The public keys a secret scanning service signs its reports with, from its published key set
 * (`{public_keys: [{key_identifier, key (PEM), is_current}]}`, GitHub's format), fetched from `url` (https:// or a
 * file:// path), cached, refreshed when it is old or a report names a key it does not hold. Only ECDSA P-256 keys
 * are taken: that is what the reports are signed with, and a key of another kind could not verify them anyway.
 */
export class ScanningKeySet {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = -Infinity;
  private loading: Promise<void> | null = null;
  /** How many times the set was fetched (tests check the refresh is bounded). */
  fetches = 0;

  constructor(private readonly url: string, private readonly now: () => number = Date.now) {}

  /** True when `signature` (base64 DER ECDSA over SHA-256) of `body` verifies with the key named `identifier`. */
  async verify(identifier: string, signature: string, body: Buffer): Promise<boolean> {
    const key = await this.keyFor(identifier);
    if (!key) return false;
    try {
      return verify('sha256', body, { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  private async keyFor(identifier: string): Promise<KeyObject | null> {
    const age = this.now() - this.fetchedAt;
    if (age > KEY_SET_TTL_MS || (!this.keys.has(identifier) && age > UNKNOWN_ID_REFRESH_MS)) await this.refresh();
    return this.keys.get(identifier) ?? null;
  }

  /** Concurrent reports share one fetch. A failed fetch keeps the keys held so far. */
  private async refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  private async load(): Promise<void> {
    this.fetches++;
    let keys: Map<string, KeyObject>;
    try {
      keys = parseKeySet(await readKeySet(this.url));
    } catch (err) {
      // Tried just now: the next report waits out UNKNOWN_ID_REFRESH_MS rather than hammering a failing URL.
      if (this.keys.size > 0) this.fetchedAt = this.now() - KEY_SET_TTL_MS + UNKNOWN_ID_REFRESH_MS;
      throw new KeySetUnavailable(`The secret scanning key set could not be read: ${(err as Error).message}`);
    }
    this.keys = keys;
    this.fetchedAt = this.now();
  }
}

async function readKeySet(url: string): Promise<string> {
  if (url.startsWith('file:')) return readFile(fileURLToPath(url), 'utf8');
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_KEY_SET_BYTES) throw new Error('the key set is too large');
  return text;
}

/** The P-256 keys of a key set document, by identifier; entries that are not such keys are skipped. */
export function parseKeySet(text: string): Map<string, KeyObject> {
  const doc = JSON.parse(text) as { public_keys?: unknown } | null;
  if (!Array.isArray(doc?.public_keys)) throw new Error('the key set has no public_keys list');
  const keys = new Map<string, KeyObject>();
  for (const entry of doc.public_keys as Array<{ key_identifier?: unknown; key?: unknown }>) {
    if (typeof entry?.key_identifier !== 'string' || typeof entry.key !== 'string') continue;
    try {
      const key = createPublicKey(entry.key);
      if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') keys.set(entry.key_identifier, key);
    } catch {
      // Not a PEM public key: skipped, like a key of another kind.
    }
  }
  return keys;
}
