// Latency histograms as the protocol carries them: HdrHistogram of microseconds, 1 µs to
// 1 h, V2-deflate base64, `null` when empty.
//
// hdr-histogram-js 3.0.1 writes two V2 header fields that no other implementation writes:
// normalizingIndexOffset 1 (Java and Python write 0) and integerToDoubleValueConversionRatio
// as the 64-bit integer 1 (a denormal double, where the others write the double 1.0). The
// harness's decoder (Rust's hdrhistogram crate, via mock_ld::hdr) refuses both as
// "UnsupportedFeature". The library exports no uncompressed encoding of a JS histogram, so
// the worker inflates what encodeIntoCompressedBase64 wrote, sets those two fields as Java
// writes them, and deflates it again behind the same cookie (a few hundred bytes each).
import { deflateSync, inflateSync } from 'node:zlib';

import * as hdr from 'hdr-histogram-js';

export const MAX_MICROS = 3_600_000_000;

/** Byte offsets in the uncompressed V2 header. */
const NORMALIZING_INDEX_OFFSET_AT = 8;
const CONVERSION_RATIO_AT = 32;

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
  if (h.totalCount === 0) return null;
  // [cookie u32][compressed length u32][zlib deflate of the V2 encoding]
  const compressed = Buffer.from(hdr.encodeIntoCompressedBase64(h), 'base64');
  const v2 = inflateSync(compressed.subarray(8, 8 + compressed.readUInt32BE(4)));
  v2.writeUInt32BE(0, NORMALIZING_INDEX_OFFSET_AT);
  v2.writeDoubleBE(1.0, CONVERSION_RATIO_AT);
  const deflated = deflateSync(v2);
  const out = Buffer.alloc(8 + deflated.length);
  out.writeUInt32BE(compressed.readUInt32BE(0), 0);
  out.writeUInt32BE(deflated.length, 4);
  deflated.copy(out, 8);
  return out.toString('base64');
}
