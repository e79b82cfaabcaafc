import { isIP } from 'node:net';

/** What Express's `trust proxy` accepts from TRUST_PROXY: nothing, a hop count, or addresses / subnets / names. */
export type TrustProxy = false | number | string[];

const NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Parses TRUST_PROXY: `none` (or `false`, `0`) — no proxy, the peer's address is the client; a hop count (`1`,
 * `2`); or a comma-separated list of addresses, CIDR subnets and Express's names `loopback`, `linklocal`,
 * `uniquelocal`. `true` (trust every hop, so anyone can claim any address with X-Forwarded-For) is refused.
 * Returns an error message for a bad value.
 */
export function parseTrustProxy(raw: string): TrustProxy | { error: string } {
  const value = raw.trim().toLowerCase();
  if (value === 'none' || value === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) return Number(value) <= 10 ? Number(value) : { error: 'a hop count is at most 10' };
  if (value === 'true') return { error: '"true" would believe any X-Forwarded-For; give the proxies\' addresses or a hop count' };
  const entries = value.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) return { error: 'give none, a hop count, or proxy addresses' };
  for (const entry of entries) if (!NAMES.has(entry) && !isAddressOrSubnet(entry)) return { error: `"${entry}" is not an address, a CIDR subnet, loopback, linklocal or uniquelocal` };
  return entries;
}

/** An IPv4/IPv6 address or CIDR subnet (`10.0.0.0/8`, `fd00::/8`). */
export function isAddressOrSubnet(entry: string): boolean {
  const [address = '', prefix, extra] = entry.split('/');
  const version = isIP(address);
  if (!version || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}
