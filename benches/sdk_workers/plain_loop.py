"""The plain Python loop `benches/sdk_workers.rs` compares `run --sdk python` with: what a
team would write to serve one AI Config per request, with nothing of the harness in it.

Per request: `completion_config` with the step's variables, the `openai` call with the
request's `X-Mock-Seed`, tracked through the AI SDK's `track_metrics_of_async` (duration,
success or error, tokens). Up to `--concurrency` requests at once on one asyncio loop, as
the harness's worker runs them.

Run with the harness's installed worker venv (same SDK versions):
  VENV/bin/python plain_loop.py --contexts FILE --process I --processes W ...
It reads its share of FILE (lines I, I+W, …; each `{"context": {...}, "seed": "…"}`),
starts the SDK, prints `{"ready": true}`, waits for a line on stdin (so that every
process starts its load at once), runs, then prints
`{"requests": N, "errors": E, "seconds": S, "cpuSeconds": C}` and closes the SDK (which flushes its events).
"""

import argparse
import asyncio
import json
import os
import sys
import time

import ldclient
import openai
from ldai.client import LDAIClient
from ldai.models import AICompletionConfigDefault
from ldai.providers.types import LDAIMetrics
from ldai.tracker import TokenUsage
from ldclient.config import Config


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--contexts", required=True)
    p.add_argument("--process", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--config", required=True, help="the AI Config key")
    p.add_argument("--variables", default="{}", help="the step's variables, JSON")
    p.add_argument("--prompt", default="Help me with my account.")
    p.add_argument("--sdk-key", required=True)
    p.add_argument("--base-url", required=True, help="mock-ld: SDK, stream and events")
    p.add_argument("--event-capacity", type=int, default=10000)
    p.add_argument("--flush-interval-ms", type=int, default=5000)
    return p.parse_args()


def read_share(path, process, processes):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for i, line in enumerate(f) if i % processes == process]


def metrics_of(completion):
    """The AI SDK's metrics extractor for an OpenAI chat completion."""
    usage = completion.usage
    tokens = None
    if usage is not None:
        tokens = TokenUsage(total=usage.total_tokens, input=usage.prompt_tokens,
                            output=usage.completion_tokens)
    return LDAIMetrics(success=True, tokens=tokens)


async def serve(ai, llm, args, variables, default, item):
    """One request of the application: True when it succeeded."""
    context = ldclient.Context.from_dict(item["context"])
    config = ai.completion_config(args.config, context, default, variables)
    if not config.enabled:
        return False
    tracker = config.create_tracker()
    messages = [{"role": m.role, "content": m.content} for m in config.messages or []]
    messages.append({"role": "user", "content": args.prompt})
    try:
        await tracker.track_metrics_of_async(metrics_of, lambda: llm.chat.completions.create(
            model=config.model.name, messages=messages,
            extra_headers={"X-Mock-Seed": item["seed"]}))
    except openai.APIError:
        return False  # the helper tracked the error
    return True


async def run(ai, llm, args, items):
    variables = json.loads(args.variables)
    default = AICompletionConfigDefault(enabled=False)
    queue = iter(items)
    errors = 0

    async def lane():
        nonlocal errors
        for item in queue:  # the lanes share one iterator: each item is served once
            if not await serve(ai, llm, args, variables, default, item):
                errors += 1

    await asyncio.gather(*(lane() for _ in range(args.concurrency)))
    return errors


def main():
    args = parse_args()
    items = read_share(args.contexts, args.process, args.processes)
    config = Config(args.sdk_key, base_uri=args.base_url, stream_uri=args.base_url,
                    events_uri=args.base_url, stream=True,
                    events_max_pending=args.event_capacity,
                    flush_interval=args.flush_interval_ms / 1000)
    client = ldclient.LDClient(config=config, start_wait=15)
    if not client.is_initialized():
        sys.exit("the SDK did not initialize")
    ai = LDAIClient(client)
    llm = openai.AsyncOpenAI(base_url=args.base_url + "/v1", api_key="mock", max_retries=0)
    _ = llm.chat.completions  # imported on first use: before the clock starts
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    cpu_started = time.process_time()
    errors = asyncio.run(run(ai, llm, args, items))
    seconds = time.perf_counter() - started
    # Every thread's CPU time, as the harness's workers report theirs.
    cpu_seconds = time.process_time() - cpu_started
    print(json.dumps({"requests": len(items), "errors": errors, "seconds": seconds,
                      "cpuSeconds": cpu_seconds}), flush=True)
    client.close()
    # The SDK is closed and its events sent: exit without waiting on what its threads hold.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
