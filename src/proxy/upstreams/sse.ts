/** Server-sent events, as little as the proxy needs: split a byte stream into events, read an event's fields. */

const BOUNDARY = /\r?\n\r?\n/g;

/**
 * Splits decoded stream text into complete events. An event split across network chunks is held back until its
 * blank line arrives; everything else is handed out at once, so nothing waits longer than its own event.
 */
export class SseSplitter {
  private pending = '';

  push(text: string): string[] {
    const buffer = this.pending ? this.pending + text : text;
    const events: string[] = [];
    let start = 0;
    BOUNDARY.lastIndex = 0;
    for (let m = BOUNDARY.exec(buffer); m; m = BOUNDARY.exec(buffer)) {
      if (m.index > start) events.push(buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.pending = buffer.slice(start);
    return events;
  }

  /** Text after the last complete event (a stream that ended without its blank line). */
  rest(): string {
    return this.pending;
  }
}

/** The `event:` name of an event, or '' when it has none. */
export function eventName(event: string): string {
  if (!event.startsWith('event:')) return '';
  const end = event.indexOf('\n');
  return event.slice(6, end < 0 ? undefined : end).trim();
}

/** The JSON of an event's `data:` lines, or undefined when there is none or it is not JSON. */
export function eventData(event: string): any {
  let data = '';
  for (const line of event.split('\n')) {
    if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5).replace(/\r$/, '');
  }
  if (!data) return undefined;
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/**
 * The text of a JSON string whose body (between its quotes, escapes as they are) was matched in an event without
 * parsing the event: the body itself unless it has escapes.
 */
export function jsonStringText(body: string): string {
  if (!body.includes('\\')) return body;
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    return body;
  }
}
