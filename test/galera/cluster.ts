import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import { createDb, migrateLatest, type Db } from '../../src/db/knex.js';
import { randomBase62 } from '../../src/domain/ids.js';

/** The three nodes of test/galera/galera.sh, and the single MariaDB of the other tiers (for comparisons). */
export const NODE_PORTS = [3311, 3312, 3313] as const;
export const STANDALONE_PORT = 3306;

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'galera.sh');

/** `galera.sh up|down|status`; throws with its output unless it succeeded (status: unless all three are Synced). */
export function galera(command: 'up' | 'down' | 'status'): string {
  const r = spawnSync('bash', [script, command], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`galera.sh ${command} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The pid of node n's mariadbd (1-based), from `galera.sh status`. */
export function nodePid(n: 1 | 2 | 3): number {
  const r = spawnSync('bash', [script, 'status'], { encoding: 'utf8', timeout: 60_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith(`node${n} `));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`node${n} has no pid:\n${r.stdout}`);
  return pid;
}

const admin = (port: number) => knexFactory({ client: 'mysql2', connection: { host: '127.0.0.1', port, user: 'root', password: '' } });

export interface ClusterDb {
  name: string;
  /** One Db per node (index 0 = node 1). */
  nodes: Db[];
  /** The URL of the schema on node n (0-based). */
  url(node: number): string;
  /** Another Db on node n (0-based), closed by destroy(). */
  another(node: number, poolMax?: number): Db;
  destroy(): Promise<void>;
}

/**
 * A fresh schema on the cluster, migrated through node 1 (DDL replicates to every node before it returns: total
 * order isolation), and a Db on each node. `port` other than the cluster's: the same on one server (benchmarks).
 */
export async function createClusterDb(options: { ports?: readonly number[]; poolMax?: number } = {}): Promise<ClusterDb> {
  const ports = options.ports ?? NODE_PORTS;
  const name = `modelbridge_g_${randomBase62(10).toLowerCase()}`;
  const a = admin(ports[0]!);
  await a.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = (node: number) => `mysql://root@127.0.0.1:${ports[node % ports.length]}/${name}`;
  const opened: Db[] = [];
  const open = (node: number, poolMax = options.poolMax ?? 20) => {
    const db = createDb({ databaseUrl: url(node), poolMax });
    opened.push(db);
    return db;
  };
  const nodes = ports.map((_, i) => open(i));
  await migrateLatest(nodes[0]!);
  return {
    name,
    nodes,
    url,
    another: open,
    async destroy() {
      await Promise.allSettled(opened.map((db) => db.destroy()));
      await a.raw(`DROP DATABASE IF EXISTS \`${name}\``);
      await a.destroy();
    },
  };
}
