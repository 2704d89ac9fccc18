/**
 * mock-ld's REST API v2 driven through LaunchDarkly's generated TypeScript client
 * (`launchdarkly-api-typescript`, axios based) for every operation it has — projects,
 * environments, model configs, AI Configs and variations, segments (semantic patch), the
 * audit log — then checked with the real Node server SDK and AI SDK: targets, a segment
 * member, a multi-context rule, a 60/40 premium rollout (chi-square), a country rule, and
 * `replaceRules []`. The client has no AI Config targeting operations (17.2.0), so targeting
 * goes by fetch as LaunchDarkly's scripts send it. The client does not validate answers, so
 * `typed` checks each against the client's own model: every field its `api.d.ts` declares
 * required is present, nested models included. Run with `node --test` in this directory
 * (MOCK_LD_BIN, default <repo>/target/debug/mock-ld).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { initAi } from '@launchdarkly/server-sdk-ai';
import {
  AIConfigsBetaApi, AuditLogApi, Configuration, EnvironmentsApi, ProjectsApi, SegmentsApi,
} from 'launchdarkly-api-typescript';

process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TOKEN = 'api-default-admin';
const BETA = 'beta';
const SEMANTIC_PATCH = 'application/json; domain-model=launchdarkly.semanticpatch';
const PROJECT = 'node-shop';
const CONFIG = 'support-assistant';
const PREMIUM = 20_000;
const MODELS = {
  standard: 'OpenAI.gpt-4o-mini', 'premium-a': 'OpenAI.gpt-4o', 'premium-b': 'Anthropic.claude-3-5-sonnet',
  enterprise: 'OpenAI.o1', eu: 'Mistral.mistral-large',
};

/** The client's models, read from its `api.d.ts`: interface name -> property -> {optional, type}. */
const MODELS_DTS = (() => {
  const dts = join(dirname(createRequire(import.meta.url).resolve('launchdarkly-api-typescript')), 'api.d.ts');
  const models = new Map();
  for (const [, name, body] of readFileSync(dts, 'utf8').matchAll(/^export interface (\w+) \{\n([\s\S]*?)^\}/gm)) {
    const props = new Map();
    for (const [, prop, optional, type] of body.matchAll(/^ {4}'?([\w$]+)'?(\??): (.+);$/gm)) {
      props.set(prop, { optional: optional === '?', type });
    }
    models.set(name, props);
  }
  return models;
})();

/** Paths of the fields `model` requires that `value` lacks, nested models included. */
function missingFields(value, model, path = model) {
  const props = MODELS_DTS.get(model);
  assert.ok(props, `the client has no model ${model}`);
  const missing = [];
  for (const [prop, { optional, type }] of props) {
    if (!(prop in value)) {
      if (!optional) missing.push(`${path}.${prop}`);
      continue;
    }
    const refs = (type.match(/\b[A-Z]\w*/g) ?? []).filter((t) => MODELS_DTS.has(t));
    if (refs.length !== 1 || value[prop] === null) continue;
    const inner = value[prop];
    const items = type.startsWith('Array<') ? inner.map((v, i) => [v, `${path}.${prop}[${i}]`])
      : type.startsWith('{ [key: string]') ? Object.entries(inner).map(([k, v]) => [v, `${path}.${prop}.${k}`])
        : [[inner, `${path}.${prop}`]];
    for (const [item, itemPath] of items) missing.push(...missingFields(item, refs[0], itemPath));
  }
  return missing;
}

/** The body of a client call's answer, once it carries every field `model` requires. */
async function typed(call, model) {
  const { data } = await call;
  assert.deepEqual(missingFields(data, model), [], `${model} lacks required fields`);
  return data;
}

/** A call that must fail with `status`; its body typed as the client's `ModelError`. */
async function typedError(call, status) {
  const error = await call.then(() => assert.fail(`expected HTTP ${status}`), (e) => e);
  assert.equal(error.response?.status, status, String(error));
  assert.deepEqual(missingFields(error.response.data, 'ModelError'), []);
  return error.response.data;
}

/** Starts a private mock-ld for test `t`; returns its URL. */
async function startMockLd(t, args = []) {
  const bin = process.env.MOCK_LD_BIN || join(REPO, 'target/debug/mock-ld');
  assert.ok(existsSync(bin), `mock-ld binary not found at ${bin}: run \`cargo build -p mock-ld\``);
  const proc = spawn(bin, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(async () => {
    if (proc.exitCode === null && proc.kill('SIGTERM')) await once(proc, 'exit');
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), sleep(10_000, { value: 'timeout' }, { ref: false })]);
  const match = /^mock-ld listening on (http:\/\/\S+)$/.exec(first.value ?? '');
  assert.ok(match, `mock-ld did not start: first line ${JSON.stringify(first.value)}`);
  return match[1];
}

/** LaunchDarkly's generated client at mock-ld, one API object per resource. */
function restApi(url, token = TOKEN) {
  const config = new Configuration({ apiKey: token, basePath: url });
  return {
    ai: new AIConfigsBetaApi(config),
    projects: new ProjectsApi(config),
    environments: new EnvironmentsApi(config),
    segments: new SegmentsApi(config),
    audit: new AuditLogApi(config),
    url,
  };
}

/** Targeting by fetch: the client has neither the operation nor its model, so the Python
 * suite checks its shape and this one its values. */
async function targeting(api, method = 'GET', body = undefined) {
  const headers = { Authorization: TOKEN, 'LD-API-Version': BETA };
  if (body) headers['Content-Type'] = SEMANTIC_PATCH;
  const res = await fetch(`${api.url}/api/v2/projects/${PROJECT}/ai-configs/${CONFIG}/targeting`,
    { method, headers, body: body && JSON.stringify(body) });
  const answer = await res.json();
  assert.equal(res.status, 200, JSON.stringify(answer));
  return answer;
}

const targetingPatch = (api, instructions) => targeting(api, 'PATCH',
  { environmentKey: 'test', comment: 'rollout plan', instructions });

/** A segment semantic patch: the client types its body as a JSON Patch, so the content type says. */
const patchSegment = (api, key, instructions) => typed(api.segments.patchSegment(PROJECT, 'test', key,
  { environmentKey: 'test', instructions }, { headers: { 'Content-Type': SEMANTIC_PATCH } }), 'UserSegment');

/** The project, AI Config, variations and segment; returns the test SDK key and variation ids. */
async function setUp(api) {
  const project = await typed(api.projects.postProject({ key: PROJECT, name: 'Node shop' }), 'ProjectRep');
  const sdkKey = project.environments.find((e) => e.key === 'test').apiKey;
  const config = await typed(api.ai.postAIConfig(BETA, PROJECT, { key: CONFIG, name: 'Support', mode: 'completion' }), 'AIConfig');
  assert.deepEqual([config.key, config.version, config.variations], [CONFIG, 1, []]);
  for (const [key, modelConfigKey] of Object.entries(MODELS)) {
    const variation = await typed(api.ai.postAIConfigVariation(BETA, PROJECT, CONFIG, {
      key, name: key, modelConfigKey, model: { parameters: { temperature: 0.2 } },
      messages: [{ role: 'system', content: 'You help {{ldctx.key}}.' }],
    }), 'AIConfigVariation');
    assert.deepEqual([variation.key, variation.version, variation.modelConfigKey], [key, 1, modelConfigKey]);
  }
  await typed(api.segments.postSegment(PROJECT, 'test', { key: 'beta-testers', name: 'Beta testers' }), 'UserSegment');
  const segment = await patchSegment(api, 'beta-testers', [{ kind: 'addIncludedUsers', values: ['beta-1'] }]);
  assert.deepEqual(segment.included, ['beta-1']);
  const { variations } = await typed(api.ai.getAIConfig(BETA, PROJECT, CONFIG), 'AIConfig');
  return { sdkKey, ids: Object.fromEntries(variations.map((v) => [v.key, v._id])) };
}

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
  const api = restApi(url);
  const { sdkKey, ids } = await setUp(api);
  const set = await targetingPatch(api, [
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
  const test = set.environments.test;
  assert.deepEqual(test.targets, [{ contextKind: 'user', values: ['qa-1'], variation: 3 }], 'a target names its kind');
  assert.deepEqual(test.rules[2].rollout.variations.map((v) => [v.variation, v.weight]), [[2, 60000], [3, 40000]]);
  assert.equal(test.rules[2].rollout.contextKind, 'user');

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

  const replaced = await targetingPatch(api, [{ kind: 'replaceRules', rules: [] }]);
  assert.deepEqual(replaced.environments.test.rules, []);
  assert.ok(replaced._version > set._version);
  const deadline = Date.now() + 5_000;
  while (await model(user('premium-0', { tier: 'premium' })) !== 'gpt-4o-mini') {
    assert.ok(Date.now() < deadline, 'replaceRules [] did not reach the SDK');
    await sleep(5);
  }
  assert.equal(await model(adminOf('enterprise')), 'gpt-4o-mini');
  assert.equal(await model(user('qa-1')), 'claude-3-5-sonnet', 'targets are not rules');
});

test('every resource reads back typed, updates, deletes, and errors as {code, message}', async (t) => {
  const url = await startMockLd(t, ['--max-api-body-bytes', '4096']);
  const api = restApi(url);
  await setUp(api);

  const projects = await typed(api.projects.getProjects(undefined, undefined, undefined, undefined, 'environments'), 'Projects');
  assert.deepEqual(projects.items.map((p) => p.key), ['default', PROJECT]);
  const project = await typed(api.projects.getProject(PROJECT, 'environments'), 'Project');
  assert.deepEqual(project.environments.items.map((e) => e.key), ['production', 'test']);

  const staging = await typed(api.environments.postEnvironment(PROJECT, { key: 'staging', name: 'Staging', color: '00AA00' }), 'Environment');
  assert.match(staging.apiKey, /^sdk-/);
  assert.equal((await typed(api.environments.getEnvironment(PROJECT, 'staging'), 'Environment')).apiKey, staging.apiKey);
  const envs = await typed(api.environments.getEnvironmentsByProject(PROJECT), 'Environments');
  assert.deepEqual(envs.items.map((e) => e.key), ['production', 'staging', 'test']);

  const model = await typed(api.ai.postModelConfig(BETA, PROJECT, { key: 'Mistral.mistral-large', id: 'mistral-large-latest', name: 'Mistral Large', provider: 'Mistral' }), 'ModelConfig');
  assert.deepEqual([model.id, model.version, model.global], ['mistral-large-latest', 1, false]);
  const models = (await api.ai.listModelConfigs(BETA, PROJECT)).data;
  models.forEach((m) => assert.deepEqual(missingFields(m, 'ModelConfig'), []));
  assert.deepEqual(models.map((m) => m.key), ['Mistral.mistral-large']);
  assert.equal((await typed(api.ai.getModelConfig(BETA, PROJECT, 'Mistral.mistral-large'), 'ModelConfig')).name, 'Mistral Large');

  const configs = await typed(api.ai.getAIConfigs(BETA, PROJECT), 'AIConfigs');
  assert.deepEqual([configs.items.map((c) => c.key), configs.totalCount], [[CONFIG], 1]);
  const patched = await typed(api.ai.patchAIConfig(BETA, PROJECT, CONFIG, { name: 'Support v2', tags: ['support'] }), 'AIConfig');
  assert.deepEqual([patched.name, patched.tags], ['Support v2', ['support']]);
  assert.ok(patched.version > configs.items[0].version);
  const edited = await typed(api.ai.patchAIConfigVariation(BETA, PROJECT, CONFIG, 'eu', { name: 'Europe' }), 'AIConfigVariation');
  assert.deepEqual([edited.name, edited.version], ['Europe', 2]);
  const versions = await typed(api.ai.getAIConfigVariation(BETA, PROJECT, CONFIG, 'eu'), 'AIConfigVariationsResponse');
  assert.deepEqual(versions.items.map((v) => [v.version, v.name]), [[2, 'Europe'], [1, 'eu']]);
  await api.ai.deleteAIConfigVariation(BETA, PROJECT, CONFIG, 'eu');
  await typedError(api.ai.getAIConfigVariation(BETA, PROJECT, CONFIG, 'eu'), 404);

  const segments = await typed(api.segments.getSegments(PROJECT, 'test'), 'UserSegments');
  assert.deepEqual(segments.items.map((s) => [s.key, s.included]), [['beta-testers', ['beta-1']]]);
  const segment = await typed(api.segments.getSegment(PROJECT, 'test', 'beta-testers'), 'UserSegment');
  assert.ok(segment.lastModifiedDate >= segment.creationDate && segment.creationDate > 0);
  await api.segments.deleteSegment(PROJECT, 'test', 'beta-testers');
  await typedError(api.segments.getSegment(PROJECT, 'test', 'beta-testers'), 404);

  const log = await typed(api.audit.getAuditLogEntries(undefined, undefined, undefined, 5, `proj/${PROJECT}:aiconfig/*`), 'AuditLogEntryListingRepCollection');
  assert.deepEqual(log.items.map((e) => e.accesses[0].action).slice(0, 2), ['deleteAIConfigVariation', 'updateAIConfigVariation']);
  const entry = await typed(api.audit.getAuditLogEntry(log.items[1]._id), 'AuditLogEntryRep');
  assert.deepEqual([entry.delta.before.name, entry.delta.after.name], ['eu', 'Europe']);

  await api.ai.deleteModelConfig(BETA, PROJECT, 'Mistral.mistral-large');
  await api.ai.deleteAIConfig(BETA, PROJECT, CONFIG);
  assert.deepEqual((await api.ai.getAIConfigs(BETA, PROJECT)).data.items, []);
  await api.environments.deleteEnvironment(PROJECT, 'staging');
  await api.projects.deleteProject(PROJECT);
  await typedError(api.projects.getProject(PROJECT), 404);

  assert.equal((await typedError(api.ai.postAIConfig(BETA, 'default', { key: 'bad key', name: 'x' }), 400)).code, 'invalid_request');
  assert.equal((await typedError(restApi(url, 'api-wrong').projects.getProjects(), 401)).code, 'unauthorized');
  assert.equal((await typedError(api.projects.postProject({ key: 'default', name: 'again' }), 409)).code, 'conflict');
  const tooBig = await typedError(api.ai.postAIConfig(BETA, 'default', { key: 'big', name: 'x'.repeat(10_000) }), 413);
  assert.equal(tooBig.code, 'payload_too_large');
});

test('a role without the action gets 403 as {code, message}', async (t) => {
  const url = await startMockLd(t, ['--roles', join(REPO, 'mock-ld/examples/roles.yaml')]);
  const auditor = restApi(url, 'api-auditor');
  const refused = await typedError(auditor.ai.postAIConfig(BETA, 'default', { key: 'nope', name: 'Nope' }), 403);
  assert.equal(refused.code, 'forbidden');
  assert.match(refused.message, /createAIConfig on proj\/default:aiconfig\/nope/);
  assert.deepEqual((await typed(auditor.ai.getAIConfigs(BETA, 'default'), 'AIConfigs')).items, []);
});
