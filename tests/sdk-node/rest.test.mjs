/**
 * mock-ld's REST API v2 driven with fetch as LaunchDarkly's scripts do (raw token,
 * semantic-patch content type, variation `_id`s read from targeting), then checked with the
 * real Node server SDK and AI SDK: targets, a segment member, a multi-context rule, a 60/40
 * premium rollout (chi-square), a country rule, and `replaceRules []`. The AI Config lives in
 * a project created through the API, so its new SDK key streams too. Run with `node --test`
 * in this directory (MOCK_LD_BIN, default <repo>/target/debug/mock-ld).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { initAi } from '@launchdarkly/server-sdk-ai';

process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PROJECT = 'node-shop';
const CONFIG = 'support-assistant';
const PREMIUM = 20_000;
const MODELS = {
  standard: 'OpenAI.gpt-4o-mini', 'premium-a': 'OpenAI.gpt-4o', 'premium-b': 'Anthropic.claude-3-5-sonnet',
  enterprise: 'OpenAI.o1', eu: 'Mistral.mistral-large',
};

/** Starts a private mock-ld for test `t`; returns its URL. */
async function startMockLd(t) {
  const bin = process.env.MOCK_LD_BIN || join(REPO, 'target/debug/mock-ld');
  assert.ok(existsSync(bin), `mock-ld binary not found at ${bin}: run \`cargo build -p mock-ld\``);
  const proc = spawn(bin, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(async () => {
    if (proc.exitCode === null && proc.kill('SIGTERM')) await once(proc, 'exit');
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), sleep(10_000, { value: 'timeout' }, { ref: false })]);
  const match = /^mock-ld listening on (http:\/\/\S+)$/.exec(first.value ?? '');
  assert.ok(match, `mock-ld did not start: first line ${JSON.stringify(first.value)}`);
  return match[1];
}

/** One REST call as a script makes it; asserts the status and returns the JSON body. */
function restClient(url) {
  return async (method, path, expect, body) => {
    const headers = { Authorization: 'api-default-admin', 'LD-API-Version': 'beta' };
    if (body) headers['Content-Type'] = 'application/json; domain-model=launchdarkly.semanticpatch';
    const res = await fetch(`${url}/api/v2${path}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, expect, `${method} ${path} -> ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/** The project, AI Config, variations and segment; returns the test SDK key and variation ids. */
async function setUp(rest) {
  const project = await rest('POST', '/projects', 201, { key: PROJECT, name: 'Node shop' });
  const sdkKey = project.environments.find((e) => e.key === 'test').apiKey;
  await rest('POST', `/projects/${PROJECT}/ai-configs`, 201, { key: CONFIG, name: 'Support', mode: 'completion' });
  for (const [key, modelConfigKey] of Object.entries(MODELS)) {
    await rest('POST', `/projects/${PROJECT}/ai-configs/${CONFIG}/variations`, 201, {
      key, name: key, modelConfigKey, model: { parameters: { temperature: 0.2 } },
      messages: [{ role: 'system', content: 'You help {{ldctx.key}}.' }],
    });
  }
  await rest('POST', `/segments/${PROJECT}/test`, 201, { key: 'beta-testers', name: 'Beta testers' });
  await rest('PATCH', `/segments/${PROJECT}/test/beta-testers`, 200, {
    environmentKey: 'test', instructions: [{ kind: 'addIncludedUsers', values: ['beta-1'] }],
  });
  const targeting = await rest('GET', `/projects/${PROJECT}/ai-configs/${CONFIG}/targeting`, 200);
  return { sdkKey, ids: Object.fromEntries(targeting.variations.map((v) => [v.key, v._id])) };
}

const targetingPatch = (rest, instructions) => rest('PATCH', `/projects/${PROJECT}/ai-configs/${CONFIG}/targeting`, 200,
  { environmentKey: 'test', comment: 'rollout plan', instructions });

const user = (key, attributes = {}) => ({ kind: 'user', key, ...attributes });
const adminOf = (plan) => ({ kind: 'multi', user: { key: 'alice', role: 'admin' }, organization: { key: 'org-1', plan } });

/** erfc by Numerical Recipes' erfcc (fractional error < 1.2e-7); p of chi-square with 1 df. */
function chiSquareP(observed, expected) {
  const chi2 = observed.reduce((sum, o, i) => sum + (o - expected[i]) ** 2 / expected[i], 0);
  const z = Math.sqrt(chi2 / 2);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return { chi2, p: t * Math.exp(poly) };
}

test('REST targeting is what the Node AI SDK serves', async (t) => {
  const url = await startMockLd(t);
  const rest = restClient(url);
  const { sdkKey, ids } = await setUp(rest);
  await targetingPatch(rest, [
    { kind: 'updateFallthroughVariationOrRollout', variationId: ids.standard },
    { kind: 'addTargets', values: ['qa-1'], variationId: ids['premium-b'] },
    { kind: 'addRule', variationId: ids['premium-a'], clauses: [{ op: 'segmentMatch', values: ['beta-testers'] }] },
    { kind: 'addRule', variationId: ids.enterprise, clauses: [
      { contextKind: 'user', attribute: 'role', op: 'in', values: ['admin'] },
      { contextKind: 'organization', attribute: 'plan', op: 'in', values: ['enterprise'] }] },
    { kind: 'addRule', clauses: [{ contextKind: 'user', attribute: 'tier', op: 'in', values: ['premium'] }],
      rolloutWeights: { [ids['premium-a']]: 60000, [ids['premium-b']]: 40000 } },
    { kind: 'addRule', variationId: ids.eu, clauses: [{ contextKind: 'user', attribute: 'country', op: 'in', values: ['FR'] }] },
  ]);

  const client = init(sdkKey, { baseUri: url, streamUri: url, eventsUri: url, sendEvents: false, logger: basicLogger({ level: 'none' }) });
  t.after(() => client.close());
  await client.waitForInitialization({ timeout: 5 });
  const ai = initAi(client);
  const model = async (context) => {
    const config = await ai.completionConfig(CONFIG, context);
    assert.ok(config.enabled, `disabled for ${JSON.stringify(context)}`);
    return config.model.name;
  };
  assert.equal(await model(user('qa-1', { tier: 'premium' })), 'claude-3-5-sonnet', 'individual target');
  assert.equal(await model(user('beta-1')), 'gpt-4o', 'segment member');
  assert.equal(await model(adminOf('enterprise')), 'o1', 'multi-context rule');
  assert.equal(await model(adminOf('free')), 'gpt-4o-mini', 'both contexts must match');
  assert.equal(await model(user('u-fr', { country: 'FR' })), 'mistral-large', 'country rule');
  assert.equal(await model(user('u-plain')), 'gpt-4o-mini', 'fallthrough');

  const counts = {};
  for (let i = 0; i < PREMIUM; i += 1) {
    const name = await model(user(`premium-${i}`, { tier: 'premium' }));
    counts[name] = (counts[name] ?? 0) + 1;
  }
  const [a, b] = [counts['gpt-4o'] ?? 0, counts['claude-3-5-sonnet'] ?? 0];
  assert.equal(a + b, PREMIUM, JSON.stringify(counts));
  const { chi2, p } = chiSquareP([a, b], [0.6 * PREMIUM, 0.4 * PREMIUM]);
  console.log(`node REST rollout: gpt-4o=${a} claude=${b} chi2=${chi2.toFixed(3)} p=${p.toFixed(4)}`);
  assert.ok(p > 0.001, `60/40 rejected: ${a}/${b}`);

  await targetingPatch(rest, [{ kind: 'replaceRules', rules: [] }]);
  const deadline = Date.now() + 5_000;
  while (await model(user('premium-0', { tier: 'premium' })) !== 'gpt-4o-mini') {
    assert.ok(Date.now() < deadline, 'replaceRules [] did not reach the SDK');
    await sleep(5);
  }
  assert.equal(await model(adminOf('enterprise')), 'gpt-4o-mini');
  assert.equal(await model(user('qa-1')), 'claude-3-5-sonnet', 'targets are not rules');
});
