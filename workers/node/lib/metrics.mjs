// What a worker measures: the run's totals for `result`, and the per-second deltas and served
// variations that each `progress` carries.
import { encode, histogram, record } from './histogram.mjs';

const DEFAULT_VARIATION = '(default)';

/** Token counts of successful calls: {calls, input, cachedInput, output}. */
const addTokens = (into, call) => {
  into.calls += 1;
  into.input += call.inputTokens;
  into.cachedInput += call.cachedInputTokens;
  into.output += call.outputTokens;
};
const noTokens = () => ({ calls: 0, input: 0, cachedInput: 0, output: 0 });

/** `map[key]`, created by `make` when absent. */
const entry = (map, key, make) => (map[key] ??= make());

/** One variation's figures (the protocol's `variations.<config>.<variation>`). */
class VariationStats {
  constructor() {
    Object.assign(this, {
      evaluations: 0, aiCalls: 0, successes: 0, errors: 0, inputTokens: 0, outputTokens: 0,
      feedbackPositive: 0, feedbackNegative: 0, llmAheadOfPlan: 0, usage: {},
      // onError's figures, as src/metrics.rs defines them.
      retries: 0, fallbacks: 0, fallbackSuccesses: 0, failedSteps: 0,
    });
    this.h = {
      evaluation: histogram(), aiLayer: histogram(), llm: histogram(), llmPlannedRealTime: histogram(),
      llmExcess: histogram(), timeToFirstToken: histogram(), endToEnd: histogram(),
    };
  }

  toJSON() {
    const { h, ...counts } = this;
    const histograms = Object.fromEntries(Object.entries(h).map(([name, hist]) => [name, encode(hist)]));
    return { ...counts, ...histograms };
  }
}

/** The run's totals, as `result` reports them. */
export class Metrics {
  constructor(openModel) {
    this.requests = 0;
    this.failedRequests = 0;
    this.requestsCorrected = histogram();
    this.requestsRaw = histogram();
    this.scheduleLag = openModel ? histogram() : null;
    this.contextKinds = {};
    this.variations = {};
    this.attributeUsage = {};
  }

  /** A finished request: `due` its due time (closed model: its start), `started`, `ended`. */
  addRequest(req, steps, { due, started, ended, lag }) {
    this.requests += 1;
    const failed = steps.some((s) => s.failed);
    if (failed) this.failedRequests += 1;
    record(this.requestsCorrected, ended - due);
    record(this.requestsRaw, ended - started);
    if (this.scheduleLag && lag !== undefined) record(this.scheduleLag, lag);
    this.contextKinds[req.kind] = (this.contextKinds[req.kind] ?? 0) + 1;
    for (const step of steps) this.addStep(req, step);
    return failed;
  }

  addStep(req, step) {
    const byVariation = entry(this.variations, step.config, () => ({}));
    const v = entry(byVariation, step.variationKey || DEFAULT_VARIATION, () => new VariationStats());
    v.evaluations += 1;
    record(v.h.evaluation, step.evaluation);
    record(v.h.aiLayer, step.aiLayer);
    record(v.h.endToEnd, step.endToEnd);
    if (step.feedback === 'positive') v.feedbackPositive += 1;
    if (step.feedback === 'negative') v.feedbackNegative += 1;
    const call = step.llm;
    if (!call) return;
    v.retries += step.retries ?? 0;
    if (step.fellBack) v.fallbacks += 1;
    if (step.fellBack && call.error === null) v.fallbackSuccesses += 1;
    if (call.error !== null) v.failedSteps += 1;
    for (const earlier of step.earlier ?? []) this.addCall(v, earlier);
    if (!this.addCall(v, call)) return;
    // Costed by the model called: the fallback's when the last call was the fallback.
    const model = step.calledModel || step.model;
    addTokens(entry(entry(v.usage, model, () => ({})), req.kind, noTokens), call);
    for (const [attribute, value] of req.costBy ?? []) {
      const byValue = entry(this.attributeUsage, attribute, () => ({}));
      addTokens(entry(entry(byValue, value, () => ({})), model, noTokens), call);
    }
  }

  /** One LLM call: its latency and plan, and an error or a success; true on success. */
  addCall(v, call) {
    v.aiCalls += 1;
    record(v.h.llm, call.duration);
    if (call.timeToFirstToken !== null) record(v.h.timeToFirstToken, call.timeToFirstToken);
    if (call.plan) this.addPlan(v, call);
    if (call.error !== null) {
      v.errors += 1;
      return false;
    }
    v.successes += 1;
    v.inputTokens += call.inputTokens;
    v.outputTokens += call.outputTokens;
    return true;
  }

  /** mock-ld's plan: the real-time latency it drew, and how much longer the call took. */
  addPlan(v, call) {
    const { latency, timeScale } = call.plan;
    if (timeScale > 0) record(v.h.llmPlannedRealTime, latency / timeScale);
    if (call.duration >= latency) record(v.h.llmExcess, call.duration - latency);
    else v.llmAheadOfPlan += 1;
  }

  /**
   * The `result` message, with the SDK's tracked events `events` (an EventCounter), the lag
   * probe's histogram `lagProbe` (or null) and the CPU seconds since `go`.
   */
  result(events, { lagProbe, cpuSeconds, initializedLaterMs }) {
    return {
      type: 'result',
      requests: this.requests,
      failedRequests: this.failedRequests,
      requestsCorrected: encode(this.requestsCorrected),
      requestsRaw: encode(this.requestsRaw),
      scheduleLag: this.scheduleLag && encode(this.scheduleLag),
      contextKinds: this.contextKinds,
      trackedEvents: events.toJSON(),
      variations: this.variations,
      attributeUsage: this.attributeUsage,
      handedEvents: events.total,
      lagProbe: lagProbe && encode(lagProbe),
      cpuSeconds,
      initializedLaterMs,
    };
  }
}

/** What changed since the last `progress`: per second of the load, and the served variations. */
export class Timeline {
  constructor() {
    this.completed = 0;
    this.failed = 0;
    this.reset();
  }

  reset() {
    this.seconds = new Map();
    this.served = [];
  }

  second(n) {
    let s = this.seconds.get(n);
    if (!s) {
      s = {
        second: n, requests: 0, errors: 0, latency: histogram(2), completed: 0, llm: histogram(2), llmErrors: 0,
        evaluations: 0, fallbackServed: 0,
      };
      this.seconds.set(n, s);
    }
    return s;
  }

  /**
   * A finished request, in the second it started (open model: was due) and the one it ended;
   * times in microseconds after `go`.
   */
  addRequest(steps, failed, { due, ended }) {
    this.completed += 1;
    if (failed) this.failed += 1;
    const s = this.second(Math.floor(due / 1e6));
    s.requests += 1;
    if (failed) s.errors += 1;
    record(s.latency, ended - due);
    for (const step of steps) {
      s.evaluations += 1;
      if (!step.variationKey) s.fallbackServed += 1; // recorded as DEFAULT_VARIATION
      for (const call of [...(step.earlier ?? []), ...(step.llm ? [step.llm] : [])]) {
        record(s.llm, call.duration);
        if (call.error !== null) s.llmErrors += 1;
      }
    }
    this.second(Math.floor(ended / 1e6)).completed += 1;
  }

  /** A step's evaluation: `evaluated` in microseconds after `go`. */
  addServed(index, step, variationKey, evaluated) {
    this.served.push([index, step, variationKey, Math.max(0, Math.round(evaluated))]);
  }

  /** The `progress` message of what changed since the last one; starts the next delta. */
  progress() {
    const seconds = [...this.seconds.values()]
      .sort((a, b) => a.second - b.second)
      .map((s) => ({ ...s, latency: encode(s.latency), llm: encode(s.llm) }));
    const message = { type: 'progress', completed: this.completed, failed: this.failed, seconds, served: this.served };
    this.reset();
    return message;
  }
}
