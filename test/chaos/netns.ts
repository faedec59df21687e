import { execFileSync } from 'node:child_process';

/**
 * A network namespace joined to this host by a veth pair, so clients inside it reach the server over a
 * real link that can be cut: setting the namespace's end down drops every packet in both directions, with
 * no FIN and no RST, as a pulled cable or a vanished NAT mapping does.
 */
export class Netns {
  readonly name: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostIp: string;
  readonly nsIp: string;

  constructor(tag: number) {
    const n = tag % 250;
    this.name = `vigil-chaos-${tag}`;
    this.hostIf = `vch${tag % 100000}a`;
    this.nsIf = `vch${tag % 100000}b`;
    this.hostIp = `10.231.${n}.1`;
    this.nsIp = `10.231.${n}.2`;
  }

  create(): void {
    this.destroy();
    run('ip', ['netns', 'add', this.name]);
    run('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf]);
    run('ip', ['link', 'set', this.nsIf, 'netns', this.name]);
    run('ip', ['addr', 'add', `${this.hostIp}/24`, 'dev', this.hostIf]);
    run('ip', ['link', 'set', this.hostIf, 'up']);
    this.exec(['ip', 'addr', 'add', `${this.nsIp}/24`, 'dev', this.nsIf]);
    this.exec(['ip', 'link', 'set', this.nsIf, 'up']);
    this.exec(['ip', 'link', 'set', 'lo', 'up']);
  }

  /** Cut the link: packets to and from the namespace are dropped silently from now on. */
  cut(): void {
    this.exec(['ip', 'link', 'set', this.nsIf, 'down']);
  }

  /** Mend the link cut by cut(): the connections that were open on it carry on if neither end gave up. */
  restore(): void {
    this.exec(['ip', 'link', 'set', this.nsIf, 'up']);
  }

  exec(argv: string[]): string {
    return run('ip', ['netns', 'exec', this.name, ...argv]);
  }

  destroy(): void {
    try {
      run('ip', ['netns', 'del', this.name]);
    } catch {
      // not there: nothing to clean
    }
    try {
      run('ip', ['link', 'del', this.hostIf]);
    } catch {
      // gone with the namespace
    }
  }

  /** Why this machine cannot run the test, or undefined when it can. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'the chaos tests create network namespaces and need root (CI runs as root)';
    try {
      run('ip', ['-V']);
    } catch {
      return 'the chaos tests need `ip` from iproute2: apt-get install iproute2';
    }
    return undefined;
  }
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
