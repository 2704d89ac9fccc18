// A step's `onError`: the same rules as the harness's src/runner/retry.rs (and the Python
// worker's), so that every SDK makes the same calls: which failures are retried, the wait
// before each retry, and the X-Mock-Seed of each call. u64 arithmetic in BigInt.

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64, as src/runner/retry.rs `mix64`. */
export function mix64(x) {
  let z = (BigInt(x) + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The X-Mock-Seed of call `call` (0 first) of a step whose seed is `seed` (a decimal string). */
export function attemptSeed(seed, call) {
  return call === 0 ? String(seed) : String(mix64(BigInt(seed) ^ BigInt(call)));
}

/** 429, 5xx, a timeout or a transport or stream error; not another 4xx. */
export function retryable(call) {
  const s = call.status;
  return call.error !== null && (s === null || s === 429 || s >= 500);
}

/**
 * Milliseconds to wait before call `call` (1: the first retry) after `failed`, or null: no
 * more retries (not a failure to retry, or a Retry-After above maxRetryAfterMs).
 */
export function waitBefore(policy, seed, call, failed) {
  if (!retryable(failed)) return null;
  if (failed.retryAfter !== null) {
    const asked = failed.retryAfter * 1000;
    return asked <= policy.maxRetryAfterMs ? asked : null;
  }
  const doubled = Math.min(policy.backoffMs * 2 ** Math.min(Math.max(call - 1, 0), 20), policy.maxWaitMs);
  const draw = mix64(BigInt(policy.runSeed) ^ BigInt(attemptSeed(seed, call))) >> 11n;
  return doubled * (0.5 + 0.5 * (Number(draw) / 2 ** 53));
}

/**
 * An answer's `Retry-After` in seconds (RFC 9110 §10.2.3), as src/runner/retry.rs
 * `retry_after`: delay seconds, or an HTTP date, the time from `now` (ms) until it (0 for
 * one in the past). A date starts with its day's name, which keeps Date.parse's leniency
 * ("1.5" is a date to it) out; asctime's, without a zone, is GMT as every HTTP date.
 */
export function retryAfterOf(headers, now = Date.now()) {
  const text = headers?.get?.('retry-after');
  if (text === null || text === undefined) return null;
  if (/^\s*\d+\s*$/.test(text)) return Number(text.trim());
  if (!/^\s*[A-Za-z]{3}/.test(text)) return null;
  const when = Date.parse(/GMT\s*$/.test(text) ? text : `${text.trim()} GMT`);
  return Number.isNaN(when) ? null : Math.max(0, (when - now) / 1000);
}
