import { schema } from '../../src/config/schema';
import { loadConfig } from '../../src/config/load';
import { CONNECTION_KINDS, type Config, type ConfigOverrides, type ConnectionKind, type ProbeKind, type WatchdogPolicy } from '../../src/config/types';

/**
 * Config is derived from the schema. The type-level half of this file is checked by `npm run typecheck`
 * (ts-jest here does not type-check); the run-time half shows the values match those types.
 */

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(proof: Equal<A, B>): Equal<A, B> => proof;

// Each format maps to what loadConfig returns.
same<Config['watchdog']['interval'], number>(true);
same<Config['c2s']['maxStanzaSize'], number>(true);
same<Config['listeners']['c2s']['port'], number>(true);
same<Config['limits']['maxSessions'], number>(true);
same<Config['c2s']['allowPlainWithoutTls'], boolean>(true);
same<Config['domain'], string>(true);
same<Config['storage']['driver'], 'sqlite' | 'postgres'>(true);
same<Config['log']['level'], 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>(true);
// The names the rest of the code imports.
same<ConnectionKind, 'c2s' | 'websocket' | 's2sIn' | 's2sOut'>(true);
same<Config['watchdog']['s2sIn']['probe'], 'whitespace' | 'none'>(true);
same<ProbeKind, 'xmpp-ping' | 'whitespace' | 'websocket-ping' | 'none'>(true);
same<Config['watchdog']['websocket']['probe'], 'websocket-ping' | 'xmpp-ping' | 'none'>(true);
same<keyof WatchdogPolicy, keyof typeof schema.watchdog.c2s>(true);
same<keyof Config, keyof typeof schema>(true);
// Overrides are written as in the file: durations as strings (or 0), partial at every depth.
same<NonNullable<NonNullable<NonNullable<ConfigOverrides['watchdog']>['c2s']>['probeAfter']>, string | 0>(true);

it('CONNECTION_KINDS lists the watchdog kinds of the schema: c2s, websocket, s2sIn and s2sOut', () => {
  expect(CONNECTION_KINDS).toEqual(['c2s', 'websocket', 's2sIn', 's2sOut']);
  expect(Object.keys(loadConfig({ env: {} }).watchdog)).toEqual(['interval', ...CONNECTION_KINDS]);
});

it('the loaded values have the types Config gives them', () => {
  const config = loadConfig({ env: {} });
  const kinds = (obj: object): unknown =>
    Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === 'object' && v !== null ? kinds(v) : typeof v]));
  expect(kinds(config.watchdog.c2s)).toEqual({
    probeAfter: 'number', probe: 'string', probeTimeout: 'number', maxIdle: 'number', keepaliveAfter: 'number', unauthenticatedTimeout: 'number',
    writeStallTimeout: 'number', maxSendQueue: 'number', closeTimeout: 'number', tcpKeepAlive: 'number',
  });
  expect(kinds(config.c2s)).toMatchObject({ maxStanzaSize: 'number', allowPlainWithoutTls: 'boolean', registration: { enabled: 'boolean', perIpPerHour: 'number' } });
  expect(config.watchdog.c2s).toMatchObject({ probeAfter: 120_000, probe: 'xmpp-ping', maxSendQueue: 1024 * 1024 });
});
