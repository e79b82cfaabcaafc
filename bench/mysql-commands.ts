// What a MySQL client asks of the server, counted from the client → server bytes alone (bench/sql-counter.ts): every
// packet with sequence id 0 starts a command (a round trip); a COM_QUERY (0x03) may hold several statements (the
// metering's one-round-trip batches), so its text is split at semicolons outside quotes and each statement is classed
// by its first keyword; COM_STMT_EXECUTE (0x17) counts as one "execute" statement.

const KEYWORDS = new Set(['select', 'insert', 'update', 'delete', 'begin', 'commit', 'rollback', 'set']);

/** The statements of one query text: split at `;` outside '…', "…" and `…` (backslash escapes inside quotes). */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let quote = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === ';') {
      out.push(text.slice(from, i));
      from = i + 1;
    }
  }
  out.push(text.slice(from));
  return out.filter((s) => s.trim() !== '');
}

/**
 * A reader of the client's byte stream, in chunks as they arrive: it reassembles packets (3-byte little-endian
 * length, 1-byte sequence id) and adds each command to `counts` (commands, statements, and one count per keyword).
 */
export function commandCounter(counts: Record<string, number>): (chunk: Buffer) => void {
  const bump = (name: string) => (counts[name] = (counts[name] ?? 0) + 1);
  const classify = (payload: Buffer) => {
    bump('commands');
    const command = payload[0];
    if (command === 0x03) {
      for (const statement of splitStatements(payload.subarray(1).toString('latin1'))) {
        bump('statements');
        const keyword = (/^\s*([A-Za-z]+)/.exec(statement)?.[1] ?? 'other').toLowerCase();
        bump(keyword === 'start' ? 'begin' : KEYWORDS.has(keyword) ? keyword : 'other');
      }
    } else if (command === 0x17) {
      bump('statements');
      bump('execute');
    } else if (command === 0x0e) bump('ping');
    else bump('other_command');
  };
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const length = pending.readUIntLE(0, 3);
      if (pending.length < 4 + length) break;
      if (pending[3] === 0 && length > 0) classify(pending.subarray(4, 4 + length));
      pending = pending.subarray(4 + length);
    }
  };
}
