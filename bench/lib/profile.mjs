// A V8 CPU profile (the inspector's Profiler.stop) summed up by where the main thread's time went: by
// origin (Vigil, its dependencies, Node's own JavaScript, V8's GC, native code) and by function, each as
// microseconds per unit of work (a ping round trip, a message) so two builds can be set side by side.
import { basename } from 'node:path';

/** Self time per profile node, in µs: each sample is charged the interval that follows it. */
function selfTimes(profile) {
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  return self;
}

function origin({ functionName, url }) {
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)' || url === '') return 'native';
  if (url.startsWith('node:')) return 'node';
  if (url.includes('/node_modules/')) return 'dependencies';
  if (url.includes('/dist/')) return 'vigil';
  return 'bench';
}

/**
 * { busyMs, byOrigin: {origin: µs per unit}, top: [{fn, origin, us}] }, for `units` units of work. Idle time
 * is left out of busyMs and of the shares.
 */
export function summarize(profile, units, topN = 25) {
  const self = selfTimes(profile);
  const byOrigin = {};
  const byFunction = new Map();
  let busy = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id);
    if (!us) continue;
    const where = origin(node.callFrame);
    if (where === 'idle') continue;
    busy += us;
    byOrigin[where] = (byOrigin[where] ?? 0) + us;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim();
    const entry = byFunction.get(fn) ?? { fn, origin: where, us: 0 };
    entry.us += us;
    byFunction.set(fn, entry);
  }
  const per = (us) => +(us / units).toFixed(2);
  return {
    busyMs: Math.round(busy / 1000),
    perUnitMicroseconds: per(busy),
    byOrigin: Object.fromEntries(Object.entries(byOrigin).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v)])),
    top: [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, topN).map((e) => ({ ...e, us: per(e.us) })),
  };
}
