"""The Python worker of aiconfig-harness: protocol version 2 (docs/worker-protocol.md).

Run as `python aiconfig_worker.py`. It reads the coordinator's JSON lines on stdin, writes
its own on stdout (nothing else goes there) and logs on stderr. Every request runs through
the real LaunchDarkly server SDK and AI SDK; the LLM call goes through `openai.AsyncOpenAI`.

Design: one asyncio loop. The SDK and AI SDK calls are synchronous and in memory, so they
run inline on the loop; only the LLM call awaits. A thread reads stdin and hands lines to
the loop, so that a slow coordinator never blocks the load.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import importlib
import importlib.metadata
import importlib.util
import inspect
import itertools
import json
import logging
import os
import platform
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import ldclient
import ldclient.version
import openai
from hdrh.histogram import HdrHistogram
from ldai.client import LDAIClient
from ldai.models import AIAgentConfigDefault, AICompletionConfigDefault
from ldai.providers.types import LDAIMetrics
from ldai.tracker import FeedbackKind, TokenUsage
from ldclient.config import Config

PROTOCOL = 2
MAX_MICROS = 3_600_000_000
PROGRESS_EVERY_S = 0.25
# The lag probe's tick, as the Rust runner's (src/runner/health.rs): 100 wake-ups a second
# cost far less than anything they could report.
LAG_PROBE_INTERVAL_US = 10_000
# The open model asks for about this much of the schedule ahead of the clock.
OPEN_LOOKAHEAD_MICROS = 1_000_000
PLAN_LATENCY_HEADER = "x-mock-plan-latency-ms"
TIME_SCALE_HEADER = "x-mock-time-scale"

log = logging.getLogger("aiconfig_worker")


# ---------------------------------------------------------------------------------------
# Clock and histograms
# ---------------------------------------------------------------------------------------

def now_us() -> int:
    """A monotonic clock in microseconds."""
    return time.perf_counter_ns() // 1000


def new_hist(digits: int = 3) -> HdrHistogram:
    return HdrHistogram(1, MAX_MICROS, digits)


def record(hist: HdrHistogram, micros: int) -> None:
    """Records a latency, clamped into the histogram's range (the protocol never drops one)."""
    hist.record_value(min(max(int(micros), 1), MAX_MICROS))


def encode(hist: HdrHistogram) -> Optional[str]:
    """V2 compressed base64, or null for an empty histogram (the protocol allows both)."""
    if hist.get_total_count() == 0:
        return None
    blob = hist.encode()
    return blob.decode("ascii") if isinstance(blob, bytes) else blob


class LagProbe:
    """The worker's own scheduling delay, as the Rust runner's probe (src/runner/health.rs):
    one timer on the event loop, due every LAG_PROBE_INTERVAL_US on a fixed grid, that
    records how late it woke. Every tick due by then is recorded, each late by what it
    waited, so a stall of 1 s weighs as the 100 ticks it swallowed, not as one
    (coordinated-omission correction). When the loop is saturated every latency the worker
    measures includes this delay; the probe says how much."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.hist = new_hist()
        self.handle: Optional[asyncio.TimerHandle] = None
        self.due_us = 0

    def start(self) -> None:
        self.due_us = now_us() + LAG_PROBE_INTERVAL_US
        self._arm()

    def _arm(self) -> None:
        delay_s = max(0, self.due_us - now_us()) / 1e6
        self.handle = self.loop.call_later(delay_s, self._tick)

    def _tick(self) -> None:
        woke = now_us()
        while self.due_us <= woke:
            record(self.hist, woke - self.due_us)  # 0 is recorded as 1 µs
            self.due_us += LAG_PROBE_INTERVAL_US
        self._arm()

    def stop(self) -> HdrHistogram:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        return self.hist


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------

# The protocol's stdout. `claim_stdout` moves it off fd 1, so that nothing else (a team
# handler's print, a library's C code) can write a line the coordinator would take for a
# message: fd 1 then goes to stderr, the log.
_protocol_out = sys.stdout


def claim_stdout() -> None:
    global _protocol_out
    _protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def send(message: Dict[str, Any]) -> None:
    """Writes one protocol message. Only the loop's thread writes, so lines never interleave."""
    _protocol_out.write(json.dumps(message, separators=(",", ":")) + "\n")
    _protocol_out.flush()


def fail(message: str) -> None:
    """The worker cannot go on: say so and exit 1 at once, whatever threads the SDK holds."""
    log.error("%s", message)
    try:
        send({"type": "error", "message": message})
    finally:
        sys.stderr.flush()
        os._exit(1)


# ---------------------------------------------------------------------------------------
# Counting what the AI SDK tracks
# ---------------------------------------------------------------------------------------

class TrackCounter:
    """Wraps the LDClient's `track` so that every custom event handed to the SDK is counted
    by key, whoever calls it (the AI SDK, its helpers, or a team's handler). Counting at the
    hand-over, rather than predicting what the AI SDK sends, keeps the count exact: mock-ld
    is waited on for exactly this many events."""

    def __init__(self, client: ldclient.LDClient):
        self.counts: Dict[str, int] = collections.Counter()  # this phase's
        self.earlier = 0  # earlier phases'
        inner = client.track

        def counting_track(event_name, context, data=None, metric_value=None):
            if getattr(context, "valid", False):  # the SDK drops (and logs) the others
                self.counts[event_name] += 1
            return inner(event_name, context, data, metric_value)

        client.track = counting_track  # type: ignore[method-assign]

    def handed(self) -> int:
        """Every event handed over since `hello` (what `flushed` reports)."""
        return sum(self.counts.values()) + self.earlier

    def start_phase(self) -> None:
        """A new phase's `result` counts its own events: the earlier ones are set aside."""
        self.earlier = self.handed()
        self.counts = collections.Counter()


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------

@dataclass
class Second:
    """One second of the load, as `progress` sends it (a delta)."""
    requests: int = 0
    errors: int = 0
    completed: int = 0
    llm_errors: int = 0
    evaluations: int = 0
    fallback_served: int = 0  # steps whose variation is "(default)": the SDK default
    latency: HdrHistogram = field(default_factory=lambda: new_hist(2))
    llm: HdrHistogram = field(default_factory=lambda: new_hist(2))

    def to_json(self, second: int) -> Dict[str, Any]:
        return {"second": second, "requests": self.requests, "errors": self.errors,
                "latency": encode(self.latency), "completed": self.completed,
                "llm": encode(self.llm), "llmErrors": self.llm_errors,
                "evaluations": self.evaluations, "fallbackServed": self.fallback_served}


def add_tokens(table: Dict[str, Dict[str, int]], key: str, tokens: "Tokens") -> None:
    row = table.setdefault(key, {"calls": 0, "input": 0, "cachedInput": 0, "output": 0})
    row["calls"] += 1
    row["input"] += tokens.input
    row["cachedInput"] += tokens.cached_input
    row["output"] += tokens.output


@dataclass
class Tokens:
    input: int = 0
    output: int = 0
    cached_input: int = 0


@dataclass
class Variation:
    """What the steps served one variation of one config did."""
    evaluations: int = 0
    ai_calls: int = 0
    successes: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    feedback_positive: int = 0
    feedback_negative: int = 0
    llm_ahead_of_plan: int = 0
    retries: int = 0  # `on_error`'s figures, as src/metrics.rs defines them
    fallbacks: int = 0
    fallback_successes: int = 0
    failed_steps: int = 0
    evaluation: HdrHistogram = field(default_factory=new_hist)
    ai_layer: HdrHistogram = field(default_factory=new_hist)
    llm: HdrHistogram = field(default_factory=new_hist)
    llm_planned_real_time: HdrHistogram = field(default_factory=new_hist)
    llm_excess: HdrHistogram = field(default_factory=new_hist)
    time_to_first_token: HdrHistogram = field(default_factory=new_hist)
    end_to_end: HdrHistogram = field(default_factory=new_hist)
    # model name -> context kind -> token counts
    usage: Dict[str, Dict[str, Dict[str, int]]] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        return {
            "evaluations": self.evaluations, "aiCalls": self.ai_calls,
            "successes": self.successes, "errors": self.errors,
            "retries": self.retries, "fallbacks": self.fallbacks,
            "fallbackSuccesses": self.fallback_successes, "failedSteps": self.failed_steps,
            "inputTokens": self.input_tokens, "outputTokens": self.output_tokens,
            "feedbackPositive": self.feedback_positive,
            "feedbackNegative": self.feedback_negative,
            "evaluation": encode(self.evaluation), "aiLayer": encode(self.ai_layer),
            "llm": encode(self.llm),
            "llmPlannedRealTime": encode(self.llm_planned_real_time),
            "llmExcess": encode(self.llm_excess), "llmAheadOfPlan": self.llm_ahead_of_plan,
            "timeToFirstToken": encode(self.time_to_first_token),
            "endToEnd": encode(self.end_to_end), "usage": self.usage,
        }


@dataclass
class LlmOutcome:
    """One LLM call (or one handler run) as measured by the worker."""
    duration_us: int
    error: Optional[str] = None
    tokens: Optional[Tokens] = None
    ttft_us: Optional[int] = None
    # mock-ld's plan: scheduled latency (after the time scale) and the scale.
    plan_us: Optional[int] = None
    time_scale: Optional[float] = None
    # A failed answer's HTTP status (None: transport or stream error) and Retry-After (s).
    status: Optional[int] = None
    retry_after_s: Optional[float] = None


@dataclass
class StepRecord:
    config: str
    variation: str  # "(default)" when the AI SDK returned its default
    model: str
    evaluation_us: int
    ai_layer_us: int = 0
    end_to_end_us: int = 0
    failed: bool = False
    llm: Optional[LlmOutcome] = None  # the last call: the first, a retry or the fallback
    feedback: Optional[str] = None
    earlier: List[LlmOutcome] = field(default_factory=list)  # the failed calls before it
    retries: int = 0
    fell_back: bool = False
    called_model: str = ""  # the model of the last call
    waited_us: int = 0  # between retries

    def calls(self) -> List[LlmOutcome]:
        return self.earlier + [self.llm] if self.llm is not None else []


class Metrics:
    """Everything `progress` and `result` report."""

    def __init__(self) -> None:
        self.completed = 0
        self.failed = 0
        self.requests_corrected = new_hist()
        self.requests_raw = new_hist()
        self.schedule_lag = new_hist()
        self.context_kinds: Dict[str, int] = collections.Counter()
        self.variations: Dict[str, Dict[str, Variation]] = {}
        self.attribute_usage: Dict[str, Dict[str, Dict[str, Dict[str, int]]]] = {}
        # Deltas since the last progress.
        self.seconds: Dict[int, Second] = {}
        self.served: List[list] = []

    def second(self, n: int) -> Second:
        s = self.seconds.get(n)
        if s is None:
            s = self.seconds[n] = Second()
        return s

    def record_request(self, req: Dict[str, Any], steps: List[StepRecord], go_us: int,
                       scheduled_us: int, started_us: int, ended_us: int) -> None:
        """Adds a finished request; `scheduled_us` is its due time (closed model: its start)."""
        failed = any(s.failed or (s.llm is not None and s.llm.error is not None) for s in steps)
        self.completed += 1
        self.failed += int(failed)
        record(self.requests_corrected, ended_us - scheduled_us)
        record(self.requests_raw, ended_us - started_us)
        self.context_kinds[req.get("kind", "")] += 1
        sec = self.second(max(0, scheduled_us - go_us) // 1_000_000)
        sec.requests += 1
        sec.errors += int(failed)
        record(sec.latency, ended_us - scheduled_us)
        self.second(max(0, ended_us - go_us) // 1_000_000).completed += 1
        for step in steps:
            sec.evaluations += 1
            sec.fallback_served += int(step.variation == "(default)")
            for call in step.calls():
                record(sec.llm, call.duration_us)
                sec.llm_errors += int(call.error is not None)
            self._record_step(req, step)

    def _record_step(self, req: Dict[str, Any], step: StepRecord) -> None:
        by_key = self.variations.setdefault(step.config, {})
        v = by_key.get(step.variation)
        if v is None:  # not setdefault: a Variation allocates seven histograms
            v = by_key[step.variation] = Variation()
        v.evaluations += 1
        record(v.evaluation, step.evaluation_us)
        record(v.ai_layer, step.ai_layer_us)
        record(v.end_to_end, step.end_to_end_us)
        if step.feedback == "positive":
            v.feedback_positive += 1
        elif step.feedback == "negative":
            v.feedback_negative += 1
        if step.llm is None:
            return
        v.retries += step.retries
        v.fallbacks += int(step.fell_back)
        v.fallback_successes += int(step.fell_back and step.llm.error is None)
        v.failed_steps += int(step.llm.error is not None)
        for call in step.earlier:
            self._record_call(v, call)
        tokens = self._record_call(v, step.llm)
        if tokens is None:
            return
        model = step.called_model or step.model
        add_tokens(v.usage.setdefault(model, {}), req.get("kind", ""), tokens)
        for attribute, value in req.get("costBy") or []:
            by_value = self.attribute_usage.setdefault(str(attribute), {})
            add_tokens(by_value.setdefault(str(value), {}), model, tokens)

    @staticmethod
    def _record_call(v: Variation, llm: LlmOutcome) -> Optional[Tokens]:
        """One LLM call: its latency and plan, and an error or a success whose tokens are
        returned (costed by the model called)."""
        v.ai_calls += 1
        record(v.llm, llm.duration_us)
        if llm.plan_us is not None and llm.time_scale is not None:
            if llm.time_scale > 0:
                record(v.llm_planned_real_time, llm.plan_us / llm.time_scale)
            if llm.duration_us >= llm.plan_us:
                record(v.llm_excess, llm.duration_us - llm.plan_us)
            else:
                v.llm_ahead_of_plan += 1
        if llm.ttft_us is not None:
            record(v.time_to_first_token, llm.ttft_us)
        if llm.error is not None:
            v.errors += 1
            return None
        v.successes += 1
        tokens = llm.tokens or Tokens()
        v.input_tokens += tokens.input
        v.output_tokens += tokens.output
        return tokens

    def take_progress(self) -> Dict[str, Any]:
        """A `progress` message of what changed since the last one."""
        message = {"type": "progress", "completed": self.completed, "failed": self.failed,
                   "seconds": [s.to_json(n) for n, s in sorted(self.seconds.items())],
                   "served": self.served}
        self.seconds, self.served = {}, []
        return message

    def result(self, open_model: bool, tracked: Dict[str, int], lag_probe: HdrHistogram,
               cpu_seconds: float, initialized_later_ms: Optional[float]) -> Dict[str, Any]:
        return {
            "type": "result", "requests": self.completed, "failedRequests": self.failed,
            "requestsCorrected": encode(self.requests_corrected),
            "requestsRaw": encode(self.requests_raw),
            "scheduleLag": encode(self.schedule_lag) if open_model else None,
            "contextKinds": dict(self.context_kinds),
            "trackedEvents": dict(tracked),
            "variations": {config: {key: v.to_json() for key, v in by_key.items()}
                           for config, by_key in self.variations.items()},
            "attributeUsage": self.attribute_usage,
            "handedEvents": sum(tracked.values()),
            "lagProbe": encode(lag_probe),
            "cpuSeconds": round(cpu_seconds, 6),
            "initializedLaterMs": initialized_later_ms,
        }


# ---------------------------------------------------------------------------------------
# The application model: one step of one request
# ---------------------------------------------------------------------------------------

def load_handler(spec: str) -> Callable[..., Any]:
    """`package.module:function` (imported from PYTHONPATH) or `path/to/file.py:function`."""
    module_name, sep, function = spec.rpartition(":")
    if not sep or not module_name or not function:
        raise ValueError(f"handler {spec!r} is not 'module:function'")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load handler file {path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    handler = getattr(module, function)
    if not callable(handler):
        raise TypeError(f"handler {spec!r} is not callable")
    return handler


def plan_of(headers: Any) -> tuple:
    """mock-ld's plan headers as (scheduled latency in µs, time scale), or (None, None)."""
    try:
        latency = float(headers.get(PLAN_LATENCY_HEADER))
        scale = float(headers.get(TIME_SCALE_HEADER))
    except (TypeError, ValueError):
        return None, None
    if not (latency >= 0 and scale >= 0) or latency == float("inf") or scale == float("inf"):
        return None, None
    return int(latency * 1000), scale


# The three forms of an HTTP date (RFC 9110 §5.6.7) and nothing else, as the Rust runner
# takes them: email.utils alone also reads numeric zones and dates without a day's name.
# Each form starts with its day's name, whose first three letters are checked below.
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_FULL_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"\d{2}:\d{2}:\d{2}"
HTTP_DATE = re.compile(
    rf"{_DAY}, \d{{2}} {_MONTH} \d{{4}} {_TIME} GMT"  # IMF-fixdate
    rf"|{_FULL_DAY}, \d{{2}}-{_MONTH}-\d{{2}} {_TIME} GMT"  # RFC 850
    rf"|{_DAY} {_MONTH} [ \d]\d {_TIME} \d{{4}}"  # asctime
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def retry_after_of(headers: Any, now: Optional[datetime] = None) -> Optional[float]:
    """`Retry-After` in seconds (RFC 9110 §10.2.3), as src/runner/retry_after.rs `parse`:
    delay seconds, or an HTTP date, the time from `now` until it (0 for one in the past)."""
    text = headers.get("retry-after") if headers is not None else None
    if text is None:
        return None
    text = str(text).strip()
    if text.isascii() and text.isdigit():
        return int(text)
    if not HTTP_DATE.fullmatch(text):
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # asctime: HTTP dates are in UTC.
        when = when.replace(tzinfo=timezone.utc)
    if "-" in text:
        # RFC 850's two-digit year, read as the Rust runner reads it: 00-69 are 20xx.
        yy = int(text.split("-")[2][:2])
        try:
            when = when.replace(year=2000 + yy if yy < 70 else 1900 + yy)
        except ValueError:
            return None
    # A date that names another day, or before 1970, is no date to the Rust runner.
    if when.year < 1970 or WEEKDAYS[when.weekday()] != text[:3]:
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


# A step's `onError`: the same rules as src/runner/retry.rs, so every SDK makes the same calls.
MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64, as src/runner/retry.rs `mix64` (tests/sdk_workers.rs checks the two agree)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def attempt_seed(seed: int, call: int) -> int:
    """The X-Mock-Seed of call `call` of a step: the first keeps the step's seed."""
    return seed if call == 0 else mix64(seed ^ call)


def retryable(outcome: "LlmOutcome") -> bool:
    """429, 5xx, a timeout or a transport or stream error; not another 4xx."""
    s = outcome.status
    return outcome.error is not None and (s is None or s == 429 or s >= 500)


def wait_before(policy: Dict[str, Any], seed: int, call: int,
                failed: "LlmOutcome") -> Optional[float]:
    """Seconds to wait before call `call` (1: the first retry), or None: no more retries."""
    if not retryable(failed):
        return None
    if failed.retry_after_s is not None:
        asked_ms = failed.retry_after_s * 1000
        return failed.retry_after_s if asked_ms <= policy["maxRetryAfterMs"] else None
    doubled = min(policy["backoffMs"] * (1 << min(max(call - 1, 0), 20)), policy["maxWaitMs"])
    fraction = (mix64(int(policy["runSeed"]) ^ attempt_seed(seed, call)) >> 11) / float(1 << 53)
    return doubled * (0.5 + 0.5 * fraction) / 1000


def tokens_of(usage: Any) -> Optional[Tokens]:
    if usage is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    return Tokens(input=usage.prompt_tokens or 0, output=usage.completion_tokens or 0,
                  cached_input=(getattr(details, "cached_tokens", None) or 0) if details else 0)


class StreamCutShort(Exception):
    """A streamed answer that ended before it finished."""


class LlmCall:
    """One OpenAI chat call, measured; the AI SDK's `track_metrics_of_async` wraps it."""

    def __init__(self, llm: openai.AsyncOpenAI, stream: bool, model: str,
                 messages: List[Dict[str, str]], seed: str):
        self.llm, self.stream, self.model, self.messages, self.seed = (
            llm, stream, model, messages, seed)
        self.started_us = 0
        self.ended_us = 0
        self.ttft_us: Optional[int] = None
        self.tokens: Optional[Tokens] = None
        self.plan: tuple = (None, None)
        self.status: Optional[int] = None
        self.retry_after_s: Optional[float] = None

    async def __call__(self) -> "LlmCall":
        self.started_us = now_us()
        try:
            await self._run()
        except openai.APIStatusError as e:
            self.plan = plan_of(e.response.headers)
            self.status = e.status_code
            self.retry_after_s = retry_after_of(e.response.headers)
            raise
        finally:
            self.ended_us = now_us()
        return self

    async def _run(self) -> None:
        extra = {"stream_options": {"include_usage": True}} if self.stream else {}
        raw = await self.llm.chat.completions.with_raw_response.create(
            model=self.model, messages=self.messages, stream=self.stream,
            extra_headers={"X-Mock-Seed": self.seed}, **extra)
        self.plan = plan_of(raw.headers)
        answer = raw.parse()
        if not self.stream:
            self.tokens = tokens_of(answer.usage)
            return
        finished = False
        async for chunk in answer:
            if self.ttft_us is None and any(c.delta and c.delta.content for c in chunk.choices):
                self.ttft_us = now_us() - self.started_us
            finished = finished or any(c.finish_reason for c in chunk.choices)
            if chunk.usage is not None:
                self.tokens = tokens_of(chunk.usage)
        if not finished:
            # The client ends quietly when the body ends; without a finish_reason the answer
            # was cut short, which the harness counts as an error too.
            raise StreamCutShort("the stream ended before any finish_reason")

    def metrics(self, _result: Any) -> LDAIMetrics:
        """The AI SDK's metrics extractor: a success, with the tokens the answer reported."""
        tokens = None
        if self.tokens is not None:
            tokens = TokenUsage(total=self.tokens.input + self.tokens.output,
                                input=self.tokens.input, output=self.tokens.output)
        return LDAIMetrics(success=True, tokens=tokens)

    def outcome(self, error: Optional[str]) -> LlmOutcome:
        plan_us, scale = self.plan
        return LlmOutcome(duration_us=self.ended_us - self.started_us, error=error,
                          tokens=self.tokens if error is None else None, ttft_us=self.ttft_us,
                          plan_us=plan_us, time_scale=scale, status=self.status,
                          retry_after_s=self.retry_after_s)


FEEDBACK = {"positive": FeedbackKind.Positive, "negative": FeedbackKind.Negative}


class App:
    """The per-step application model, built-in or with the team's handler."""

    def __init__(self, hello: Dict[str, Any], ai: LDAIClient, llm: openai.AsyncOpenAI,
                 handler: Optional[Callable[..., Any]]):
        self.ai, self.llm, self.handler = ai, llm, handler
        self.stream = bool(hello["llm"].get("stream"))
        self.steps = hello["steps"]
        self.completion_default = AICompletionConfigDefault(enabled=False)
        self.agent_default = AIAgentConfigDefault(enabled=False)

    async def run_step(self, i: int, context: ldclient.Context, spec: Dict[str, Any],
                       started_us: int, go_us: int, index: int,
                       served: List[list]) -> StepRecord:
        step = self.steps[i]
        agent = step.get("mode") == "agent"
        variables = step.get("variables") or {}
        t0 = now_us()
        try:
            if agent:
                config = self.ai.agent_config(step["config"], context, self.agent_default,
                                              variables)
            else:
                config = self.ai.completion_config(step["config"], context,
                                                   self.completion_default, variables)
        except Exception as e:  # the config could not be read: the step fails
            log.warning("config %s: %s", step["config"], e)
            ended = now_us()
            served.append([index, i, "", ended - go_us])
            return StepRecord(step["config"], "(default)", "", evaluation_us=ended - started_us,
                              end_to_end_us=ended - started_us, failed=True)
        evaluation_us = now_us() - t0
        tracker = config.create_tracker()
        # The tracker's variation key is the served `_ldMeta.variationKey` ("" for the default);
        # the AI SDK exposes it only there.
        variation_key = getattr(tracker, "_variation_key", "") or ""
        resolved_us = now_us()
        served.append([index, i, variation_key, resolved_us - go_us])
        rec = StepRecord(step["config"], variation_key or "(default)",
                         config.model.name if config.model else "", evaluation_us)
        ai_layer_us = resolved_us - started_us - evaluation_us
        ended_us = resolved_us
        if config.enabled and step.get("callLlm", True):
            seed = spec["seed"]
            if self.handler is not None:
                outcome = await self._handler(config, tracker, context, variables, seed)
                given = tracker.get_summary().feedback  # what the handler told the tracker
                rec.feedback = given["kind"].value if given else None
                rec.llm = outcome
            else:
                # Feedback is on the last call's answer, so on its tracker.
                last = await self._builtin(config, agent, step, tracker, seed, rec)
                rec.feedback = self._feedback(last, spec.get("feedback"))
            ended_us = now_us()
            # Before the calls: building the messages; after each: the tracker calls. The
            # calls and the waits between them are not the AI layer's.
            ai_layer_us += (ended_us - resolved_us) - sum(
                c.duration_us for c in rec.calls()) - rec.waited_us
        rec.ai_layer_us = max(0, ai_layer_us)
        rec.end_to_end_us = ended_us - started_us
        return rec

    async def _builtin(self, config: Any, agent: bool, step: Dict[str, Any], tracker: Any,
                       seed: str, rec: StepRecord) -> Any:
        """The step's LLM calls as its `onError` says (src/runner/call.rs `calls`): the
        first; retries while they fail and may be retried, after each wait; then the
        fallback model once. Sets `rec`'s calls; returns the last call's tracker."""
        if agent:
            messages = [{"role": "system", "content": config.instructions or ""}]
        else:
            messages = [{"role": m.role, "content": m.content} for m in config.messages or []]
        messages.append({"role": "user", "content": step.get("prompt", "")})
        policy = step.get("onError") or {}
        rec.called_model = config.model.name if config.model else ""
        for call_number in itertools.count():
            outcome = await self._call(rec.called_model, messages,
                                       str(attempt_seed(int(seed), call_number)), tracker)
            if outcome.error is None or rec.fell_back:
                rec.llm = outcome
                return tracker
            wait_s = None
            if rec.retries < int(policy.get("retries", 0)):
                wait_s = wait_before(policy, int(seed), call_number + 1, outcome)
            if wait_s is not None:
                rec.retries += 1
                waited = now_us()
                await asyncio.sleep(wait_s)
                rec.waited_us += now_us() - waited
            elif policy.get("fallbackModel"):
                rec.fell_back = True
                rec.called_model = policy["fallbackModel"]
            else:
                rec.llm = outcome
                return tracker
            rec.earlier.append(outcome)
            # The AI SDK records each metric once per tracker: each call is a run of its own.
            tracker = config.create_tracker()
        raise AssertionError("unreachable")

    async def _call(self, model: str, messages: List[Dict[str, str]], seed: str,
                    tracker: Any) -> LlmOutcome:
        call = LlmCall(self.llm, self.stream, model, messages, seed)
        error = None
        try:
            # The AI SDK's own helper: duration, then success and tokens, or error.
            await tracker.track_metrics_of_async(call.metrics, call)
        except Exception as e:  # the LLM call failed: tracked as an error by the helper
            error = f"{type(e).__name__}: {e}"
        if call.ttft_us is not None:
            tracker.track_time_to_first_token(call.ttft_us // 1000)
        return call.outcome(error)

    def _feedback(self, tracker: Any, feedback: Optional[str]) -> Optional[str]:
        kind = FEEDBACK.get(feedback or "")
        if kind is None:
            return None
        tracker.track_feedback({"kind": kind})
        return feedback

    async def _handler(self, config: Any, tracker: Any, context: ldclient.Context,
                       variables: Dict[str, Any], seed: str) -> LlmOutcome:
        """The team's handler replaces the LLM call and its tracking. Its time is the step's
        `llm` figure; its tokens are what it told the tracker."""
        llm = self.llm.with_options(default_headers={"X-Mock-Seed": seed})
        t0 = now_us()
        error = None
        try:
            answer = self.handler(config, tracker, context, variables, llm)
            if inspect.isawaitable(answer):
                await answer
        except Exception as e:
            log.warning("handler raised: %s", e)
            error = f"{type(e).__name__}: {e}"
        duration = now_us() - t0
        usage = tracker.get_summary().tokens
        tokens = Tokens(input=usage.input, output=usage.output) if usage else Tokens()
        return LlmOutcome(duration_us=duration, error=error, tokens=tokens)


# ---------------------------------------------------------------------------------------
# The worker: protocol and load models
# ---------------------------------------------------------------------------------------

class Worker:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.client: Optional[ldclient.LDClient] = None
        self.counter: Optional[TrackCounter] = None
        self.app: Optional[App] = None
        self.load: Dict[str, Any] = {}
        self.metrics = Metrics()
        self.go_us = 0
        self.pending: collections.deque = collections.deque()  # received, unstarted
        self.wake = asyncio.Event()  # pending, end or stop changed
        self.ended = False  # `end` or `stop`: nothing more will come
        self.stopped = asyncio.Event()
        self.pull_out = False
        self.asked = 0
        self.rate_per_s = 0.0  # open model: requests per second seen in batches
        self.load_task: Optional[asyncio.Task] = None
        self.lag_probe = LagProbe(loop)
        self.go_cpu_s = 0.0  # process CPU time (every thread's) at `go`
        self.initialized_us: Optional[int] = None  # a client that timed out: when it initialized

    # -- input ----------------------------------------------------------------------------

    def start_reader(self) -> None:
        """stdin is read on a thread, each line handed to the loop; None marks EOF."""
        def read() -> None:
            for line in sys.stdin.buffer:  # bytes: JSON is UTF-8 whatever the locale says
                if line.strip():
                    self.loop.call_soon_threadsafe(self.inbox.put_nowait, line)
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, None)
        threading.Thread(target=read, name="stdin", daemon=True).start()

    async def next_message(self) -> Optional[Dict[str, Any]]:
        line = await self.inbox.get()
        if line is None:
            return None
        message = json.loads(line)
        if not isinstance(message, dict) or "type" not in message:
            raise ValueError(f"not a protocol message: {line.strip()[:200]!r}")
        return message

    async def run(self) -> None:
        self.start_reader()
        message = await self.next_message()
        if message is None:
            return
        if message["type"] != "hello":
            raise ValueError(f"expected hello, got {message['type']}")
        await self.hello(message)
        while True:
            message = await self.next_message()
            if message is None:  # EOF: as `stop`, then as `close`
                log.warning("stdin closed: stopping")
                self.stop()
                if self.load_task is not None:
                    await self.load_task
                await self.close()
                return
            kind = message["type"]
            if kind == "go":
                self.go()
            elif kind == "batch":
                self.batch(message.get("requests") or [])
            elif kind == "end":
                self.pull_out = False
                self.ended = True
                self.wake.set()
            elif kind == "stop":
                self.stop()
            elif kind == "flush":
                handed = self.counter.handed()
                self.client.flush()
                send({"type": "flushed", "handedEvents": handed})
            elif kind == "close":
                if self.load_task is not None and not self.load_task.done():
                    self.stop()
                    await self.load_task
                await self.close()
                return
            else:
                raise ValueError(f"unknown message type {kind!r}")

    # -- hello ----------------------------------------------------------------------------

    async def hello(self, hello: Dict[str, Any]) -> None:
        if hello.get("protocol") != PROTOCOL:
            fail(f"protocol {hello.get('protocol')!r} is not spoken here (only {PROTOCOL})")
        sdk = hello["sdk"]
        config = Config(
            sdk["sdkKey"], base_uri=sdk["baseUri"], stream_uri=sdk["streamUri"],
            events_uri=sdk["eventsUri"], stream=True,
            events_max_pending=int(sdk.get("eventCapacity", 10000)),
            flush_interval=sdk.get("flushIntervalMs", 5000) / 1000,
            send_events=bool(sdk.get("sendEvents", True)))
        timeout_s = sdk.get("initTimeoutMs", 15000) / 1000
        # LDClient's constructor blocks until initialized or start_wait passes: off the loop.
        started_us = now_us()
        self.client = await self.loop.run_in_executor(
            None, lambda: ldclient.LDClient(config=config, start_wait=timeout_s))
        init_ms = (now_us() - started_us) / 1000
        timed_out = not self.client.is_initialized()
        if timed_out and not sdk.get("serveUninitialized"):
            fail(f"the SDK did not initialize within {timeout_s:g} s")
        if timed_out:
            # A start-up fault: the load runs on the fallback until the SDK initializes.
            log.warning("the SDK did not initialize within %g s: serving the fallback", timeout_s)
            self.loop.create_task(self.watch_initialization())
        # Count before the AI client exists: its constructor tracks `$ld:ai:sdk:info`.
        self.counter = TrackCounter(self.client)
        ai = LDAIClient(self.client)
        llm_spec = hello["llm"]
        # No retries: a failed call is the simulator's answer, the same for every SDK.
        llm = openai.AsyncOpenAI(base_url=llm_spec["baseUrl"], api_key=llm_spec["apiKey"],
                                 max_retries=0)
        # The client imports its chat resource on first use (~0.2 s): before `ready`, not
        # inside the first request, where it would stall the open model's schedule.
        _ = llm.chat.completions
        handler = load_handler(hello["handler"]) if hello.get("handler") else None
        self.app = App(hello, ai, llm, handler)
        self.load = hello["load"]
        send({"type": "ready", "sdk": "python", "sdkVersion": ldclient.version.VERSION,
              "aiSdkVersion": importlib.metadata.version("launchdarkly-server-sdk-ai"),
              "runtime": f"{platform.python_implementation()} {platform.python_version()}",
              "pid": os.getpid(), "initMs": init_ms, "initTimedOut": timed_out})

    async def watch_initialization(self) -> None:
        """Notes when a client that timed out at start-up initializes (polled every 20 ms)."""
        while not self.client.is_initialized():
            await asyncio.sleep(0.02)
        self.initialized_us = now_us()

    def initialized_later_ms(self) -> Optional[float]:
        """When a client that timed out initialized, ms after `go` (0 if before it)."""
        if self.initialized_us is None:
            return None
        return max(0, self.initialized_us - self.go_us) / 1000

    # -- load -----------------------------------------------------------------------------

    @property
    def open_model(self) -> bool:
        return self.load.get("model") == "open"

    def go(self) -> None:
        if self.load_task is not None:
            if not self.load_task.done():
                raise ValueError("go while a phase is running")
            self.new_phase()
        self.go_us = now_us()
        self.go_cpu_s = time.process_time()
        self.lag_probe.start()
        self.load_task = self.loop.create_task(self.run_load())
        self.load_task.add_done_callback(crash_on_error)
        self.maybe_pull()

    def new_phase(self) -> None:
        """A `go` after `result`: another phase (protocol 2), measured and counted apart."""
        self.metrics = Metrics()
        self.counter.start_phase()
        self.pending.clear()
        self.wake = asyncio.Event()
        self.ended = False
        self.stopped = asyncio.Event()
        self.pull_out = False
        self.asked = 0
        self.rate_per_s = 0.0

    def batch(self, requests: List[Dict[str, Any]]) -> None:
        self.pull_out = False
        if self.ended:  # after `stop`, what comes is dropped
            return
        if self.open_model and len(requests) > 1:
            span = requests[-1]["dueMicros"] - requests[0]["dueMicros"]
            if span > 0:
                self.rate_per_s = (len(requests) - 1) * 1e6 / span
        self.pending.extend(requests)
        self.wake.set()
        self.maybe_pull()

    def stop(self) -> None:
        self.ended = True
        self.pending.clear()
        self.stopped.set()
        self.wake.set()

    def maybe_pull(self) -> None:
        """At most one pull unanswered; pull when the unstarted fall below half the ask."""
        if self.ended or self.pull_out or self.load_task is None:
            return
        if len(self.pending) >= self.asked / 2 and self.asked:
            return
        if self.open_model:
            ahead = self.rate_per_s * OPEN_LOOKAHEAD_MICROS / 1e6
            want = int(min(max(ahead, 64), 50_000)) if self.rate_per_s else 256
        else:
            want = max(64, 4 * int(self.load.get("concurrency", 1)))
        self.asked = want
        self.pull_out = True
        send({"type": "pull", "max": want})

    async def next_request(self) -> Optional[Dict[str, Any]]:
        """The next unstarted request, waiting for one; None once there will be no more."""
        while not self.pending:
            if self.ended:
                return None
            self.wake.clear()
            await self.wake.wait()
        request = self.pending.popleft()
        self.maybe_pull()
        return request

    async def run_load(self) -> None:
        progress = self.loop.create_task(self.progress_loop())
        progress.add_done_callback(crash_on_error)
        if self.open_model:
            await self.run_open(max(1, int(self.load.get("maxInFlight", 1))))
        else:
            concurrency = max(1, int(self.load.get("concurrency", 1)))
            await asyncio.gather(*(self.closed_lane() for _ in range(concurrency)))
        lag = self.lag_probe.stop()  # the load's last request has finished
        progress.cancel()
        send(self.metrics.take_progress())
        send(self.metrics.result(self.open_model, self.counter.counts, lag,
                                 time.process_time() - self.go_cpu_s,
                                 self.initialized_later_ms()))

    async def closed_lane(self) -> None:
        """Closed model: one of C lanes, each starting a request as soon as its last ends."""
        while True:
            request = await self.next_request()
            if request is None:
                return
            started = now_us()
            await self.run_request(request, started, started)

    async def run_open(self, max_in_flight: int) -> None:
        """Open model: each request starts at its due time whatever happened before, at most
        M at once; it is timed from its due time, and its own lateness is the schedule lag."""
        slots = asyncio.Semaphore(max_in_flight)
        running = set()
        while True:
            # When the dispatcher was free for this request: a request due while it was still
            # starting the one before waited for that, which is the system's wait (in the
            # corrected latency), not the worker's lateness. Waiting for a batch is the
            # worker's (and the coordinator's) own.
            free = now_us()
            request = await self.next_request()
            if request is None:
                break
            due = self.go_us + int(request["dueMicros"])
            delay = due - now_us()
            if delay > 0 and await self.stopped_within(delay / 1e6):
                break
            waited_from = now_us()
            await slots.acquire()
            slot_wait = now_us() - waited_from
            if self.stopped.is_set():  # not started: dropped
                slots.release()
                break
            started = now_us()
            record(self.metrics.schedule_lag, started - max(due, free) - slot_wait)
            task = self.loop.create_task(self.run_request(request, due, started))
            running.add(task)
            task.add_done_callback(lambda t: (running.discard(t), slots.release(),
                                              crash_on_error(t)))
        if running:
            await asyncio.gather(*running)

    async def stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stopped.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def run_request(self, request: Dict[str, Any], scheduled: int, started: int) -> None:
        context = ldclient.Context.from_dict(request["context"])
        if not context.valid:
            # As the harness does when a context cannot be built: the request fails, with
            # one failed step and no evaluation.
            log.warning("request %s: invalid context: %s", request["index"], context.error)
            ended = now_us()
            failed = StepRecord(self.app.steps[0]["config"], "(default)", "",
                                evaluation_us=ended - started, failed=True)
            self.metrics.record_request(request, [failed], self.go_us, scheduled, started, ended)
            return
        steps = []
        step_started = started
        for i, spec in enumerate(request["steps"]):
            rec = await self.app.run_step(i, context, spec, step_started, self.go_us,
                                          request["index"], self.metrics.served)
            # Each step starts when the one before it ended.
            step_started += rec.end_to_end_us
            steps.append(rec)
        self.metrics.record_request(request, steps, self.go_us, scheduled, started, now_us())

    async def progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            send(self.metrics.take_progress())

    async def close(self) -> None:
        # close() flushes the events and stops the data source: off the loop.
        await self.loop.run_in_executor(None, self.client.close)


def crash_on_error(task: asyncio.Task) -> None:
    """A bug in the load tasks ends the worker with `error`, never a silent hang."""
    if not task.cancelled() and task.exception() is not None:
        e = task.exception()
        fail(f"{type(e).__name__}: {e}")


def configure_logging() -> None:
    level_name = os.environ.get("RUST_LOG", "").lower()
    level = (logging.DEBUG if "debug" in level_name or "trace" in level_name
             else logging.INFO if "info" in level_name else logging.WARNING)
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    claim_stdout()
    configure_logging()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(Worker(loop).run())
    except Exception as e:
        log.exception("worker failed")
        fail(f"{type(e).__name__}: {e}")
    _protocol_out.flush()
    sys.stderr.flush()
    # The SDK's threads are closed; exit without waiting on anything else they hold.
    os._exit(0)


if __name__ == "__main__":
    main()
