import type { Config } from '../config/types.js';

/**
 * How the CLI reaches a running server: through the configured HTTP listener. A wildcard bind address
 * (0.0.0.0, ::) is reached on loopback, which is also what the admin endpoints trust without a token.
 */
export function httpBase(config: Config): string {
  const { host, port } = config.listeners.http;
  let target = host;
  if (host === '' || host === '0.0.0.0') target = '127.0.0.1';
  else if (host === '::' || host === '[::]') target = '::1';
  return `http://${target.includes(':') && !target.startsWith('[') ? `[${target}]` : target}:${port}`;
}

export type FetchResult = { ok: true; status: number; body: string } | { ok: false; error: string };

/** GET a path on the running server, with admin.token as bearer when set; never throws. */
export async function getFromServer(config: Config, path: string, timeoutMs = 5000): Promise<FetchResult> {
  const headers: Record<string, string> = {};
  if (config.admin.token) headers.authorization = `Bearer ${config.admin.token}`;
  try {
    const res = await fetch(`${httpBase(config)}${path}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, status: res.status, body: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}
