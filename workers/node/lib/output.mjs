// The worker's stdout: protocol messages only, one JSON object a line, written in order.
// A coordinator that reads slowly makes send() wait (the progress ticker awaits it) rather
// than the worker buffering without bound.
import { once } from 'node:events';

export async function send(message) {
  if (!process.stdout.write(`${JSON.stringify(message)}\n`)) {
    await once(process.stdout, 'drain');
  }
}

/** Any library or handler that logs with console.log goes to stderr, not into the protocol. */
export function guardStdout() {
  const toStderr = (...args) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
}
