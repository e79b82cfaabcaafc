// The agent load's counting helpers (bench/agents.ts): the MySQL command counter behind its statements-per-stream
// figures, and the CPU profile summary it gives for the top step's window.
import { describe, expect, it } from 'vitest';
import { commandCounter, splitStatements } from '../../bench/mysql-commands.js';
import { summariseCpuProfile } from '../../bench/cpu-profile.js';

function packet(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = seq;
  return Buffer.concat([head, payload]);
}
const query = (text: string) => packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(text, 'latin1')]));

describe('splitStatements', () => {
  it('splits a multi-statement query at semicolons outside quotes', () => {
    expect(splitStatements("START TRANSACTION; UPDATE t SET a = 'x;y' WHERE id = 1; INSERT INTO `a;b` VALUES (\"p;q\", 'it\\'s;'); COMMIT;")).toEqual([
      'START TRANSACTION',
      " UPDATE t SET a = 'x;y' WHERE id = 1",
      " INSERT INTO `a;b` VALUES (\"p;q\", 'it\\'s;')",
      ' COMMIT',
    ]);
  });
});

describe('commandCounter', () => {
  it('counts commands and statements by keyword, across packets split and joined in any chunks', () => {
    const counts: Record<string, number> = {};
    const read = commandCounter(counts);
    const bytes = Buffer.concat([
      query('START TRANSACTION; SELECT 1 FOR UPDATE; UPDATE k SET n = 1; COMMIT'),
      packet(1, Buffer.from('a reply-sequence packet, not a command')),
      query('select 2'),
      packet(0, Buffer.from([0x17, 1, 0, 0, 0])),
    ]);
    // One byte at a time: a packet's header and body arrive apart.
    for (let i = 0; i < bytes.length; i++) read(bytes.subarray(i, i + 1));
    expect(counts).toEqual({ commands: 3, statements: 6, begin: 1, select: 2, update: 1, commit: 1, execute: 1 });
  });
});

describe('summariseCpuProfile', () => {
  const node = (id: number, functionName: string, url: string) => ({ id, callFrame: { functionName, url, lineNumber: 0 } });
  const profile = {
    nodes: [node(1, '(idle)', ''), node(2, 'relay', 'file:///repo/src/proxy/relay.ts'), node(3, 'parse', 'file:///repo/node_modules/undici/lib/x.js')],
    startTime: 1000,
    endTime: 1400,
    samples: [2, 3, 2, 1],
    timeDeltas: [100, 100, 100, 100],
  };

  it('sums self time by place, counting only the samples inside the window', () => {
    const whole = summariseCpuProfile(profile, '/repo');
    expect(whole.byPlace).toEqual([
      { place: 'src/proxy/relay.ts', selfMs: 0.2, share: 2 / 3 },
      { place: 'undici', selfMs: 0.1, share: 1 / 3 },
    ]);
    expect(whole.idleShare).toBe(0.25);
    // Samples at 1100 (relay), 1200 (undici), 1300 (relay), 1400 (idle): the window [1150, 1250] holds one.
    const window = summariseCpuProfile(profile, '/repo', [1150, 1250]);
    expect(window.byPlace).toEqual([{ place: 'undici', selfMs: 0.1, share: 1 }]);
  });
});
