import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type LoadOptions } from '../config/load.js';
import { doctorCommand } from './doctor.js';
import { sessionsCommand } from './sessions.js';
import { userCommand } from './user.js';

const USAGE = `usage: vigil <command> [--config FILE]

  start                         run the server in the foreground
  user add USER@DOMAIN          add a user (password from stdin, or --password)
  user passwd USER@DOMAIN       change a password
  user delete USER@DOMAIN       delete a user and everything stored for them
  user list                     list users
  config check                  validate the configuration and print each problem
  sessions [--sort idle|jid] [--json]
                                list the running server's sessions (most idle first)
  doctor                        check config, certificate, ports, fd limit, kernel TCP settings
                                and a running server's sockets; exit 1 on any error

Every command reads --config FILE (or VIGIL_CONFIG) and VIGIL_* environment variables.`;

/** EX_CONFIG from sysexits.h: what `config check` and every command return for a bad configuration. */
const EX_CONFIG = 78;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, password: { type: 'string' }, sort: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 64;
  }
  const loadOptions: LoadOptions = { file: values.config };
  const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
  // doctor reports a bad configuration among its own findings, so it loads the file itself.
  if (command === 'doctor') return doctorCommand(loadOptions, io);
  let config;
  try {
    config = loadConfig(loadOptions);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) console.error(problem);
    return EX_CONFIG;
  }
  switch (command) {
    case 'start': {
      // Loaded only here: the other commands never need the server, and stay quick to start without it.
      const { startCommand } = await import('./start.js');
      await startCommand(config, loadOptions);
      return -1;
    }
    case 'user':
      return userCommand(config, rest, values.password, io);
    case 'sessions':
      return sessionsCommand(config, { sort: values.sort, json: values.json }, io);
    case 'config':
      if (rest[0] !== 'check') break;
      console.log(`${values.config ?? process.env.VIGIL_CONFIG ?? '(defaults)'}: ok`);
      return 0;
  }
  console.error(USAGE);
  return 64;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  },
);
