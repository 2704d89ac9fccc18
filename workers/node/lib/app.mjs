// The application a worker runs: the real LaunchDarkly Node server SDK, its AI SDK and the
// official OpenAI client, and what one request does with them (the protocol's "built-in
// application model", or the team's handler in place of its step 2).
import { readFileSync } from 'node:fs';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { createOpenAiUsage, initAi } from '@launchdarkly/server-sdk-ai';
import OpenAI from 'openai';

import { nowMicros } from './clock.mjs';
import { attemptSeed, retryAfterOf, waitBefore } from './retry.mjs';

const PLAN_LATENCY_HEADER = 'x-mock-plan-latency-ms';
const TIME_SCALE_HEADER = 'x-mock-time-scale';
const SEED_HEADER = 'X-Mock-Seed';
const DISABLED = { enabled: false };

/** The installed version of package `name` (beside this worker, not hoisted elsewhere). */
export function packageVersion(name) {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

/** Counts every custom event the SDK is handed, by key: the AI SDK's and a handler's alike. */
class EventCounter {
  constructor() {
    this.byKey = new Map(); // this phase's
    this.total = 0; // this phase's
    this.earlier = 0; // earlier phases'
  }

  /** Every event handed over since hello (what `flushed` reports). */
  get handed() {
    return this.earlier + this.total;
  }

  /** A new phase's `result` counts its own events: the earlier ones are set aside. */
  startPhase() {
    this.earlier += this.total;
    this.byKey = new Map();
    this.total = 0;
  }

  /** Wraps `client.track` so that each call is counted before the SDK takes it. */
  attach(client) {
    const track = client.track.bind(client);
    client.track = (key, ...rest) => {
      this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
      this.total += 1;
      return track(key, ...rest);
    };
  }

  toJSON() {
    return Object.fromEntries(this.byKey);
  }
}

/**
 * Starts the SDK client as `sdk` (the hello's) says and waits for it; throws when it does not
 * initialize in time, unless `sdk.serveUninitialized` (a start-up fault): then it goes on,
 * and `start` says it timed out and, once polled so, when it initialized. `log` writes one
 * line to the worker's log.
 */
export async function startClients(sdk, llm, log) {
  const ldClient = init(sdk.sdkKey, {
    baseUri: sdk.baseUri,
    streamUri: sdk.streamUri,
    eventsUri: sdk.eventsUri,
    stream: true,
    sendEvents: sdk.sendEvents,
    capacity: sdk.eventCapacity,
    flushInterval: sdk.flushIntervalMs / 1000,
    // stdout is the protocol's: the SDK logs to stderr.
    logger: basicLogger({ level: 'warn', destination: log }),
  });
  const events = new EventCounter();
  // Before initAi, which tracks its $ld:ai:sdk:info event at once.
  events.attach(ldClient);
  const started = performance.now();
  const start = { initMs: 0, timedOut: false, initializedAt: null };
  try {
    await ldClient.waitForInitialization({ timeout: sdk.initTimeoutMs / 1000 });
  } catch (e) {
    if (!sdk.serveUninitialized) {
      ldClient.close();
      throw new Error(`the LaunchDarkly SDK did not initialize within ${sdk.initTimeoutMs} ms: ${e?.message ?? e}`);
    }
    // A start-up fault: the load runs on the fallback until the SDK initializes.
    start.timedOut = true;
    log(`the SDK did not initialize within ${sdk.initTimeoutMs} ms: serving the fallback`);
    const watch = setInterval(() => {
      if (ldClient.initialized()) {
        start.initializedAt = performance.now();
        clearInterval(watch);
      }
    }, 20);
    watch.unref();
  }
  start.initMs = performance.now() - started;
  const ai = initAi(ldClient);
  // No retries: one call per step, as every SDK's worker makes it, so that a simulated error
  // is an error (the OpenAI client would retry 429s and 5xx twice by default).
  const openai = new OpenAI({ baseURL: llm.baseUrl, apiKey: llm.apiKey, maxRetries: 0 });
  return { ldClient, ai, openai, events, start };
}

/** A handler spec "/abs/path/module.mjs#exportName", imported. */
export async function loadHandler(spec) {
  const hash = spec.lastIndexOf('#');
  if (hash <= 0 || hash === spec.length - 1) {
    throw new Error(`handler ${JSON.stringify(spec)} is not "/abs/path/module.mjs#exportName"`);
  }
  const [path, name] = [spec.slice(0, hash), spec.slice(hash + 1)];
  const module = await import(path.startsWith('file:') ? path : `file://${path}`);
  if (typeof module[name] !== 'function') {
    throw new Error(`handler ${JSON.stringify(spec)}: ${path} exports no function ${name}`);
  }
  return module[name];
}

/**
 * Runs requests: `clients` from startClients, `steps` and `llm` from the hello, `handler` a
 * function or null. Every time is in microseconds of nowMicros().
 */
export class Application {
  constructor(clients, steps, llm, handler) {
    Object.assign(this, { ...clients, steps, stream: Boolean(llm.stream), handler });
  }

  /** Runs request `req` (a batch entry); its steps' records, in order. */
  async request(req) {
    const records = [];
    let started = nowMicros();
    for (let i = 0; i < this.steps.length; i += 1) {
      const record = await this.step(this.steps[i], req.steps[i] ?? {}, req.context, started);
      records.push(record);
      started = record.ended;
    }
    return records;
  }

  /** One step, started at `started`: the config through the AI SDK, then the LLM call. */
  async step(spec, given, context, started) {
    const record = {
      config: spec.config, variationKey: '', model: '', failed: false,
      evaluated: 0, evaluation: 0, aiLayer: 0, llm: null, feedback: null, endToEnd: 0, ended: 0,
      // `onError`: the failed calls before `llm` (the last), retries, whether `llm` was the
      // fallback model's and its model, and the time waited between calls.
      earlier: [], retries: 0, fellBack: false, calledModel: '', waited: 0,
    };
    let config;
    try {
      config = await this.getConfig(spec, context);
    } catch (e) {
      // A config that could not be read fails the step (and its request).
      record.failed = true;
      record.ended = record.evaluated = nowMicros();
      record.evaluation = record.endToEnd = record.ended - started;
      return record;
    }
    const resolved = nowMicros();
    record.evaluated = resolved;
    record.evaluation = resolved - started;
    record.variationKey = config.tracker?.getTrackData().variationKey ?? '';
    record.model = config.model?.name ?? '';
    if (config.enabled && spec.callLlm) {
      if (this.handler) {
        await this.runHandler(config, spec, given, context, record);
      } else {
        await this.callAndTrack(config, spec, given, record);
      }
      record.failed = record.llm.error !== null;
    }
    record.ended = nowMicros();
    record.endToEnd = record.ended - started;
    const calls = [...record.earlier, ...(record.llm ? [record.llm] : [])];
    record.aiLayer = record.endToEnd - record.evaluation - record.waited
      - calls.reduce((sum, call) => sum + (call.duration ?? 0), 0);
    return record;
  }

  getConfig(spec, context) {
    return spec.mode === 'agent'
      ? this.ai.agentConfig(spec.config, context, DISABLED, spec.variables)
      : this.ai.completionConfig(spec.config, context, DISABLED, spec.variables);
  }

  /** Step 2 of the built-in model: the LLM call, tracked as the AI SDK documents, then feedback. */
  async callAndTrack(config, spec, given, record) {
    const messages = spec.mode === 'agent'
      ? [{ role: 'system', content: config.instructions ?? '' }]
      : (config.messages ?? []).map(({ role, content }) => ({ role, content }));
    messages.push({ role: 'user', content: spec.prompt });
    const { tracker } = config;
    const policy = spec.onError ?? {};
    record.calledModel = record.model;
    // The step's calls as its onError says (src/runner/call.rs `calls`): the first; retries
    // while they fail and may be retried, after each wait; then the fallback model once.
    // This AI SDK has no once-per-run rule, so every call is tracked on the config's tracker.
    for (let call = 0; ; call += 1) {
      const body = { model: record.calledModel, messages };
      const options = { headers: { [SEED_HEADER]: attemptSeed(given.seed, call) } };
      const outcome = this.stream
        ? await this.streamed(body, options, tracker)
        : await this.whole(body, options, tracker);
      if (outcome.error === null || record.fellBack) {
        record.llm = outcome;
        break;
      }
      const wait = record.retries < (policy.retries ?? 0)
        ? waitBefore(policy, given.seed, call + 1, outcome)
        : null;
      if (wait !== null) {
        record.retries += 1;
        const waited = nowMicros();
        await new Promise((resolve) => { setTimeout(resolve, wait); });
        record.waited += nowMicros() - waited;
      } else if (policy.fallbackModel) {
        record.fellBack = true;
        record.calledModel = policy.fallbackModel;
      } else {
        record.llm = outcome;
        break;
      }
      record.earlier.push(outcome);
    }
    if (given.feedback === 'positive' || given.feedback === 'negative') {
      tracker.trackFeedback({ kind: given.feedback });
      record.feedback = given.feedback;
    }
  }

  /** A whole answer, through the AI SDK's OpenAI helper (duration, success or error, tokens). */
  async whole(body, options, tracker) {
    const call = newCall();
    try {
      await tracker.trackOpenAIMetrics(async () => {
        const { data, response } = await this.openai.chat.completions.create(body, options).withResponse();
        call.duration = nowMicros() - call.started;
        readPlan(response.headers, call);
        readUsage(data.usage, call);
        return data;
      });
    } catch (e) {
      call.duration ??= nowMicros() - call.started;
      failedWith(e, call);
    }
    return call;
  }

  /**
   * A streamed answer: the AI SDK has no helper that awaits a stream's metrics, so the tracker
   * calls are explicit: duration, time to first token, then error or tokens and success.
   */
  async streamed(body, options, tracker) {
    const call = newCall();
    try {
      const request = { ...body, stream: true, stream_options: { include_usage: true } };
      const { data, response } = await this.openai.chat.completions.create(request, options).withResponse();
      readPlan(response.headers, call);
      let finished = false;
      for await (const chunk of data) {
        if (call.timeToFirstToken === null && chunk.choices?.some((c) => c.delta?.content)) {
          call.timeToFirstToken = nowMicros() - call.started;
        }
        if (chunk.choices?.some((c) => c.finish_reason)) finished = true;
        if (chunk.usage) readUsage(chunk.usage, call);
      }
      // As the harness and the Python worker count it: a stream that ends before any
      // finish_reason was cut short, whatever the client library makes of it.
      if (!finished) throw new Error('the stream ended before a finish_reason');
    } catch (e) {
      failedWith(e, call);
    }
    call.duration = nowMicros() - call.started;
    tracker.trackDuration(Math.round(call.duration / 1000));
    if (call.timeToFirstToken !== null) tracker.trackTimeToFirstToken(Math.round(call.timeToFirstToken / 1000));
    if (call.error !== null) {
      tracker.trackError();
    } else {
      if (call.usage) tracker.trackTokens(createOpenAiUsage(call.usage));
      tracker.trackSuccess();
    }
    return call;
  }

  /**
   * The team's handler in place of step 2. Its time counts as the step's LLM call; a handler
   * that throws fails the step; tokens are what it tracked through the tracker, if anything.
   */
  async runHandler(config, spec, given, context, record) {
    const call = newCall();
    const llm = this.openai.withOptions({ defaultHeaders: { [SEED_HEADER]: String(given.seed) } });
    try {
      await this.handler({ aiConfig: config, tracker: config.tracker, context, variables: spec.variables, llm });
    } catch (e) {
      call.error = errorText(e);
    }
    call.duration = nowMicros() - call.started;
    const tokens = config.tracker?.getSummary().tokens;
    if (tokens) {
      call.inputTokens = tokens.input ?? 0;
      call.outputTokens = tokens.output ?? 0;
    }
    record.llm = call;
  }
}

function newCall() {
  return {
    started: nowMicros(), duration: null, timeToFirstToken: null, error: null,
    inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, usage: null, plan: null,
    status: null, retryAfter: null,
  };
}

/** A call's failure: its text, and an HTTP answer's status and Retry-After (seconds). */
function failedWith(e, call) {
  call.error = errorText(e);
  if (e instanceof OpenAI.APIError && typeof e.status === 'number') {
    call.status = e.status;
    call.retryAfter = retryAfterOf(e.headers);
    if (e.headers) readPlan(e.headers, call);
  }
}

/** mock-ld's plan for the call, when its answer carries both headers as numbers. */
function readPlan(headers, call) {
  const number = (name) => {
    const text = headers.get(name);
    const value = text === null ? NaN : Number(text.trim());
    return Number.isFinite(value) && value >= 0 ? value : null;
  };
  const latencyMs = number(PLAN_LATENCY_HEADER);
  const timeScale = number(TIME_SCALE_HEADER);
  if (latencyMs !== null && timeScale !== null) call.plan = { latency: latencyMs * 1000, timeScale };
}

function readUsage(usage, call) {
  if (!usage) return;
  call.usage = usage;
  call.inputTokens = usage.prompt_tokens ?? 0;
  call.outputTokens = usage.completion_tokens ?? 0;
  call.cachedInputTokens = usage.prompt_tokens_details?.cached_tokens ?? 0;
}

function errorText(e) {
  return String(e?.message ?? e).slice(0, 500) || 'error';
}
