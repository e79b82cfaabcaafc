import { setImmediate as nextTurn } from 'node:timers/promises';

/** The tokenizers of OpenAI's models: o200k_base since gpt-4o (gpt-4o, 4.1, 4.5, 5, the o-series), cl100k_base before. */
export type OpenAiEncoding = 'o200k_base' | 'cl100k_base';

/** gpt-3.5 and gpt-4 (not gpt-4o, gpt-4.1, gpt-4.5), also as a fine-tune (`ft:gpt-4-…`) or behind a prefix (`openai/gpt-4`). */
const CL100K_MODELS = /(?:^|[/:])(?:gpt-3\.5|gpt-35|gpt-4(?:$|[-:]))/;

/** Every model not known to be older is taken for a newer one; a foreign model's count is bounded by its chunks too. */
export function encodingOf(upstreamModel: string): OpenAiEncoding {
  return CL100K_MODELS.test(upstreamModel) ? 'cl100k_base' : 'o200k_base';
}

type Counter = (text: string) => number;
const counters = new Map<OpenAiEncoding, Promise<Counter>>();

/**
 * Loaded on the first early end, not at start: the rank tables take a few hundred milliseconds and some tens of MB,
 * and a stream that ends normally never needs them. Special-token text (`<|endoftext|>`) counts as ordinary text.
 */
function counter(encoding: OpenAiEncoding): Promise<Counter> {
  let loading = counters.get(encoding);
  if (!loading) {
    loading = (encoding === 'cl100k_base' ? import('gpt-tokenizer/encoding/cl100k_base') : import('gpt-tokenizer/encoding/o200k_base'))
      .then((tokenizer) => {
        const options = { disallowedSpecial: new Set<string>() };
        return (text: string) => tokenizer.countTokens(text, options);
      });
    loading.catch(() => counters.delete(encoding));
    counters.set(encoding, loading);
  }
  return loading;
}

/** Text is counted in windows of about this many characters: BPE is quadratic in the length of one word. */
export const WINDOW_CHARS = 2_048;
/** Windows counted between two turns of the event loop, so a long text does not hold up other requests. */
const WINDOWS_PER_TURN = 8;

/**
 * The number of tokens of `text` in `encoding`, or `limit` once the count reaches it (no need to count further:
 * the charge is capped there). The text is cut into windows at whitespace where it can be (a cut between words
 * changes nothing: the tokenizer splits there first); a window without whitespace is cut where it is full, which
 * can only add tokens.
 */
export async function countTokens(text: string, encoding: OpenAiEncoding, limit = Number.POSITIVE_INFINITY): Promise<number> {
  if (text.length === 0) return 0;
  const count = await counter(encoding);
  let tokens = 0;
  for (let start = 0, windows = 0; start < text.length && tokens < limit; windows++) {
    const end = windowEnd(text, start);
    tokens += count(text.slice(start, end));
    start = end;
    if (windows % WINDOWS_PER_TURN === WINDOWS_PER_TURN - 1 && start < text.length) await nextTurn();
  }
  return Math.min(tokens, limit);
}

function windowEnd(text: string, start: number): number {
  const full = start + WINDOW_CHARS;
  if (full >= text.length) return text.length;
  const space = text.lastIndexOf(' ', full);
  const newline = text.lastIndexOf('\n', full);
  const cut = Math.max(space, newline);
  if (cut > start + WINDOW_CHARS / 2) return cut;
  // never between the two halves of a surrogate pair
  const code = text.charCodeAt(full - 1);
  return code >= 0xd800 && code <= 0xdbff ? full - 1 : full;
}

/**
 * An upper bound of the output tokens a stream that ended early carried: the generated text of each kind (content,
 * tool arguments, …) counted on its own with the model's tokenizer, so no token is merged across two of them — or
 * the number of deltas that carried text when that is more (a model may emit a tokenisation that is not the
 * tokenizer's own, and each delta is at least one token); never more than `cap`.
 */
export async function generatedTokensBound(generated: Map<string, string[]>, deltas: number, encoding: OpenAiEncoding, cap: number): Promise<number> {
  let tokens = 0;
  for (const parts of generated.values()) {
    if (tokens >= cap) break;
    tokens += await countTokens(parts.join(''), encoding, cap - tokens);
  }
  return Math.min(cap, Math.max(tokens, deltas));
}
