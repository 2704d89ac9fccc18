/**
 * The real Node server SDK (@launchdarkly/node-server-sdk 9.13.7) and AI SDK
 * (@launchdarkly/server-sdk-ai 0.16.8) against mock-ld, unchanged: streaming init, a 60/40
 * AI Config rollout over 10,000 premium contexts (chi-square), summary counts, tracker
 * events and their `data` fields (spec §7.3), flag-change propagation, and a 401 on an
 * unknown SDK key; under each of mock-ld's SDK faults: no data at start-up, a stream stalled,
 * refused, dropped or sent a malformed event, polling refused, events refused, closed or held,
 * and slow or throttled links. Each test
 * runs its own mock-ld (MOCK_LD_BIN, default <repo>/target/debug/mock-ld). Run with
 * `node --test` in this directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { initAi, LDFeedbackKind } from '@launchdarkly/server-sdk-ai';

process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SDK_KEY = 'sdk-node-test';
const PREMIUM = 10_000;
const FREE = 1_000;

const aiVariation = (variationKey, model, provider, version) => ({
  _ldMeta: { enabled: true, variationKey, version, mode: 'completion' },
  model: { name: model, parameters: { temperature: 0.2, maxTokens: 256 } },
  provider: { name: provider },
  messages: [{ role: 'system', content: 'You help {{ldctx.key}}.' }],
});
const VARIATIONS = [
  aiVariation('standard', 'gpt-4o-mini', 'openai', 1),
  aiVariation('premium-a', 'gpt-4o', 'openai', 2),
  aiVariation('premium-b', 'claude-3-5-sonnet', 'anthropic', 3),
];
const MODEL_TO_INDEX = Object.fromEntries(VARIATIONS.map((v, i) => [v.model.name, i]));

/** tier in [premium] → 60/40 rollout of variations 1 and 2 (or `serve`); else variation 0. */
const aiFlag = (key, serve = { rollout: { variations: [{ variation: 1, weight: 60000 }, { variation: 2, weight: 40000 }] } }) => ({
  key, version: 1, on: true, salt: `${key}-salt`, offVariation: 0, variations: VARIATIONS,
  rules: [{ id: 'premium', trackEvents: false, clauses: [{ attribute: 'tier', op: 'in', values: ['premium'] }], ...serve }],
  fallthrough: { variation: 0 },
});

/** Starts a private mock-ld for test `t` (stopped after it); returns its URL and admin API. */
async function startMockLd(t) {
  const bin = process.env.MOCK_LD_BIN || join(REPO, 'target/debug/mock-ld');
  assert.ok(existsSync(bin), `mock-ld binary not found at ${bin}: run \`cargo build -p mock-ld\` (or set MOCK_LD_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'mock-ld-node-'));
  const seed = join(dir, 'seed.json');
  const flags = Object.fromEntries(['ai-split', 'ai-tracked', 'ai-propagation'].map((k) => [k, aiFlag(k)]));
  writeFileSync(seed, JSON.stringify({ flags }));
  const log = openSync(join(dir, 'mock-ld.log'), 'w');
  const proc = spawn(bin, ['--listen', '127.0.0.1:0', '--data', seed, '--sdk-key', SDK_KEY], { stdio: ['ignore', 'pipe', log] });
  t.after(async () => {
    if (proc.exitCode === null && proc.kill('SIGTERM')) await once(proc, 'exit');
    closeSync(log);
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), sleep(10_000, { value: 'timeout' }, { ref: false })]);
  const match = /^mock-ld listening on (http:\/\/\S+)$/.exec(first.value ?? '');
  assert.ok(match, `mock-ld did not start: first line ${JSON.stringify(first.value)}, log in ${dir}`);
  const url = match[1];
  const admin = async (method, path, body) => {
    const res = await fetch(`${url}/admin${path}`, { method, body: body && JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const text = await res.text();
    assert.ok(res.ok, `${method} /admin${path} -> ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    url, admin,
    putFlag: (flag) => admin('PUT', `/environments/test/flags/${flag.key}`, flag),
    stats: () => admin('GET', '/events/stats?env=test'),
    customEvents: async (key) => (await admin('GET', `/events?env=test&kind=custom&key=${encodeURIComponent(key)}`)).items.map((i) => i.event),
  };
}

/** An SDK client with stream, polling and events URIs at mock-ld (and `options`); closed after test `t`. */
function makeClient(t, url, sdkKey = SDK_KEY, options = {}) {
  const client = init(sdkKey, { baseUri: url, streamUri: url, eventsUri: url, capacity: 100_000, logger: basicLogger({ level: 'none' }), ...options });
  t.after(() => client.close());
  return client;
}

async function startClient(t) {
  const ld = await startMockLd(t);
  const client = makeClient(t, ld.url);
  await client.waitForInitialization({ timeout: 5 });
  return { ld, client, ai: initAi(client) };
}

/** Calls fetch() until done(value) or the timeout; returns the last value. */
async function waitFor(fetch, done, timeoutMs = 15_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fetch();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}

/** erfc by Numerical Recipes' erfcc (Chebyshev fit, fractional error < 1.2e-7 for all x). */
function erfc(x) {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(poly);
  return x >= 0 ? r : 2 - r;
}

/** Chi-square goodness of fit, 1 degree of freedom: p = P(X > chi2) = erfc(sqrt(chi2 / 2)). */
function chiSquareP(observed, expected) {
  const chi2 = observed.reduce((sum, o, i) => sum + (o - expected[i]) ** 2 / expected[i], 0);
  return { chi2, p: erfc(Math.sqrt(chi2 / 2)) };
}

const ctx = (key, tier) => ({ kind: 'user', key, tier });

async function servedIndex(ai, flagKey, context) {
  const config = await ai.completionConfig(flagKey, context);
  assert.ok(config.enabled, `${flagKey} disabled for ${context.key}: the SDK served its default`);
  assert.equal(config.messages[0].content, `You help ${context.key}.`);
  return MODEL_TO_INDEX[config.model.name];
}

test('erfc approximation matches reference values', () => {
  for (const [x, ref] of [[0, 1], [0.5, 0.4795001221869535], [1, 0.1572992070502851], [2, 0.004677734981047266], [-1, 1.842700792949715]]) {
    assert.ok(Math.abs(erfc(x) - ref) <= 1.2e-7 * ref, `erfc(${x}) = ${erfc(x)}, want ${ref}`);
  }
});

test('initializes over the stream', async (t) => {
  const { ld, client } = await startClient(t);
  assert.ok(client.initialized());
  const envs = (await ld.admin('GET', '/environments')).items;
  assert.deepEqual(envs.filter((e) => e.key === 'test').map((e) => e.streams), [1], 'one stream expected');
  const detail = await client.variationDetail('ai-split', { kind: 'user', key: 'someone' }, null);
  assert.equal(detail.value._ldMeta.variationKey, 'standard');
  assert.deepEqual(detail.reason, { kind: 'FALLTHROUGH' });
  await client.flush();
  const stats = await waitFor(ld.stats, (s) => s.byKind['diagnostic-init']);
  assert.equal(stats.byKind['diagnostic-init'], 1, JSON.stringify(stats.byKind));
});

test('60/40 rollout split and summary counts', async (t) => {
  const { ld, client, ai } = await startClient(t);
  const counts = [0, 0, 0];
  for (let i = 0; i < PREMIUM; i += 1) counts[await servedIndex(ai, 'ai-split', ctx(`user-${i}`, 'premium'))] += 1;
  assert.equal(counts[0], 0, 'premium contexts fell through');
  for (let i = 0; i < FREE; i += 1) assert.equal(await servedIndex(ai, 'ai-split', ctx(`free-${i}`, 'free')), 0);
  counts[0] = FREE;
  const { chi2, p } = chiSquareP([counts[1], counts[2]], [0.6 * PREMIUM, 0.4 * PREMIUM]);
  console.log(`node split: premium-a=${counts[1]} premium-b=${counts[2]} standard=${counts[0]} chi2=${chi2.toFixed(3)} p=${p.toFixed(4)}`);
  assert.ok(p > 0.001, `60/40 split rejected: ${counts[1]}/${counts[2]}, chi2=${chi2}, p=${p}`);

  const expected = { 0: counts[0], 1: counts[1], 2: counts[2] };
  const same = (s) => JSON.stringify(s.flagVariations['ai-split']) === JSON.stringify(expected);
  await client.flush();
  const stats = await waitFor(ld.stats, same);
  assert.deepEqual(stats.flagVariations['ai-split'], { 0: FREE, 1: counts[1], 2: counts[2] });
  assert.equal(stats.byCustomKey['$ld:ai:usage:completion-config'], PREMIUM + FREE);
  assert.deepEqual([stats.malformedEvents, stats.rejectedPayloads, stats.duplicatePayloads], [0, 0, 0]);
});

test('tracker events carry the 0.16.8 data fields', async (t) => {
  const { ld, client, ai } = await startClient(t);
  const served = {};
  for (let n = 0; n < 4; n += 1) { // user-3's run fails
    const config = await ai.completionConfig('ai-tracked', ctx(`user-${n}`, 'premium'));
    served[`user-${n}`] = MODEL_TO_INDEX[config.model.name];
    const { tracker } = config;
    tracker.trackDuration(100 + n);
    tracker.trackTimeToFirstToken(20 + n);
    tracker.trackTokens({ total: 30 + n, input: 10 + n, output: 20 });
    if (n !== 3) tracker.trackSuccess(); else tracker.trackError();
    tracker.trackFeedback({ kind: n !== 3 ? LDFeedbackKind.Positive : LDFeedbackKind.Negative });
  }
  // A config the SDK does not know: the default (disabled) config still has a tracker.
  (await ai.completionConfig('ai-missing', ctx('user-x', 'premium'))).tracker.trackError();

  const expectedCounts = {
    '$ld:ai:duration:total': 4, '$ld:ai:feedback:user:negative': 1, '$ld:ai:feedback:user:positive': 3,
    '$ld:ai:generation:error': 2, '$ld:ai:generation:success': 3, '$ld:ai:sdk:info': 1,
    '$ld:ai:tokens:input': 4, '$ld:ai:tokens:output': 4, '$ld:ai:tokens:total': 4, '$ld:ai:tokens:ttf': 4,
    '$ld:ai:usage:completion-config': 5,
  };
  await client.flush();
  const stats = await waitFor(ld.stats, (s) => JSON.stringify(s.byCustomKey) === JSON.stringify(expectedCounts));
  assert.deepEqual(stats.byCustomKey, expectedCounts);
  assert.equal(stats.customMetricSums['$ld:ai:tokens:total'], 30 + 31 + 32 + 33);

  const metricOf = {
    '$ld:ai:duration:total': (n) => 100 + n, '$ld:ai:tokens:ttf': (n) => 20 + n, '$ld:ai:tokens:total': (n) => 30 + n,
    '$ld:ai:tokens:input': (n) => 10 + n, '$ld:ai:tokens:output': () => 20,
  };
  for (const [key, count] of Object.entries(expectedCounts)) {
    const events = await ld.customEvents(key);
    assert.equal(events.length, count, `${key}: ${events.length} events`);
    if (key.startsWith('$ld:ai:usage:')) {
      for (const e of events) assert.ok(['ai-tracked', 'ai-missing'].includes(e.data) && e.metricValue === 1, JSON.stringify(e));
    } else if (key === '$ld:ai:sdk:info') {
      assert.deepEqual(events[0].context, { kind: 'ld_ai', key: 'ld-internal-tracking', anonymous: true });
      assert.deepEqual(events[0].data, { aiSdkName: '@launchdarkly/server-sdk-ai', aiSdkVersion: '0.16.8', aiSdkLanguage: 'javascript' });
      assert.equal(events[0].metricValue, 1);
    } else {
      for (const e of events) {
        const user = e.context.key;
        if (user === 'user-x') {
          assert.deepEqual(e.data, { variationKey: '', configKey: 'ai-missing', version: 1, modelName: '', providerName: '' });
          continue;
        }
        const n = Number(user.slice('user-'.length));
        const v = VARIATIONS[served[user]];
        // 0.16.8 sends exactly these five fields: no runId (added in 0.17), no aiSdkName (0.15.0–0.16.3 only).
        assert.deepEqual(e.data, {
          variationKey: v._ldMeta.variationKey, configKey: 'ai-tracked', version: v._ldMeta.version,
          modelName: v.model.name, providerName: v.provider.name,
        }, `${key} for ${user}`);
        assert.equal(e.metricValue, (metricOf[key] ?? (() => 1))(n), `${key} metricValue for ${user}`);
      }
    }
  }
});

test('a flag change through the admin API reaches the SDK', async (t) => {
  const { ld, client, ai } = await startClient(t);
  const context = ctx('user-7', 'premium');
  assert.ok([1, 2].includes(await servedIndex(ai, 'ai-propagation', context)));
  const updated = aiFlag('ai-propagation', { variation: 3 });
  updated.variations = [...VARIATIONS, aiVariation('premium-next', 'gpt-4.1', 'openai', 4)];
  const start = performance.now();
  const stored = await ld.putFlag(updated);
  const served = await waitFor(() => ai.completionConfig('ai-propagation', context), (c) => c.model.name === 'gpt-4.1', 5_000, 1);
  const elapsed = performance.now() - start;
  console.log(`node propagation: ${elapsed.toFixed(1)} ms (flag version ${stored.version})`);
  assert.equal(stored.version, 2);
  assert.equal(served.model.name, 'gpt-4.1', 'the change did not arrive within 5 s');
  assert.equal((await client.variationDetail('ai-propagation', context, null)).variationIndex, 3);
});

test('an unknown SDK key fails initialization with 401', async (t) => {
  const ld = await startMockLd(t);
  const res = await fetch(`${ld.url}/all`, { headers: { authorization: 'sdk-unknown' } });
  assert.equal(res.status, 401);
  const client = makeClient(t, ld.url, 'sdk-unknown');
  const start = performance.now();
  await assert.rejects(client.waitForInitialization({ timeout: 3 }), /Authentication failed/);
  assert.ok(performance.now() - start < 2_500, 'a 401 must fail init at once, not by timeout');
  assert.equal(client.initialized(), false);
  assert.equal(await client.variation('ai-split', { kind: 'user', key: 'someone' }, 'fallback'), 'fallback');
});

// Under mock-ld's faults (`/admin/faults`), as the SDK behaves: no data at start-up (the
// wait times out, the fallback is served, the SDK initializes once the fault ends); a stream
// stalled, refused or dropped (the data kept, reconnects with backoff, the change made
// meanwhile served after or through a reopened stream); a malformed event skipped; a polling
// client refused (the fallback until its next poll, 30 s on); an events payload refused
// (`eventsError`) or whose connection is closed unanswered (`eventsClosed`) sent twice, a
// second apart, under one payload id, then dropped: js-sdk-common's
// EventSender._tryPostingEvents retries once after a recoverable status or a thrown fetch
// alike (canRetry, then false); a held one waited for, and its retry stored; slow and
// throttled links (initialization waits for the payload). Only least times are asserted.
const faultOn = (ld, spec) => ld.admin('POST', '/faults', spec);
const faultOff = (ld, fault) => ld.admin('DELETE', `/faults/${fault.id}`);
const refusedEvents = async (ld) => (await ld.admin('GET', '/faults')).refusedEvents.find((t) => t.environment === 'test') ?? {};
/**
 * `spec` switched on once the client's diagnostic-init event is in: the client posts it on
 * its own at start (js-sdk-common's EventProcessor.start: _postDiagnosticEvent), and a late
 * one would meet the fault too, as a second payload.
 */
async function eventsFaultOn(ld, spec) {
  await waitFor(() => ld.stats(), (s) => s.byKind['diagnostic-init']);
  return faultOn(ld, spec);
}
/** What mock-ld has counted so far against `fault`, while it is on. */
const counted = async (ld, fault) => (await ld.admin('GET', '/faults')).active.find((f) => f.id === fault.id).counts.requests;
/** Everyone falls through to variation 2 of ai-tracked from now on (0 before). */
async function changeFlag(ld) {
  const flag = await ld.admin('GET', '/environments/test/flags/ai-tracked');
  await ld.putFlag({ ...flag, fallthrough: { variation: 2 } });
}
const servedBy = (client) => async () => (await client.variationDetail('ai-tracked', { kind: 'user', key: 'user-1', tier: 'free' }, null)).variationIndex;
// js-server-sdk-common's StreamingProcessor.start gives the event source
// `initialRetryDelayMillis` 1000 (streamInitialReconnectDelay, 1 s); node-server-sdk's
// NodeRequests.createEventSource adds jitterRatio 0.5; launchdarkly-eventsource's
// retry-delay.js doubles the delay per retry (defaultBackoff) and takes off at most half
// (defaultJitter): the first reconnect comes at least 0.5 s after a stream ends, the second
// at least 1 s later.
const FIRST_RECONNECT_MS = 500;
const FIRST_TWO_RECONNECTS_MS = 1500;

test('unreachable at start-up: the fallback, then initialization after the fault', async (t) => {
  const ld = await startMockLd(t);
  const fault = await faultOn(ld, { kind: 'sdkUnavailable' });
  const client = makeClient(t, ld.url);
  // A 503 is recoverable: the stream retries, and the wait ends by its timeout
  // (js-sdk-common's cancelableTimedPromise: "<task> timed out after <t> seconds.").
  await assert.rejects(client.waitForInitialization({ timeout: 2 }), /waitForInitialization timed out after 2 seconds/);
  assert.equal(client.initialized(), false);
  const context = { kind: 'user', key: 'user-1', tier: 'free' };
  assert.equal(await client.variation('ai-split', context, 'fallback'), 'fallback');
  const off = await faultOff(ld, fault);
  assert.ok(off.counts.requests >= 1, JSON.stringify(off));
  assert.equal(await waitFor(() => client.initialized(), (v) => v), true, 'initialized within 15 s of the fault ending');
  assert.equal((await client.variationDetail('ai-split', context, null)).variationIndex, 0);
});

test('a stalled stream delivers nothing until the fault ends', async (t) => {
  const { ld, client } = await startClient(t);
  const served = servedBy(client);
  assert.equal(await served(), 0);
  const fault = await faultOn(ld, { kind: 'streamStalled' });
  await changeFlag(ld);
  await sleep(1000);
  assert.equal(await served(), 0, 'nothing arrived through the stalled stream');
  const off = await faultOff(ld, fault);
  assert.equal(off.counts.requests, 1, JSON.stringify(off));
  assert.equal(await waitFor(served, (v) => v === 2, 30_000), 2);
});

test('a refused stream keeps the data, reconnects with backoff, and catches up after', async (t) => {
  const { ld, client } = await startClient(t);
  const served = servedBy(client);
  assert.equal(await served(), 0);
  const started = performance.now();
  const fault = await faultOn(ld, { kind: 'streamRefused', status: 503 });
  await changeFlag(ld);
  // The open stream ended (1), then two reopens refused (2, 3): StreamingProcessor's
  // errorFilter (_retryAndHandleError) retries what js-sdk-common's shouldRetry allows, a 503 too.
  const count = await waitFor(() => counted(ld, fault), (n) => n >= 3);
  const took = performance.now() - started;
  assert.ok(count >= 3, `the SDK reconnects while refused: ${count}`);
  assert.ok(took >= FIRST_TWO_RECONNECTS_MS, `two reconnects ${took.toFixed(0)} ms after the stream ended`);
  assert.equal(await served(), 0, 'the data it had, kept through the fault');
  const off = await faultOff(ld, fault);
  assert.equal(await waitFor(served, (v) => v === 2, 30_000), 2);
  console.log(`node streamRefused: ${off.counts.requests} streams ended or refused; the first two reconnects ${took.toFixed(0)} ms after the fault began`);
});

test('a dropped stream is reopened with backoff, and its payload brings the change', async (t) => {
  const { ld, client } = await startClient(t);
  const served = servedBy(client);
  assert.equal(await served(), 0);
  const started = performance.now();
  const fault = await faultOn(ld, { kind: 'streamDropped' });
  await changeFlag(ld);
  // The open stream ended (1); each reopened one ends after its `put` (2, 3): an ended
  // response is launchdarkly-eventsource's `end` error (eventsource.js `failed`), retried.
  const count = await waitFor(() => counted(ld, fault), (n) => n >= 3);
  const took = performance.now() - started;
  assert.ok(count >= 3, `the SDK reopens the dropped stream: ${count}`);
  assert.ok(took >= FIRST_TWO_RECONNECTS_MS, `two reopens ${took.toFixed(0)} ms after the stream ended`);
  // A reopened stream's `put` is the whole data set, the change included: it arrives while
  // the fault is still on.
  assert.equal(await waitFor(served, (v) => v === 2), 2);
  const off = await faultOff(ld, fault);
  console.log(`node streamDropped: ${off.counts.requests} streams ended; the first two reopens ${took.toFixed(0)} ms after the fault began`);
});

test('a malformed event is skipped: the stream reads on', async (t) => {
  const { ld, client } = await startClient(t);
  const served = servedBy(client);
  assert.equal(await served(), 0);
  const fault = await faultOn(ld, { kind: 'streamMalformed' });
  await changeFlag(ld);
  // As the Rust SDK, unlike the Python one: StreamingProcessor's listener reports the bad
  // JSON (reportJsonError, to the client's _dataSourceErrorHandler, which only reports once
  // initialized) and returns, leaving the stream open: the change comes through it.
  assert.equal(await waitFor(served, (v) => v === 2), 2);
  await sleep(2 * FIRST_RECONNECT_MS); // past the least reconnect delay: a restart would show
  assert.equal(await counted(ld, fault), 1, 'no second stream');
  const off = await faultOff(ld, fault);
  assert.equal(off.counts.requests, 1, JSON.stringify(off));
});

test('refused polling leaves a polling SDK on the fallback', async (t) => {
  const ld = await startMockLd(t);
  const fault = await faultOn(ld, { kind: 'pollingError', status: 503 });
  // js-server-sdk-common's Configuration validates `pollInterval` as numberWithMin(30): a
  // second poll is 30 s away, too long here: one refused first poll is the test.
  const client = makeClient(t, ld.url, SDK_KEY, { stream: false, sendEvents: false });
  // PollingProcessor._poll: a recoverable status (isHttpRecoverable(503)) is logged "will
  // retry" and the next poll scheduled, with no error to the client: the wait times out.
  await assert.rejects(client.waitForInitialization({ timeout: 2 }), /waitForInitialization timed out after 2 seconds/);
  assert.equal(client.initialized(), false);
  assert.equal(await client.variation('ai-tracked', { kind: 'user', key: 'user-1' }, 'fallback'), 'fallback');
  const off = await faultOff(ld, fault);
  // Requestor.requestAllData makes one request a poll: no retry of its own.
  assert.equal(off.counts.requests, 1, JSON.stringify(off));
});

// EventSender._tryPostingEvents passes no `timeout` to NodeRequests.fetch, but NodeRequests
// uses Node's http.globalAgent when given no TLS or proxy options (createAgent: undefined),
// and since Node 19 that agent times a socket out after 5 s without a byte (its `timeout`
// option); NodeRequests.fetch's 'timeout' handler then destroys the request ("Request timed
// out"): a thrown fetch to _tryPostingEvents.
const EVENTS_SOCKET_TIMEOUT_MS = http.globalAgent.options.timeout;

test('held events are waited for, then retried and stored', async (t) => {
  const { ld, client } = await startClient(t);
  const fault = await eventsFaultOn(ld, { kind: 'eventsTimeout' });
  const context = { kind: 'user', key: 'user-1' };
  for (let i = 0; i < 5; i += 1) client.track('during-fault', context);
  const flushed = client.flush().catch(() => {});
  // A hold shorter than the socket timeout (EVENTS_SOCKET_TIMEOUT_MS) is waited out.
  await waitFor(async () => (await refusedEvents(ld)).refusedAttempts ?? 0, (n) => n >= 1);
  await sleep(1500); // past the SDK's retry delay, and still one attempt: it waits
  assert.equal((await refusedEvents(ld)).refusedAttempts, 1, JSON.stringify(await refusedEvents(ld)));
  const off = await faultOff(ld, fault);
  assert.equal(off.counts.payloads, 1, JSON.stringify(off));
  await flushed;
  // The 503 that ends the hold is recoverable: one retry a second later, stored.
  const stats = await waitFor(() => ld.stats(), (s) => s.byCustomKey['during-fault'] === 5);
  assert.equal(stats.byCustomKey['during-fault'], 5, 'the retry after the hold was stored');
  const totals = await refusedEvents(ld);
  assert.equal(totals.retriedPayloads, 1, JSON.stringify(totals));
});

test('a slow link delays initialization by the latency', async (t) => {
  const ld = await startMockLd(t);
  const latencyMs = 1500;
  const fault = await faultOn(ld, { kind: 'sdkSlow', latencyMs });
  const started = performance.now();
  const client = makeClient(t, ld.url, SDK_KEY, { sendEvents: false });
  // Initialized on the stream's first `put` (createStreamListeners' put → initSuccess),
  // which comes no sooner.
  await client.waitForInitialization({ timeout: 10 });
  const took = performance.now() - started;
  assert.ok(took >= latencyMs, `initialized after ${took.toFixed(0)} ms`);
  assert.equal(await servedBy(client)(), 0);
  const off = await faultOff(ld, fault);
  assert.equal(off.counts.requests, 1, `one stream slowed: ${JSON.stringify(off)}`);
  console.log(`node sdkSlow: ${latencyMs} ms added; initialized after ${took.toFixed(0)} ms`);
});

test('a throttled link delays initialization by the payload\'s size', async (t) => {
  const ld = await startMockLd(t);
  // The polling answer of the same data: smaller than the stream's `put`, a least size.
  const size = (await (await fetch(`${ld.url}/sdk/latest-all`, { headers: { authorization: SDK_KEY } })).arrayBuffer()).byteLength;
  const rate = Math.max(Math.floor((size * 2) / 3), 1); // about a second and a half for the payload
  const fault = await faultOn(ld, { kind: 'sdkThrottled', bytesPerSecond: rate });
  const started = performance.now();
  const client = makeClient(t, ld.url, SDK_KEY, { sendEvents: false });
  // Initialized once the whole `put` has been read and parsed (StreamingProcessor's listener).
  await client.waitForInitialization({ timeout: 10 });
  const took = performance.now() - started;
  assert.ok(took >= (size / rate) * 1000, `initialized after ${took.toFixed(0)} ms`);
  assert.equal(await servedBy(client)(), 0);
  const off = await faultOff(ld, fault);
  assert.equal(off.counts.requests, 1, `one stream throttled: ${JSON.stringify(off)}`);
  console.log(`node sdkThrottled: ${size} bytes at ${rate} B/s; initialized after ${took.toFixed(0)} ms`);
});

/** Events tracked while `spec` refuses them: sent twice under one payload id, then dropped. */
async function eventsRetriedOnceThenLost(t, spec, settleMs = 1500) {
  const { ld, client } = await startClient(t);
  const fault = await eventsFaultOn(ld, spec);
  const context = { kind: 'user', key: 'user-1' };
  for (let i = 0; i < 5; i += 1) client.track('during-fault', context);
  const started = performance.now();
  const flushed = client.flush().catch(() => {});
  await waitFor(async () => (await refusedEvents(ld)).refusedAttempts ?? 0, (n) => n >= 2);
  const retriedAfter = performance.now() - started;
  await sleep(settleMs); // past the one retry: a third attempt would have come by now
  const totals = await refusedEvents(ld);
  assert.equal(totals.refusedAttempts, 2, JSON.stringify(totals));
  assert.equal(totals.refusedPayloads, 1, JSON.stringify(totals));
  assert.ok(totals.refusedEvents >= 5, JSON.stringify(totals));
  await faultOff(ld, fault);
  await flushed;
  for (let i = 0; i < 3; i += 1) client.track('after-fault', context);
  await client.flush();
  const stats = await waitFor(() => ld.stats(), (s) => s.byCustomKey['after-fault'] === 3);
  assert.equal(stats.byCustomKey['after-fault'], 3);
  assert.equal(stats.byCustomKey['during-fault'], undefined, 'the SDK dropped them: never resent');
  assert.equal((await refusedEvents(ld)).retriedPayloads, 0);
  return retriedAfter;
}

test('refused events are retried once, then lost', (t) => eventsRetriedOnceThenLost(t, { kind: 'eventsError', status: 503 }));

test('events whose connection is closed unanswered are retried once, then lost', (t) => eventsRetriedOnceThenLost(t, { kind: 'eventsClosed' }));

test('events held past the socket timeout are retried once, then lost', async (t) => {
  assert.equal(EVENTS_SOCKET_TIMEOUT_MS, 5000, 'Node 19+ http.globalAgent');
  // The first attempt times out, the retry a second later (_tryPostingEvents' sleep()) is
  // held and times out too, then the payload is dropped.
  const retriedAfter = await eventsRetriedOnceThenLost(t, { kind: 'eventsTimeout' }, EVENTS_SOCKET_TIMEOUT_MS + 1500);
  assert.ok(retriedAfter >= EVENTS_SOCKET_TIMEOUT_MS + 1000, `the retry ${retriedAfter.toFixed(0)} ms after the flush`);
  console.log(`node eventsTimeout held past ${EVENTS_SOCKET_TIMEOUT_MS} ms: retried ${retriedAfter.toFixed(0)} ms after the flush, then dropped`);
});
