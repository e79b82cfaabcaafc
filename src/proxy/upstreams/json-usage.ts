/**
 * Finds the value of the LAST `"<key>": {…}` object in a JSON text and parses only that object. Providers put
 * `usage` at the end of a response, so a large response (thousands of embedding vectors) is never parsed whole.
 * A match inside a string value is impossible: quotes inside JSON strings are escaped.
 */
export function lastObjectValue(text: string, key: string): Record<string, unknown> | null {
  const needle = `"${key}"`;
  for (let at = text.lastIndexOf(needle); at >= 0; at = at > 0 ? text.lastIndexOf(needle, at - 1) : -1) {
    if (at > 0 && text[at - 1] === '\\') continue;
    let i = skipSpace(text, at + needle.length);
    if (text[i] !== ':') continue;
    i = skipSpace(text, i + 1);
    if (text[i] !== '{') continue;
    const end = closingBrace(text, i);
    if (end < 0) return null;
    try {
      const value: unknown = JSON.parse(text.slice(i, end + 1));
      return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }
  return null;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  return i;
}

/** Index of the brace closing the object that opens at `open`, skipping strings; -1 when the text ends first. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i;
  }
  return -1;
}

/** A non-negative integer count from an untrusted value (a provider's usage field), else 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/** A field of an untrusted nested object (`prompt_tokens_details.cached_tokens`), else undefined. */
export function field(value: unknown, key: string): unknown {
  return value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}
