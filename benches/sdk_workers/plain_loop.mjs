// The plain Node loop `benches/sdk_workers.rs` compares `run --sdk node` with: what a team
// would write to serve one AI Config per request, with nothing of the harness in it.
//
// Per request: `completionConfig` with the step's variables, the `openai` call with the
// request's `X-Mock-Seed`, tracked through the AI SDK's `trackOpenAIMetrics` (duration,
// success or error, tokens). Up to `--concurrency` requests at once, as the harness's worker
// runs them.
//
// It imports the harness's installed worker packages (same SDK versions): the bench copies
// it beside a `node_modules` link to them. Arguments as plain_loop.py's. It reads its share
// of the contexts file (lines I, I+W, …), starts the SDK, prints {"ready": true}, waits for a
// line on stdin (so that every process starts at once), runs, prints
// {"requests": N, "errors": E, "seconds": S, "cpuSeconds": C} and closes the SDK after flushing its events.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { initAi } from '@launchdarkly/server-sdk-ai';
import OpenAI from 'openai';

const { values: args } = parseArgs({
  options: {
    contexts: { type: 'string' },
    process: { type: 'string', default: '0' },
    processes: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '8' },
    config: { type: 'string' },
    variables: { type: 'string', default: '{}' },
    prompt: { type: 'string', default: 'Help me with my account.' },
    'sdk-key': { type: 'string' },
    'base-url': { type: 'string' },
    'event-capacity': { type: 'string', default: '10000' },
    'flush-interval-ms': { type: 'string', default: '5000' },
  },
});

function readShare(path, process, processes) {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line, i) => line !== '' && i % processes === process)
    .map((line) => JSON.parse(line));
}

/** One request of the application: true when it succeeded. */
async function serve(ai, openai, variables, item) {
  const config = await ai.completionConfig(args.config, item.context, { enabled: false }, variables);
  if (!config.enabled) return false;
  const messages = (config.messages ?? []).map(({ role, content }) => ({ role, content }));
  messages.push({ role: 'user', content: args.prompt });
  try {
    await config.tracker.trackOpenAIMetrics(() => openai.chat.completions.create(
      { model: config.model.name, messages },
      { headers: { 'X-Mock-Seed': item.seed } },
    ));
    return true;
  } catch {
    return false; // the helper tracked the error
  }
}

async function run(ai, openai, items) {
  const variables = JSON.parse(args.variables);
  let next = 0;
  let errors = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      if (!(await serve(ai, openai, variables, item))) errors += 1;
    }
  };
  await Promise.all(Array.from({ length: Number(args.concurrency) }, lane));
  return errors;
}

function firstLine() {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once('line', (line) => {
      lines.close();
      resolve(line);
    });
  });
}

async function main() {
  const items = readShare(args.contexts, Number(args.process), Number(args.processes));
  const base = args['base-url'];
  const ldClient = init(args['sdk-key'], {
    baseUri: base,
    streamUri: base,
    eventsUri: base,
    stream: true,
    capacity: Number(args['event-capacity']),
    flushInterval: Number(args['flush-interval-ms']) / 1000,
    // stdout carries the results.
    logger: basicLogger({ level: 'warn', destination: console.error }),
  });
  await ldClient.waitForInitialization({ timeout: 15 });
  const ai = initAi(ldClient);
  const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'mock', maxRetries: 0 });
  console.log(JSON.stringify({ ready: true }));
  await firstLine();
  const started = performance.now();
  const cpuStarted = process.cpuUsage(); // every thread's, as the harness's workers report
  const errors = await run(ai, openai, items);
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpuStarted);
  const cpuSeconds = (user + system) / 1e6;
  console.log(JSON.stringify({ requests: items.length, errors, seconds, cpuSeconds }));
  await ldClient.flush();
  ldClient.close();
  // Kept-alive sockets of the openai client would hold the event loop open.
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
