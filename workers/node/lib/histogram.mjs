// Latency histograms as the protocol carries them: HdrHistogram of microseconds, 1 µs to
// 1 h, V2-deflate base64 (hdr-histogram-js's encodeIntoCompressedBase64), `null` when empty.
import * as hdr from 'hdr-histogram-js';

export const MAX_MICROS = 3_600_000_000;

/** An empty histogram of microseconds to `digits` significant digits (3, or 2 for seconds). */
export function histogram(digits = 3) {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_MICROS,
    numberOfSignificantValueDigits: digits,
    // A fixed range, as the protocol states it; values are clamped into it instead.
    autoResize: false,
    useWebAssembly: false,
  });
}

/** Records `micros`, clamped into [1, MAX_MICROS] (never dropped). */
export function record(h, micros) {
  h.recordValue(Math.min(MAX_MICROS, Math.max(1, Math.round(micros))));
}

/** The protocol's encoding of `h`, or null when it holds nothing. */
export function encode(h) {
  return h.totalCount === 0 ? null : hdr.encodeIntoCompressedBase64(h);
}
