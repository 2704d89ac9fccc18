// The load models: the closed one (C loops, each starting a request as the last one ends)
// and the open one (each request started at its due time, at most M in flight), fed by
// pulls from the coordinator. Times are microseconds of nowMicros(); `go` is t = 0.
import { nowMicros, sleepMs } from './clock.mjs';

/** Requests received and not yet started, in order. */
class Queue {
  constructor() {
    this.items = [];
    this.head = 0;
  }

  get length() {
    return this.items.length - this.head;
  }

  push(items) {
    for (const item of items) this.items.push(item);
  }

  peek() {
    return this.items[this.head];
  }

  take() {
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    // Compact now and then, so a long run's array does not keep every request.
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear() {
    this.items = [];
    this.head = 0;
  }
}

/** A one-shot wake-up that many waiters can share; rearmed by each wake(). */
class Signal {
  constructor() {
    this.arm();
  }

  arm() {
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  wake() {
    const { resolve } = this;
    this.arm();
    resolve();
  }
}

/**
 * One run's load. `load` is the hello's; `pull(max)` sends a pull; `run(req, timing)` runs a
 * request and resolves when it has been recorded, where timing = {due, started, lag}.
 */
export class Load {
  constructor(load, { pull, run, log }) {
    this.open = load.model === 'open';
    this.limit = this.open ? load.maxInFlight : load.concurrency;
    if (!Number.isInteger(this.limit) || this.limit < 1) {
      throw new Error(`load ${JSON.stringify(load)}: ${this.open ? 'maxInFlight' : 'concurrency'} must be a positive integer`);
    }
    Object.assign(this, { pull, run, log });
    this.queue = new Queue();
    this.changed = new Signal();
    this.pulling = false;
    this.asked = this.open ? 256 : Math.min(1024, Math.max(64, 4 * this.limit));
    this.ended = false;
    this.stopped = false;
    this.inFlight = 0;
    this.slotFreed = new Signal();
  }

  /** Starts the load at `go` (t0 in nowMicros); resolves when every request has finished. */
  start(t0) {
    this.t0 = t0;
    this.maybePull();
    const runners = this.open
      ? [this.dispatch()]
      : Array.from({ length: this.limit }, () => this.loop());
    return Promise.all(runners).then(() => this.drain());
  }

  batch(requests) {
    this.pulling = false;
    if (this.stopped) return;
    this.queue.push(requests);
    if (this.open) this.learnRate(requests);
    if (requests.length === 0) {
      // Nothing now but no end either: ask again shortly rather than at once.
      sleepMs(100).then(() => this.maybePull());
    } else {
      this.maybePull();
    }
    this.changed.wake();
  }

  end() {
    this.pulling = false;
    this.ended = true;
    this.changed.wake();
  }

  /** Starts nothing more and drops what is held unstarted; what is in flight finishes. */
  stop() {
    this.stopped = true;
    this.queue.clear();
    this.changed.wake();
    this.slotFreed.wake();
  }

  get finished() {
    return this.stopped || (this.ended && this.queue.length === 0);
  }

  /** One pull at a time, when what is held falls below half of what was asked for. */
  maybePull() {
    if (this.pulling || this.ended || this.stopped) return;
    if (this.queue.length >= this.asked / 2) return;
    this.pulling = true;
    this.pull(this.asked);
  }

  /** Open model: ask for about a second of requests, from the spacing of their due times. */
  learnRate(requests) {
    if (requests.length < 2) return;
    const span = requests[requests.length - 1].dueMicros - requests[0].dueMicros;
    const perSecond = span > 0 ? ((requests.length - 1) * 1e6) / span : 4096;
    this.asked = Math.min(4096, Math.max(16, Math.ceil(perSecond)));
  }

  /** Closed model: one of C loops. */
  async loop() {
    for (;;) {
      if (this.queue.length === 0) {
        if (this.finished) return;
        await this.changed.promise;
        continue;
      }
      const req = this.queue.take();
      this.maybePull();
      const started = nowMicros() - this.t0;
      this.inFlight += 1;
      await this.run(req, { due: started, started });
      this.inFlight -= 1;
    }
  }

  /**
   * Open model: the dispatcher. Each request waits for its due time, then for a slot; its
   * schedule lag is its start minus the later of its due time and the moment the dispatcher
   * was free for it, minus that slot wait: the worker's own lateness only.
   */
  async dispatch() {
    const running = new Set();
    let freeAt = 0;
    for (;;) {
      if (this.queue.length === 0) {
        if (this.finished) break;
        await this.changed.promise;
        continue;
      }
      const due = this.queue.peek().dueMicros;
      const wait = due - (nowMicros() - this.t0);
      // Node's timers have millisecond resolution: a request less than 1 ms ahead starts now.
      if (wait >= 1000) {
        await Promise.race([sleepMs(wait / 1000), this.changed.promise]);
        continue;
      }
      let slotWait = 0;
      if (this.inFlight >= this.limit) {
        const waiting = nowMicros();
        while (this.inFlight >= this.limit && !this.stopped) await this.slotFreed.promise;
        slotWait = nowMicros() - waiting;
      }
      if (this.stopped) break;
      const req = this.queue.take();
      this.maybePull();
      const started = nowMicros() - this.t0;
      const lag = Math.max(0, started - Math.max(due, freeAt) - slotWait);
      freeAt = started;
      this.inFlight += 1;
      const task = this.run(req, { due, started, lag }).finally(() => {
        this.inFlight -= 1;
        running.delete(task);
        this.slotFreed.wake();
      });
      running.add(task);
      // Yield now and then when behind schedule, so I/O and the requests started can run.
      if (wait < -1000) await new Promise(setImmediate);
    }
    await Promise.all(running);
  }

  /** Waits for the in-flight requests of closed loops (none are left once they return). */
  async drain() {
    while (this.inFlight > 0) await this.slotFreed.promise;
  }
}
