import { availableParallelism } from 'node:os';

/*
 * PBKDF2 for every cold login runs on libuv's thread pool, 4 threads unless told otherwise. On a machine with
 * fewer cores than that, the extra threads only take turns with the event loop, which every session shares.
 * libuv reads this when the pool first starts, so it is set before anything can use the pool; an operator's
 * own UV_THREADPOOL_SIZE wins.
 */
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()));
