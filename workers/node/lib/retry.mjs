// A step's `onError`: the same rules as the harness's src/runner/retry.rs (and the Python
// worker's), so that every SDK makes the same calls: which failures are retried, the wait
// before each retry, and the X-Mock-Seed of each call. u64 arithmetic in BigInt.

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64, as src/runner/retry.rs `mix64` (tests/sdk_workers.rs checks the two agree). */
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
 * The three forms of an HTTP date (RFC 9110 §5.6.7) and nothing else, as the Rust runner
 * takes them: Date.parse alone reads far more ("1.5" is a date to it). Each form starts
 * with its day's name, whose first three letters are checked against the date.
 */
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const FULL_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
const HTTP_DATE = new RegExp(
  `^(?:${DAY}, (\\d{2}) ${MONTH} \\d{4} ${TIME} GMT` + // IMF-fixdate
    `|${FULL_DAY}, (\\d{2})-${MONTH}-\\d{2} ${TIME} GMT` + // RFC 850
    `|${DAY} ${MONTH} ([ \\d]\\d) ${TIME} \\d{4})$`, // asctime
);
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * An answer's `Retry-After` in seconds (RFC 9110 §10.2.3), as src/runner/retry_after.rs
 * `parse`: delay seconds, or an HTTP date, the time from `now` (ms) until it (0 for one in
 * the past). asctime's, without a zone, is GMT as every HTTP date.
 */
export function retryAfterOf(headers, now = Date.now()) {
  const raw = headers?.get?.('retry-after');
  if (raw === null || raw === undefined) return null;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const form = HTTP_DATE.exec(text);
  if (form === null) return null;
  const date = new Date(Date.parse(text.endsWith('GMT') ? text : `${text} GMT`));
  if (form[2] !== undefined) {
    // RFC 850's two-digit year, read as the Rust runner reads it: 00-69 are 20xx.
    const yy = Number(text.split('-')[2].slice(0, 2));
    date.setUTCFullYear(yy < 70 ? 2000 + yy : 1900 + yy);
  }
  const when = date.getTime();
  if (Number.isNaN(when)) return null;
  // A date that is none (the 30th of February, another day's name, before 1970) is no
  // date to the Rust runner: Date.parse would roll it over.
  const day = Number((form[1] ?? form[2] ?? form[3]).trim());
  if (when < 0 || date.getUTCDate() !== day || WEEKDAYS[date.getUTCDay()] !== text.slice(0, 3)) {
    return null;
  }
  return Math.max(0, (when - now) / 1000);
}
