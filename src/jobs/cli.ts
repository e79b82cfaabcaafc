import type { Config } from '../config.js';

// Placeholder until the jobs are built.
export async function runJobsFromCli(_config: Config, name: string | undefined): Promise<void> {
  throw new Error(`jobs are not built yet (asked for ${name ?? 'nothing'})`);
}
