/**
 * A copy of `s` that holds no reference to a larger string it was sliced from: what the parser reads is a
 * slice of the whole chunk it came in, which a kept slice would keep alive. Exact for well-formed UTF-16
 * (no lone surrogates), which is all the parser lets through.
 */
export const detached = (s: string): string => Buffer.from(s).toString();
