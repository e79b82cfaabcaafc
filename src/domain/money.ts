/**
 * Money is integer micro-AUD (1 AUD = 1_000_000) everywhere inside ModelBridge. JS numbers are exact integers up
 * to 2^53 (≈ 9 billion AUD in micro-AUD); every amount entering the system is capped well below that
 * (MAX_AMOUNT_MICRO) so sums of them stay exact. Conversions never go through floating point.
 */
export type Micro = number;

export const MICRO_PER_AUD = 1_000_000;
/** The largest single amount accepted from a user: 1 billion AUD. */
export const MAX_AMOUNT_MICRO: Micro = 1_000_000_000 * MICRO_PER_AUD;

const AUD_PATTERN = /^(-)?(\d{1,10})(?:\.(\d{1,6}))?$/;

/** Parses an AUD decimal string ("12.5", "0.000123") into micro-AUD; null when it is not one. */
export function parseAud(input: string): Micro | null {
  const match = AUD_PATTERN.exec(input.trim());
  if (!match) return null;
  const [, sign, whole, fraction = ''] = match;
  const micro = Number(whole) * MICRO_PER_AUD + Number(fraction.padEnd(6, '0'));
  return sign ? -micro : micro;
}

/** Formats micro-AUD as the API's AUD decimal string: no trailing zeros, up to 6 decimals. */
export function microToAud(micro: Micro): string {
  const sign = micro < 0 ? '-' : '';
  const abs = Math.abs(micro);
  const whole = Math.floor(abs / MICRO_PER_AUD);
  const fraction = String(abs % MICRO_PER_AUD).padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/** Formats micro-AUD for people: "A$12.50", with more decimals only when the amount needs them (A$0.0012). */
export function formatAud(micro: Micro): string {
  const sign = micro < 0 ? '-' : '';
  const abs = Math.abs(micro);
  const whole = Math.floor(abs / MICRO_PER_AUD);
  let fraction = String(abs % MICRO_PER_AUD).padStart(6, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${sign}A$${whole.toLocaleString('en-AU')}.${fraction}`;
}

/**
 * Converts a database value (mysql2 returns BIGINT and SUM() as strings; SQLite returns numbers) into micro-AUD,
 * refusing anything that is not an exact safe integer rather than silently losing precision.
 */
export function toMicro(value: unknown): Micro {
  if (value === null || value === undefined) return 0;
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : (value as number);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not an exact micro-AUD amount: ${String(value)}`);
  return n;
}

export function toMicroOrNull(value: unknown): Micro | null {
  return value === null || value === undefined ? null : toMicro(value);
}

/**
 * Cost of tokens at a price in micro-AUD per million tokens. Rounding rule: the exact product is rounded UP to
 * the next whole micro-AUD, once per request for each direction (input, output: requestCost), so a request is never
 * billed less than its true cost and a tiny request still costs at least one micro-AUD when its price is non-zero.
 */
export function tokenCost(tokens: number, microPerMillion: Micro): Micro {
  return tokensCost([[tokens, microPerMillion]]);
}

/**
 * Cost of several kinds of tokens, each at its own price, rounded UP once for the sum (the input side of a request:
 * fresh input, cache reads and writes). One rounding, not one per kind, so splitting tokens into kinds that are
 * cheaper never costs more than leaving them all at the dearer price, and no request pays a rounding per kind.
 */
export function tokensCost(parts: ReadonlyArray<readonly [tokens: number, microPerMillion: Micro]>): Micro {
  let product = 0n;
  // Every factor is bounded (tokens < 2^31, price < 2^40), so BigInt keeps the sum of products exact.
  for (const [tokens, price] of parts) if (tokens > 0 && price > 0) product += BigInt(tokens) * BigInt(price);
  return Number((product + 999_999n) / 1_000_000n);
}
