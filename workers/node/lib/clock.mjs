// One monotonic clock in microseconds, shared by the load and the steps.
import { performance } from 'node:perf_hooks';

/** Microseconds since an arbitrary origin (fractional: performance.now() has sub-ms resolution). */
export const nowMicros = () => performance.now() * 1000;

/** Resolves after `ms` milliseconds. */
export const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
