// PBKDF2-HMAC-SHA-256 at SCRAM's iterations, one derivation after another on the thread pool: our addon
// (native/pbkdf2) against node:crypto's. What each cold PLAIN login costs the server.
//   node bench/pbkdf2.mjs [derivations=2000] [iterations=4096]
import { pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { load } from './lib/dist.mjs';

const N = Number(process.argv[2] ?? 2000);
const ITERATIONS = Number(process.argv[3] ?? 4096);
if (!(N > 0 && N <= 100_000 && ITERATIONS > 0 && ITERATIONS <= 1_000_000)) {
  console.error('usage: node bench/pbkdf2.mjs [derivations 1..100000] [iterations 1..1000000]');
  process.exit(2);
}
const { pbkdf2Sha256, pbkdf2Sha256Implementation } = await load('c2s/sasl/pbkdf2.js');
if (pbkdf2Sha256Implementation !== 'native') {
  console.error('pbkdf2.mjs: native/pbkdf2 is not built (npm run build:native)');
  process.exit(1);
}
const nodePbkdf2 = promisify(pbkdf2);
const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');

async function microsEach(derive) {
  for (let i = 0; i < 20; i++) await derive(`warm-${i}`);
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await derive(`password-${i}`);
  return Number(process.hrtime.bigint() - start) / 1000 / N;
}

const native = await microsEach((pw) => pbkdf2Sha256(pw, salt, ITERATIONS));
const node = await microsEach((pw) => nodePbkdf2(pw, salt, ITERATIONS, 32, 'sha256'));
console.log(JSON.stringify({ bench: 'pbkdf2', derivations: N, iterations: ITERATIONS, nativeMicros: +native.toFixed(1), nodeMicros: +node.toFixed(1), speedup: +(node / native).toFixed(2) }));
