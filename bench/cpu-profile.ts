// A V8 .cpuprofile (node --cpu-prof) summed up: self time by place (a package under node_modules, a folder of src/,
// a node: module, or V8's own buckets such as the garbage collector) and the functions with the most self time.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}
export interface CpuProfileSummary {
  totalMs: number;
  idleShare: number;
  byPlace: Array<{ place: string; selfMs: number; share: number }>;
  topFunctions: Array<{ place: string; selfMs: number; share: number }>;
}

function placeOf(url: string, functionName: string, root: string): string {
  if (!url) return `(${functionName.replace(/^\(|\)$/g, '') || 'anonymous native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0]!;
  return url.replace(/^file:\/\//, '').replace(`${root}/`, '');
}

/** `windowUs`: only the samples taken in [from, to] (V8's profile clock is process.hrtime's, in µs), if given. */
export function summariseCpuProfile(profile: CpuProfile, root: string, windowUs?: [number, number], top = 15): CpuProfileSummary {
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      const delta = profile.timeDeltas![i] ?? 0;
      at += delta;
      if (!windowUs || (at >= windowUs[0] && at <= windowUs[1])) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
    });
  } else {
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    const per = (profile.endTime - profile.startTime) / hits;
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * per);
  }
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const n of profile.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (us === 0) continue;
    total += us;
    if (n.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const place = placeOf(n.callFrame.url, n.callFrame.functionName, root);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${place}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const busy = total - idle || 1;
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([place, us]) => ({ place, selfMs: us / 1000, share: us / busy }));
  return { totalMs: total / 1000, idleShare: idle / (total || 1), byPlace: rank(byPlace), topFunctions: rank(byFunction) };
}
