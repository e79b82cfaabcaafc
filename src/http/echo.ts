/** Longest piece of client input (a model id, a URL path, an unknown field name) quoted back in an error message. */
export const ECHO_MAX = 100;

/** Longest error message sent by the proxy or tRPC: bounds what any message can carry of the request. */
export const MESSAGE_MAX = 500;

/**
 * Client input as it may appear in an error message, in every door: at most `max` characters, control characters
 * replaced, so an error never reflects a whole request back (a pasted key, a megabyte of text, terminal escapes
 * for a log viewer). Header values are never quoted at all: they carry credentials.
 */
export function echo(input: string, max = ECHO_MAX): string {
  // eslint-disable-next-line no-control-regex
  const clean = input.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
