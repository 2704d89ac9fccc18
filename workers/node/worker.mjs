#!/usr/bin/env node
// aiconfig-harness's Node worker, protocol version 2 (docs/worker-protocol.md): runs the
// coordinator's requests through the real LaunchDarkly Node server SDK and AI SDK, and
// reports what it measured. stdin/stdout carry the protocol, stderr is the log.
import { createInterface } from 'node:readline';

import { Application, loadHandler, packageVersion, startClients } from './lib/app.mjs';
import { nowMicros, sleepMs } from './lib/clock.mjs';
import { LagProbe } from './lib/lag.mjs';
import { Load } from './lib/load.mjs';
import { Metrics, Timeline } from './lib/metrics.mjs';
import { guardStdout, send } from './lib/output.mjs';

const PROTOCOL = 2;
const PROGRESS_EVERY_MS = 250;
/** How long a flush or close may take before the worker gives up waiting for the SDK. */
const SDK_CLOSE_TIMEOUT_MS = 10_000;

const log = (line) => process.stderr.write(`${new Date().toISOString()} worker: ${line}\n`);

/** The error message, then exit 1: a worker that cannot go on says why and never hangs. */
async function fail(e) {
  const message = e instanceof Error ? `${e.message}` : String(e);
  log(`error: ${e?.stack ?? message}`);
  try {
    await Promise.race([send({ type: 'error', message }), sleepMs(2000)]);
  } finally {
    process.exit(1);
  }
}

class Worker {
  constructor() {
    this.state = 'new'; // new → ready → running → done
    this.clients = null;
  }

  async onMessage(msg) {
    switch (msg.type) {
      case 'hello': return this.hello(msg);
      case 'go': return this.go();
      case 'batch': return this.expect('batch').batch(msg.requests ?? []);
      case 'end': return this.expect('end').end();
      case 'stop': return this.stop();
      case 'flush': return this.flush();
      case 'close': return this.close();
      default: throw new Error(`unknown message type ${JSON.stringify(msg.type)}`);
    }
  }

  /** The load, which `what` needs: it exists from `go` on. */
  expect(what) {
    if (!this.load) throw new Error(`${what} before go`);
    return this.load;
  }

  async hello(msg) {
    if (msg.protocol !== PROTOCOL) throw new Error(`protocol ${msg.protocol} is not spoken here (only ${PROTOCOL})`);
    if (this.state !== 'new') throw new Error('a second hello');
    this.clients = await startClients(msg.sdk, msg.llm, log);
    const handler = msg.handler ? await loadHandler(msg.handler) : null;
    this.app = new Application(this.clients, msg.steps, msg.llm, handler);
    this.metrics = new Metrics(msg.load.model === 'open');
    this.timeline = new Timeline();
    this.loadSpec = msg.load;
    this.state = 'ready';
    await send({
      type: 'ready',
      sdk: 'node',
      sdkVersion: packageVersion('@launchdarkly/node-server-sdk'),
      aiSdkVersion: packageVersion('@launchdarkly/server-sdk-ai'),
      runtime: `Node ${process.version}`,
      pid: process.pid,
      initMs: this.clients.start.initMs,
      initTimedOut: this.clients.start.timedOut,
    });
    log(`ready: worker ${msg.worker} of ${msg.workers}, ${msg.load.model} load, handler ${msg.handler ?? 'none'}`);
  }

  go() {
    if (this.state === 'done') this.newPhase();
    if (this.state !== 'ready') throw new Error(`go in state ${this.state}`);
    this.state = 'running';
    const t0 = nowMicros();
    this.t0 = t0;
    this.goCpu = process.cpuUsage(); // the process's, every thread's
    this.lagProbe = new LagProbe();
    this.lagProbe.start();
    this.load = new Load(this.loadSpec, {
      pull: (max) => { send({ type: 'pull', max }); },
      run: (req, timing) => this.runRequest(req, timing),
      log,
    });
    this.ticker = setInterval(() => this.tick(), PROGRESS_EVERY_MS);
    // The result, once every request has finished; failures are the worker's end.
    this.finished = this.load.start(t0).then(() => this.finish()).catch(fail);
  }

  /** A `go` after `result`: another phase (protocol 2), measured and counted apart. */
  newPhase() {
    this.metrics = new Metrics(this.loadSpec.model === 'open');
    this.timeline = new Timeline();
    this.clients.events.startPhase();
    this.load = null;
    this.state = 'ready';
  }

  /** Runs one request and records it; `timing` is in microseconds after go. */
  async runRequest(req, timing) {
    const steps = await this.app.request(req);
    const ended = nowMicros() - this.t0;
    steps.forEach((step, i) => this.timeline.addServed(req.index, i, step.variationKey, step.evaluated - this.t0));
    const failed = this.metrics.addRequest(req, steps, { ...timing, ended });
    this.timeline.addRequest(steps, failed, { due: timing.due, ended });
  }

  /** A progress message, unless the last one is still being written. */
  async tick() {
    if (this.writing) return;
    this.writing = true;
    try {
      await send(this.timeline.progress());
    } finally {
      this.writing = false;
    }
  }

  async finish() {
    // The load's last request has finished (or none ran): the probe's span ends here.
    const lagProbe = this.lagProbe?.stop() ?? null;
    clearInterval(this.ticker);
    while (this.writing) await sleepMs(5);
    await send(this.timeline.progress());
    await send(this.metrics.result(this.clients.events, {
      lagProbe,
      cpuSeconds: this.cpuSecondsSinceGo(),
      initializedLaterMs: this.initializedLaterMs(),
    }));
    this.state = 'done';
    log(`result: ${this.metrics.requests} requests, ${this.metrics.failedRequests} failed, ${this.clients.events.total} events`);
  }

  /** A client that timed out at start-up: when it initialized, ms after `go` (0 if before). */
  initializedLaterMs() {
    const at = this.clients.start.initializedAt;
    if (at === null) return null;
    return Math.max(0, at * 1000 - this.t0) / 1000;
  }

  /** User and system CPU time of the whole process since `go` (0 when it never went). */
  cpuSecondsSinceGo() {
    if (!this.goCpu) return 0;
    const { user, system } = process.cpuUsage(this.goCpu);
    return (user + system) / 1e6;
  }

  stop() {
    if (this.load) {
      this.load.stop();
    } else if (this.state === 'ready') {
      // Stopped before it started: nothing ran, and the result says so.
      this.state = 'running';
      this.finished = this.finish().catch(fail);
    }
  }

  /** Asks the SDK to flush and says so at once (flush latency is measured by the coordinator). */
  async flush() {
    if (!this.clients) throw new Error('flush before hello');
    const handed = this.clients.events.handed;
    this.clients.ldClient.flush().catch((e) => log(`flush failed: ${e?.message ?? e}`));
    await send({ type: 'flushed', handedEvents: handed });
  }

  /** Closes the SDK client, which first flushes what it holds, and exits 0. */
  async close() {
    if (this.load) {
      this.load.stop();
      await this.finished;
    }
    if (this.clients) {
      const { ldClient } = this.clients;
      await Promise.race([ldClient.flush().catch(() => {}), sleepMs(SDK_CLOSE_TIMEOUT_MS)]);
      ldClient.close();
    }
    process.exit(0);
  }

  /** stdin's end: as `stop`, then as `close`. */
  async eof() {
    log('stdin ended: stopping');
    this.stop();
    if (this.finished) await this.finished;
    await this.close();
  }
}

async function main() {
  guardStdout();
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // A coordinator gone away: nothing can be reported any more.
  process.stdout.on('error', (e) => {
    log(`stdout: ${e.message}`);
    process.exit(1);
  });
  const worker = new Worker();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Messages are handled in order; each one's handling is awaited except a load's run.
  let chain = Promise.resolve();
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    chain = chain.then(() => worker.onMessage(parse(line))).catch(fail);
  });
  lines.on('close', () => {
    chain = chain.then(() => worker.eof()).catch(fail);
  });
}

function parse(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    throw new Error(`a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
    throw new Error(`a message without a type: ${line.slice(0, 200)}`);
  }
  return msg;
}

main();
