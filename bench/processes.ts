// What every bench harness needs around the processes it starts: a registry that kills only those (on exit and
// Ctrl-C), a free loopback port, and a wait for a server to answer.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

const children: ChildProcess[] = [];

export function track<T extends ChildProcess>(child: T): T {
  children.push(child);
  return child;
}

/** Only what this run started. */
export function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}
