// `npm run bench`: every benchmark in turn (never two at once: the machine has 2 cores), one JSON line
// each. Long: about 45 minutes (the soak alone takes 10). Figures go in the issue notes; no test depends on them.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const root = process.getuid?.() === 0;
const benches = [
  ['parser-throughput.mjs'],
  ['pbkdf2.mjs'],
  ['watchdog-tick.mjs', '10000,100000,1000000', '50'],
  ['login-idle.mjs', '1000', '0', '3'],
  ['login-idle.mjs', '10000', '60', '1'],
  ['roster-login.mjs', '500', '5'],
  ['throughput.mjs', '50', '20', '3'],
  ['sm.mjs', '50', '20', '5000'],
  ['s2s.mjs', '20', '50', '300000', '60'],
  ['websocket.mjs', '10000', '60'],
  ['tls.mjs', '10000', '30'],
  ['tls-floor.mjs', '10000'],
  ['idle-steady.mjs', '10000'],
  ['idle-steady.mjs', '10000', '--tls'],
  ['ping-floor.mjs', '10000', '60'],
  ['ping-floor.mjs', '10000', '60', '--tls'],
  ['scaling.mjs', '1000,10000,19900', '30'],
  ['soak.mjs', '5000', '600'],
  ['attacks.mjs'],
  ['attacks.mjs', 'flood', '--limit-loopback'],
  ...(root ? [['blackhole.mjs', '1000', '20', '10']] : []),
];
let failed = 0;
for (const [script, ...args] of benches) {
  const r = spawnSync(process.execPath, ['--expose-gc', here(script), ...args], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
  if (r.status !== 0) {
    failed++;
    console.error(`${script} failed (${r.status ?? r.signal})`);
  }
}
if (!root) console.error('blackhole.mjs skipped: it needs root for network namespaces');
process.exit(failed ? 1 : 0);
