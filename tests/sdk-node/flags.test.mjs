/**
 * The feature-flag REST API and segment JSON Patch through LaunchDarkly's generated
 * TypeScript client (`launchdarkly-api-typescript`), checked against the real Node server
 * SDK's evaluations: create, JSON Patch, merge patch and semantic patch (the client's
 * `patchFeatureFlag` with the semantic-patch content type), status, delete. Run with
 * `node --test` in this directory (MOCK_LD_BIN, default <repo>/target/debug/mock-ld).
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
import { Configuration, FeatureFlagsApi, SegmentsApi } from 'launchdarkly-api-typescript';

process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SDK_KEY = 'sdk-node-flags';
const PROJECT = 'default';
const ENV = 'test';
const SEMANTIC = { headers: { 'Content-Type': 'application/json; domain-model=launchdarkly.semanticpatch' } };

/** Starts a private mock-ld for test `t`; returns its URL. */
async function startMockLd(t) {
  const bin = process.env.MOCK_LD_BIN || join(REPO, 'target/debug/mock-ld');
  assert.ok(existsSync(bin), `mock-ld binary not found at ${bin}: run \`cargo build -p mock-ld\``);
  const proc = spawn(bin, ['--listen', '127.0.0.1:0', '--sdk-key', SDK_KEY], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(async () => {
    if (proc.exitCode === null && proc.kill('SIGTERM')) await once(proc, 'exit');
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), sleep(10_000, { value: 'timeout' }, { ref: false })]);
  const match = /^mock-ld listening on (http:\/\/\S+)$/.exec(first.value ?? '');
  assert.ok(match, `mock-ld did not start: first line ${JSON.stringify(first.value)}`);
  return match[1];
}

async function sdkClient(t, url) {
  const client = init(SDK_KEY, { baseUri: url, streamUri: url, eventsUri: url, logger: basicLogger({ level: 'none' }) });
  t.after(() => client.close());
  await client.waitForInitialization({ timeout: 5 });
  return client;
}

/** Waits for the SDK to evaluate `key` to `expected` (changes arrive by stream). */
async function evaluates(client, key, context, expected) {
  let got;
  for (let i = 0; i < 50; i += 1) {
    got = await client.variation(key, context, 'fallback');
    if (got === expected) return;
    await sleep(100);
  }
  assert.equal(got, expected, `${key} for ${context.key}`);
}

test('flags: create, JSON Patch, merge patch, semantic patch, status and delete reach the SDK', async (t) => {
  const url = await startMockLd(t);
  const config = new Configuration({ apiKey: 'api-default-admin', basePath: url });
  const flags = new FeatureFlagsApi(config);
  const sdk = await sdkClient(t, url);
  const bob = { kind: 'user', key: 'bob' };
  const alice = { kind: 'user', key: 'alice' };

  const { data: created, status } = await flags.postFeatureFlag(PROJECT, {
    name: 'Banner', key: 'banner', variations: [{ value: 'red' }, { value: 'blue', name: 'Blue' }, { value: 'none' }],
    defaults: { onVariation: 1, offVariation: 2 }, tags: ['web'],
  });
  assert.equal(status, 201);
  assert.deepEqual([created.kind, created.temporary, created.variations.map((v) => v.value)],
    ['multivariate', true, ['red', 'blue', 'none']]);
  assert.equal(created.environments[ENV].offVariation, 2);
  await evaluates(sdk, 'banner', bob, 'none');

  const { data: on } = await flags.patchFeatureFlag(PROJECT, 'banner', {
    comment: 'on in test', patch: [{ op: 'replace', path: '/environments/test/on', value: true }],
  });
  assert.deepEqual([on.environments[ENV].on, on.environments.production.on, on._version], [true, false, 2]);
  await evaluates(sdk, 'banner', bob, 'blue');

  const { data: merged } = await flags.patchFeatureFlag(PROJECT, 'banner', { comment: 'rename', merge: { name: 'Top banner' } });
  assert.equal(merged.name, 'Top banner');

  const ids = Object.fromEntries(merged.variations.map((v) => [v.value, v._id]));
  const { data: targeted } = await flags.patchFeatureFlag(PROJECT, 'banner', {
    environmentKey: ENV,
    instructions: [
      { kind: 'addTargets', values: ['alice'], variationId: ids.red },
      { kind: 'updateOffVariation', variationId: ids.red },
    ],
  }, undefined, SEMANTIC);
  assert.deepEqual(targeted.environments[ENV].targets, [{ values: ['alice'], variation: 0 }]);
  assert.equal(targeted.environments[ENV].offVariation, 0);
  await evaluates(sdk, 'banner', alice, 'red');
  await evaluates(sdk, 'banner', bob, 'blue');

  await assert.rejects(
    flags.patchFeatureFlag(PROJECT, 'banner', { patch: [{ op: 'replace', path: '/_version', value: 9 }] }),
    (err) => err.response.status === 400 && err.response.data.message === '/_version is read-only; the patch may not change it',
  );

  await sdk.flush();
  let seen;
  for (let i = 0; i < 50; i += 1) {
    ({ data: seen } = await flags.getFeatureFlagStatus(PROJECT, ENV, 'banner'));
    if (seen.name !== 'new') break;
    await sleep(100);
  }
  assert.equal(seen.name, 'active');
  assert.ok(!Number.isNaN(Date.parse(seen.lastRequested)));
  const { data: across } = await flags.getFeatureFlagStatusAcrossEnvironments(PROJECT, 'banner');
  assert.deepEqual([across.environments.test.name, across.environments.production.name], ['active', 'new']);

  const { data: list } = await flags.getFeatureFlags(PROJECT, ENV);
  assert.deepEqual(list.items.map((f) => f.key), ['banner']);

  const { status: deleted } = await flags.deleteFeatureFlag(PROJECT, 'banner');
  assert.equal(deleted, 204);
  await evaluates(sdk, 'banner', bob, 'fallback');
  await assert.rejects(flags.getFeatureFlag(PROJECT, 'banner'), (err) => err.response.status === 404);
});

test('segments: JSON Patch from the TypeScript client reaches a segmentMatch rule', async (t) => {
  const url = await startMockLd(t);
  const config = new Configuration({ apiKey: 'api-default-admin', basePath: url });
  const segments = new SegmentsApi(config);
  const flags = new FeatureFlagsApi(config);
  const sdk = await sdkClient(t, url);

  await segments.postSegment(PROJECT, ENV, { key: 'beta', name: 'Beta' });
  const { data: flag } = await flags.postFeatureFlag(PROJECT, { name: 'Beta UI', key: 'beta-ui' });
  const ids = Object.fromEntries(flag.variations.map((v) => [String(v.value), v._id]));
  await flags.patchFeatureFlag(PROJECT, 'beta-ui', {
    environmentKey: ENV,
    instructions: [
      { kind: 'turnFlagOn' },
      { kind: 'updateFallthroughVariationOrRollout', variationId: ids.false },
      { kind: 'addRule', clauses: [{ attribute: 'segmentMatch', op: 'segmentMatch', values: ['beta'], negate: false }], variationId: ids.true },
    ],
  }, undefined, SEMANTIC);
  const dana = { kind: 'user', key: 'dana' };
  await evaluates(sdk, 'beta-ui', dana, false);

  const { data: patched } = await segments.patchSegment(PROJECT, ENV, 'beta', {
    comment: 'add dana', patch: [{ op: 'add', path: '/included/-', value: 'dana' }],
  });
  assert.deepEqual(patched.included, ['dana']);
  await evaluates(sdk, 'beta-ui', dana, true);
});
