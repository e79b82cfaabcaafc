import { galera } from './cluster.js';

/**
 * Brings the 3-node cluster up before the tier and down after it. A cluster that is already up (a developer's, left
 * running between runs) is used as it is and left running.
 */
export default function setup(): () => void {
  let ours = false;
  try {
    galera('status');
  } catch {
    galera('up');
    ours = true;
  }
  return () => {
    if (ours && process.env.GALERA_KEEP !== '1') galera('down');
  };
}
