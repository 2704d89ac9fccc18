// The worker's own scheduling delay: when its event loop is saturated, every latency it
// measures includes the time its callbacks waited to run. A lag probe, as the Rust runner's
// (src/runner/health.rs), says how much.
import { nowMicros } from './clock.mjs';
import { histogram, record } from './histogram.mjs';

/** The probe's tick: 100 wake-ups a second cost far less than anything they could report. */
export const LAG_PROBE_INTERVAL_US = 10_000;

/**
 * One timer on the event loop, due every LAG_PROBE_INTERVAL_US on a fixed grid, that records
 * how late it woke (µs). Every tick due by then is recorded, each late by what it waited, so
 * a stall of 1 s weighs as the 100 ticks it swallowed, not as one (coordinated-omission
 * correction).
 */
export class LagProbe {
  constructor() {
    this.histogram = histogram();
    this.timer = null;
    this.due = 0;
  }

  start() {
    this.due = nowMicros() + LAG_PROBE_INTERVAL_US;
    this.arm();
  }

  arm() {
    // Node's timers count whole milliseconds of a clock of their own, so one may fire up to
    // a millisecond early by nowMicros(): tick() then records nothing and waits the rest.
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.due - nowMicros()) / 1000);
    // The probe never keeps the process alive by itself.
    this.timer.unref();
  }

  tick() {
    const woke = nowMicros();
    for (; this.due <= woke; this.due += LAG_PROBE_INTERVAL_US) {
      record(this.histogram, woke - this.due); // 0 is recorded as 1 µs
    }
    this.arm();
  }

  /** Stops the probe; what it recorded. */
  stop() {
    clearTimeout(this.timer);
    return this.histogram;
  }
}
