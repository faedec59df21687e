/** One line of `vigil doctor`: ok (fine), advice (worth changing; exit 0), error (Vigil cannot work so; exit 1). */
export type Level = 'ok' | 'advice' | 'error';

export interface Finding {
  level: Level;
  text: string;
}

export const ok = (text: string): Finding => ({ level: 'ok', text });
export const advice = (text: string): Finding => ({ level: 'advice', text });
export const error = (text: string): Finding => ({ level: 'error', text });

/** `ok     text`, `advice text`, `error  text`: the level first, so `grep ^error` finds the problems. */
export function formatFinding(f: Finding): string {
  return `${f.level.padEnd(6)} ${f.text}`;
}
