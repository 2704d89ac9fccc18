/**
 * The Node server SDK (@launchdarkly/node-server-sdk 9.13.7) with its FDv2 data system
 * (`dataSystem` option: a `/sdk/poll` initializer, then the `/sdk/stream` synchronizer)
 * against mock-ld: it initializes with the seeded data, sees a change live, recovers when
 * mock-ld restarts on the same port with `--state`, and with `--fdv2 off` falls back to
 * FDv1 (`/sdk/latest-all`) and still gets the data. Each test runs its own mock-ld
 * (MOCK_LD_BIN, default <repo>/target/debug/mock-ld). Run with `node --test` here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';

process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SDK_KEY = 'sdk-node-fdv2';
const flag = (key, value) => ({ key, on: true, variations: [value], fallthrough: { variation: 0 }, offVariation: 0 });
const SOMEONE = { kind: 'user', key: 'someone' };

/**
 * Starts mock-ld with `args` on `port` (0 picks one) seeded with flag `seeded`; stopped
 * after test `t` unless stopped before. Returns its URL, port, admin API and stop().
 */
async function startMockLd(t, dir, { port = 0, args = [] } = {}) {
  const bin = process.env.MOCK_LD_BIN || join(REPO, 'target/debug/mock-ld');
  assert.ok(existsSync(bin), `mock-ld binary not found at ${bin}: run \`cargo build -p mock-ld\` (or set MOCK_LD_BIN)`);
  const seed = join(dir, 'seed.json');
  writeFileSync(seed, JSON.stringify({ flags: { seeded: { ...flag('seeded', 'seed value'), version: 1 } } }));
  const log = openSync(join(dir, `mock-ld-${port}.log`), 'w');
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data', seed, '--sdk-key', SDK_KEY, ...args],
    { stdio: ['ignore', 'pipe', log] });
  const stop = async () => {
    if (proc.exitCode === null && proc.kill('SIGTERM')) await once(proc, 'exit');
  };
  t.after(async () => { await stop(); closeSync(log); });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([lines.next(), sleep(10_000, { value: 'timeout' }, { ref: false })]);
  const match = /^mock-ld listening on (http:\/\/\S+:(\d+))$/.exec(first.value ?? '');
  assert.ok(match, `mock-ld did not start: first line ${JSON.stringify(first.value)}, log in ${dir}`);
  const url = match[1];
  const admin = async (method, path, body) => {
    const res = await fetch(`${url}/admin${path}`, { method, body: body && JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const text = await res.text();
    assert.ok(res.ok, `${method} /admin${path} -> ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    url, port: Number(match[2]), admin, stop,
    putFlag: (f) => admin('PUT', `/environments/test/flags/${f.key}`, f),
    /** The test environment's connected streams and how many of them are FDv2. */
    streams: async () => {
      const env = (await admin('GET', '/environments')).items.find((e) => e.key === 'test');
      return `${env.streams} streams, ${env.fdv2Streams} FDv2`;
    },
  };
}

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'mock-ld-node-fdv2-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An FDv2 client at mock-ld, closed after test `t`. */
async function fdv2Client(t, url, dataSource) {
  const client = init(SDK_KEY, {
    baseUri: url, streamUri: url, eventsUri: url, sendEvents: false,
    logger: basicLogger({ level: 'none' }),
    dataSystem: { dataSource },
  });
  t.after(() => client.close());
  await client.waitForInitialization({ timeout: 5 });
  return client;
}

async function waitFor(fetch, done, timeoutMs = 5_000, intervalMs = 5) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fetch();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}

const value = (client, key) => client.variation(key, SOMEONE, 'default');

test('FDv2: initializes, streams a change, and recovers after a restart', async (t) => {
  const dir = tempDir(t);
  const first = await startMockLd(t, dir, { args: ['--state', join(dir, 'state')] });
  await first.putFlag(flag('durable', 'before'));
  const client = await fdv2Client(t, first.url, { dataSourceOptionsType: 'standard', streamInitialReconnectDelay: 0.1 });
  assert.equal(await value(client, 'seeded'), 'seed value');
  assert.equal(await value(client, 'durable'), 'before');
  const one = '1 streams, 1 FDv2';
  assert.equal(await waitFor(first.streams, (s) => s === one), one, 'the SDK holds an FDv2 stream');

  await first.putFlag(flag('durable', 'live'));
  assert.equal(await waitFor(() => value(client, 'durable'), (v) => v === 'live'), 'live');

  await first.stop();
  const second = await startMockLd(t, dir, { port: first.port, args: ['--state', join(dir, 'state')] });
  assert.equal(await waitFor(second.streams, (s) => s === one, 10_000), one, 'the SDK reconnected');
  // Once the SDK has data from the new process, what --state kept is still served: a full
  // transfer without it would have taken `durable` away.
  await second.putFlag(flag('marker', 'second process'));
  assert.equal(await waitFor(() => value(client, 'marker'), (v) => v === 'second process'), 'second process');
  assert.equal(await value(client, 'durable'), 'live', 'kept across the restart by --state');
  await second.putFlag(flag('durable', 'after restart'));
  assert.equal(await waitFor(() => value(client, 'durable'), (v) => v === 'after restart'), 'after restart');
  assert.equal(await value(client, 'seeded'), 'seed value');
});

test('FDv2 fallback directive: --fdv2 off makes the SDK poll FDv1 and still get data', async (t) => {
  const dir = tempDir(t);
  const server = await startMockLd(t, dir, { args: ['--fdv2', 'off'] });
  await server.putFlag(flag('plain', 'fdv1 data'));
  const client = await fdv2Client(t, server.url, { dataSourceOptionsType: 'streamingOnly' });
  assert.equal(await value(client, 'plain'), 'fdv1 data');
  assert.equal(await value(client, 'seeded'), 'seed value');
  assert.equal(await server.streams(), '0 streams, 0 FDv2', 'no stream: the SDK polls FDv1 instead');
});
