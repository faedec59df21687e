// What a ping round trip costs Node itself on this machine, with no XMPP on top: the floor under
// idle-steady.mjs. A bare server holds N plaintext connections and, like Vigil's watchdog at probeAfter 20 s,
// writes each one a ping of the same size every 20 s (N/20 a second, in one batch a second); a client in
// another process answers each with a reply of the same size as a client's. Prints the server's CPU a minute
// and per round trip over the window, after every connection has had a ping. With --tls, every connection is
// TLS, with the certificate and context Vigil generates: the floor under `idle-steady.mjs --tls`.
//   node bench/ping-floor.mjs [connections=10000] [windowSeconds=60] [--tls]
import { fork } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { vigilTlsContext } from './lib/tls-context.mjs';

const TLS = process.argv.includes('--tls');
const [N = 10000, WINDOW = 60] = process.argv.slice(2).filter((a) => a !== '--tls').slice(0, 2).map(Number);
const PROBE_AFTER = 20;
if (process.argv[2] !== 'client' && !(N >= PROBE_AFTER && N <= 19900 && WINDOW > 0 && WINDOW <= 600)) {
  console.error('usage: node bench/ping-floor.mjs [connections 20..19900] [windowSeconds 1..600] [--tls]');
  process.exit(2);
}

if (process.argv[2] === 'client') {
  const [port, n] = process.argv.slice(3, 5).map(Number);
  const reply = "<iq type='result' id='vigil-ping-1a2b' from='u1234@localhost/harness' to='localhost'/>";
  let open = 0;
  let started = 0;
  // A few hundred connects at a time, each batch after the last is up: the listen backlog never overflows.
  const more = () => {
    for (let j = 0; j < 200 && started < n; j++, started++) {
      const up = () => {
        if (++open === n) process.send('up');
        else if (open % 200 === 0) more();
      };
      const socket = TLS ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, up) : net.connect(port, '127.0.0.1', up);
      socket.setNoDelay(true);
      socket.on('data', () => socket.write(reply));
      socket.on('error', () => process.exit(1));
    }
  };
  more();
  process.on('disconnect', () => process.exit(0));
} else {
  const context = TLS ? await vigilTlsContext() : undefined;
  const sockets = [];
  const server = net.createServer((raw) => {
    raw.setNoDelay(true);
    const socket = context ? new tls.TLSSocket(raw, { isServer: true, secureContext: context }) : raw;
    socket.on('data', (chunk) => chunk.toString('utf8'));
    socket.on('error', () => undefined);
    if (context) socket.once('secure', () => sockets.push(socket));
    else sockets.push(socket);
  });
  await new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const client = fork(new URL(import.meta.url).pathname, ['client', String(server.address().port), String(N), ...(TLS ? ['--tls'] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const killer = setTimeout(() => client.kill('SIGKILL'), (WINDOW + 120) * 1000);
  const failed = new Promise((_, reject) => client.once('exit', (code) => reject(new Error(`ping-floor.mjs: the client exited (${code})`))));
  await Promise.race([new Promise((resolve) => client.once('message', resolve)), failed]);
  while (sockets.length < N) await new Promise((resolve) => setTimeout(resolve, 50));

  let k = 0;
  const perTick = N / PROBE_AFTER;
  const ticker = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const socket = sockets[k++ % N];
      socket.write(`<iq type='get' id='vigil-ping-${k.toString(36)}' from='localhost' to='u${k % N}@localhost/harness'><ping xmlns='urn:xmpp:ping'/></iq>`);
    }
  }, 1000);
  await new Promise((resolve) => setTimeout(resolve, PROBE_AFTER * 1000));
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, WINDOW * 1000));
  const used = process.cpuUsage(before);
  clearInterval(ticker);
  clearTimeout(killer);
  client.removeAllListeners('exit');
  client.kill();
  const per60 = (us) => +((us / 1e6) * (60 / WINDOW)).toFixed(2);
  console.log(JSON.stringify({
    bench: 'ping-floor', tls: TLS, connections: N, probeAfterSeconds: PROBE_AFTER, windowSeconds: WINDOW, pingsPer60s: Math.round((N * 60) / PROBE_AFTER),
    cpuPer60s: per60(used.user + used.system), userPer60s: per60(used.user), systemPer60s: per60(used.system),
    microsecondsPerPing: +((used.user + used.system) / (perTick * WINDOW)).toFixed(1),
  }));
  for (const socket of sockets) socket.destroy();
  server.close();
}
