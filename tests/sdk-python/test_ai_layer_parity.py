"""The harness's AI Config layer (src/ai, Rust) against LaunchDarkly's Python AI SDK 1.2.0,
its reference: the same AI Config flags, contexts, variables and tracker calls go through
both, each against its own mock-ld, and what they return and send must agree field by field.

Compared:
- what each call returns: enabled, model, provider, tools, and the interpolated messages or
  instructions (Mustache: escaping, dotted names, sections, standalone lines, Python's str()
  of numbers and booleans, ldctx of single, multi, private-attribute and anonymous contexts);
- every custom event: key, metricValue, context and data, grouped by run: runId must be a
  UUIDv4, shared by a run's events and different between runs, and is otherwise ignored;
- the usage events and $ld:ai:sdk:info, whose data differs only by the documented identity
  (aiSdkName, aiSdkVersion, aiSdkLanguage);
- the summary counters (flag, default, value, variation, version, count), so each call is one
  plain evaluation with Python's default, plus Python's evaluation of referenced judges.

The Rust side is examples/ai_layer_calls.rs, built beforehand (`cargo build --examples`);
AI_LAYER_BIN overrides its path.
"""

import json
import os
import subprocess
import tomllib
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import REPO, SDK_KEY, MockLd, make_client, wait_for
from ldai.client import LDAIClient
from ldai.models import AIAgentConfigDefault, AICompletionConfigDefault, LDMessage, ModelConfig, ProviderConfig
from ldai.tracker import FeedbackKind, TokenUsage
from ldclient import Context

PYTHON_IDENTITY = {"aiSdkName": "launchdarkly-server-sdk-ai", "aiSdkVersion": "1.2.0", "aiSdkLanguage": "python"}
RUST_NAME, RUST_LANGUAGE = "aiconfig-harness", "rust"


def flag(key, variations, rules=()):
    return {"key": key, "version": 1, "on": True, "salt": f"{key}-salt", "offVariation": 0,
            "variations": variations, "rules": list(rules), "fallthrough": {"variation": 0}}


SYSTEM_PROMPT = ("You help {{ldctx.name}} ({{ldctx.key}}, {{ldctx.tier}}) with {{product}}.\n"
                 "{{#vip}}\nTreat them as a VIP.\n{{/vip}}\n{{^vip}}\nBe brief.\n{{/vip}}\n")
USER_PROMPT = ("{{question}} <{{raw}}> {{{raw}}} {{&raw}} {{count}} {{ratio}} {{flag}} {{off}} {{zero}} "
               "[{{missing}}] {{nested.a.b}} {{list}} {{#items}}[{{name}}={{qty}}]{{/items}}{{! note }}")

FLAGS = [
    flag("parity-completion", [
        {"_ldMeta": {"enabled": True, "variationKey": "standard", "version": 2, "mode": "completion"},
         "model": {"name": "gpt-4o-mini", "parameters": {"temperature": 0.3, "tools": [
             {"name": "lookup", "description": "Looks up orders", "parameters": {"type": "object"}},
             {"description": "nameless, skipped"}]}},
         "provider": {"name": "openai"},
         "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]},
        {"_ldMeta": {"enabled": True, "variationKey": "premium", "version": 5},
         "model": {"name": "claude-3-5-sonnet", "custom": {"team": "support"}, "region": "eu"},
         "provider": {"name": "anthropic"},
         "messages": [{"role": "system", "content": "Premium help for {{ ldctx.key }}: {{#items}}{{name}} {{/items}}"}],
         "tools": {"web-search": {"description": "Search", "type": "function", "customParameters": {"safe": True}},
                   "calc": {"name": "calculator"}}},
    ], rules=[{"id": "premium", "trackEvents": False, "variation": 1,
               "clauses": [{"attribute": "tier", "op": "in", "values": ["premium"]}]}]),
    flag("parity-agent", [
        {"_ldMeta": {"enabled": True, "variationKey": "agent-a", "version": 1, "mode": "agent"},
         "model": {"name": "gpt-4o"}, "provider": {"name": "openai"},
         "instructions": "Research {{topic}} for {{ldctx.user.key}} at {{ldctx.organization.name}}.",
         "tools": {"web-search": {"description": "Searches the web", "type": "function"}}},
    ]),
    flag("parity-agent-bare", [{"_ldMeta": {"enabled": True, "version": 3, "mode": "agent"}}]),
    flag("parity-judged", [
        {"_ldMeta": {"enabled": True, "variationKey": "judged", "version": 1},
         "model": {"name": "gpt-4o"}, "provider": {"name": "openai"},
         "messages": [{"role": "system", "content": "Answer {{ldctx.email}}."}],
         "judgeConfiguration": {"judges": [{"key": "parity-judge", "samplingRate": 0.5}]}},
    ]),
    flag("parity-judge", [
        {"_ldMeta": {"enabled": True, "variationKey": "j1", "version": 1, "mode": "judge"},
         "model": {"name": "gpt-4o-mini"}, "provider": {"name": "openai"},
         "messages": [{"role": "system", "content": "Judge {{message_history}}"}],
         "evaluationMetricKey": "$ld:ai:judge:relevance"},
    ]),
    flag("parity-broken", [{"_ldMeta": {"enabled": True}, "model": {"parameters": {}}}]),
]

CONTEXTS = {
    "free": {"kind": "user", "key": "parity-u1", "name": "Ada", "tier": "free", "country": "de"},
    "premium": {"kind": "user", "key": "parity-u2", "name": "Grace", "tier": "premium"},
    "multi": {"kind": "multi", "user": {"key": "parity-u3", "name": "Linus"},
              "organization": {"key": "acme", "name": "Acme Inc"}},
    "private": {"kind": "user", "key": "parity-u4", "email": "u4@example.com", "tier": "free",
                "_meta": {"privateAttributes": ["email"]}},
    "anonymous": {"kind": "user", "key": "parity-u5", "anonymous": True, "tier": "free"},
}

VARIABLES = {"product": "Acme <Cloud> & \"Edge\" 'beta'", "question": "Why is my bill higher?", "raw": "<b>",
             "count": 3, "ratio": 0.5, "flag": True, "off": False, "zero": 0, "nested": {"a": {"b": "deep"}},
             "list": [1, "two", None], "vip": False, "items": [{"name": "x", "qty": 1}, {"name": "y", "qty": 0}],
             "topic": "tides", "ldctx": "shadowed by the context"}

FULL_RUN = [{"op": "duration", "value": 812}, {"op": "ttft", "value": 95},
            {"op": "tokens", "total": 420, "input": 300, "output": 120},
            {"op": "success"}, {"op": "success"}, {"op": "error"},
            {"op": "feedback", "kind": "positive"}, {"op": "feedback", "kind": "negative"},
            {"op": "tool_call", "key": "lookup"}, {"op": "tool_call", "key": "lookup"},
            {"op": "duration", "value": 5}, {"op": "ttft", "value": 6}]

CALLS = [
    {"method": "completion_config", "key": "parity-completion", "context": CONTEXTS["free"],
     "variables": VARIABLES, "runs": [FULL_RUN, [{"op": "error"}, {"op": "tokens", "total": 0, "input": 0, "output": 0},
                                                 {"op": "tokens", "total": 5, "input": 5, "output": 5}]]},
    {"method": "completion_config", "key": "parity-completion", "context": CONTEXTS["free"],
     "variables": {**VARIABLES, "vip": True}, "runs": [[{"op": "tokens", "total": 10, "input": 0, "output": 10}]]},
    {"method": "completion_config", "key": "parity-completion", "context": CONTEXTS["premium"],
     "variables": VARIABLES, "runs": [[{"op": "error"}, {"op": "success"}, {"op": "feedback", "kind": "negative"}]]},
    {"method": "agent_config", "key": "parity-agent", "context": CONTEXTS["multi"], "variables": VARIABLES,
     "runs": [[{"op": "duration", "value": 1}, {"op": "tool_call", "key": "web-search"}, {"op": "success"}]]},
    {"method": "agent_config", "key": "parity-agent-bare", "context": CONTEXTS["private"], "variables": VARIABLES,
     "default": {"enabled": False, "model": {"name": "fallback-model"}, "provider": {"name": "fallback"},
                 "instructions": "Unrendered {{topic}}"},
     "runs": [[{"op": "ttft", "value": 7}, {"op": "duration", "value": 9}]]},
    {"method": "completion_config", "key": "parity-judged", "context": CONTEXTS["private"], "runs": [[{"op": "success"}]]},
    {"method": "completion_config", "key": "parity-missing", "context": CONTEXTS["anonymous"], "variables": VARIABLES,
     "default": {"enabled": True, "model": {"name": "gpt-default", "parameters": {"temperature": 1}},
                 "provider": {"name": "openai"},
                 "messages": [{"role": "system", "content": "Default for {{ldctx.key}} ({{ldctx.anonymous}}) {{topic}}"}]},
     "runs": [[{"op": "error"}]]},
    {"method": "completion_config", "key": "parity-missing-disabled", "context": CONTEXTS["free"],
     "runs": [[{"op": "feedback", "kind": "positive"}]]},
    {"method": "agent_config", "key": "parity-missing-agent", "context": CONTEXTS["multi"], "variables": VARIABLES,
     "default": {"enabled": True, "instructions": "Default agent on {{topic}} for {{ldctx.organization.key}}"},
     "runs": [[{"op": "success"}]]},
    {"method": "completion_config", "key": "parity-broken", "context": CONTEXTS["free"], "runs": [[{"op": "success"}]]},
]


def rust_binary():
    binary = Path(os.environ.get("AI_LAYER_BIN", REPO / "target/debug/examples/ai_layer_calls"))
    if not binary.is_file():
        pytest.fail(f"{binary} not found: run `cargo build --examples` (or set AI_LAYER_BIN)", pytrace=False)
    return binary


def python_default(method, spec):
    spec = spec or {}
    model = ModelConfig(spec["model"]["name"], parameters=spec["model"].get("parameters")) if "model" in spec else None
    provider = ProviderConfig(spec["provider"]["name"]) if "provider" in spec else None
    if method == "agent_config":
        return AIAgentConfigDefault(enabled=spec.get("enabled", False), model=model, provider=provider,
                                    instructions=spec.get("instructions"))
    messages = [LDMessage(m["role"], m["content"]) for m in spec["messages"]] if "messages" in spec else None
    return AICompletionConfigDefault(enabled=spec.get("enabled", False), model=model, provider=provider,
                                     messages=messages)


def config_dict(config):
    return {"enabled": config.enabled,
            "model": config.model.to_dict() if config.model else None,
            "provider": config.provider.to_dict() if config.provider else None,
            "tools": {k: t.to_dict() for k, t in config.tools.items()} if config.tools else None}


def apply(tracker, op):
    kind = op["op"]
    if kind == "duration":
        tracker.track_duration(op["value"])
    elif kind == "ttft":
        tracker.track_time_to_first_token(op["value"])
    elif kind == "tokens":
        tracker.track_tokens(TokenUsage(total=op["total"], input=op["input"], output=op["output"]))
    elif kind == "success":
        tracker.track_success()
    elif kind == "error":
        tracker.track_error()
    elif kind == "feedback":
        tracker.track_feedback({"kind": FeedbackKind.Positive if op["kind"] == "positive" else FeedbackKind.Negative})
    elif kind == "tool_call":
        tracker.track_tool_call(op["key"])
    else:
        raise ValueError(kind)


def run_python_call(ai, call):
    """One call through Python's AI SDK, in the shape ai_layer_calls prints."""
    context = Context.from_dict(call["context"])
    default = python_default(call["method"], call.get("default"))
    try:
        if call["method"] == "completion_config":
            config = ai.completion_config(call["key"], context, default, call.get("variables"))
            messages = [m.to_dict() for m in config.messages] if config.messages is not None else None
            result = {"config": config_dict(config), "messages": messages}
        else:
            config = ai.agent_config(call["key"], context, default, call.get("variables"))
            result = {"config": config_dict(config), "instructions": config.instructions}
    except Exception as error:  # Python raises where the Rust layer returns an error
        return {"error": f"{type(error).__name__}: {error}"}
    for ops in call.get("runs", []):
        tracker = config.create_tracker()
        for op in ops:
            apply(tracker, op)
    return result


def stable_events(mock, kind, minimum=1):
    """The events of a kind once at least `minimum` arrived and the count stopped moving."""
    counts = []

    def settled(events):
        counts.append(len(events))
        return len(events) >= minimum and len(counts) > 1 and counts[-2] == counts[-1]

    def fetch():
        return [i["event"] for i in mock.admin("GET", "/events", params={"env": "test", "kind": kind})["items"]]
    return wait_for(fetch, settled, timeout=20, interval=0.3)


def canonical(value):
    return json.dumps(value, sort_keys=True)


def custom_records(events, identity):
    """Custom events as comparable records: those of tracker runs grouped per runId (which
    must be a UUIDv4) without it, the others (usage, sdk:info) alone."""
    runs, others = defaultdict(list), []
    for event in events:
        data = event.get("data")
        record = {"key": event["key"], "metricValue": float(event["metricValue"]), "context": event["context"],
                  "data": data}
        if event["key"] == "$ld:ai:sdk:info":
            assert data == identity, f"sdk:info data {data}"
            record["data"] = "<identity>"
        if isinstance(data, dict) and "runId" in data:
            run_id = data["runId"]
            assert uuid.UUID(run_id).version == 4 and str(uuid.UUID(run_id)) == run_id, f"runId {run_id!r}"
            record["data"] = {k: v for k, v in data.items() if k != "runId"}
            runs[run_id].append(canonical(record))
        else:
            others.append(canonical(record))
    return sorted(others), sorted(sorted(run) for run in runs.values())


def summary_counters(events):
    """Per flag: the default, the context kinds and how often each value was served."""
    flags = {}
    for event in events:
        for key, feature in event["features"].items():
            entry = flags.setdefault(key, {"default": canonical(feature.get("default")), "contextKinds": set(),
                                           "counters": Counter()})
            assert entry["default"] == canonical(feature.get("default")), f"{key}: two defaults"
            entry["contextKinds"].update(feature.get("contextKinds", []))
            for counter in feature["counters"]:
                served = {k: counter.get(k) for k in ("value", "variation", "version", "unknown")}
                entry["counters"][canonical(served)] += counter["count"]
    return flags


@pytest.fixture
def mocks(tmp_path):
    started = []
    try:
        for side in ("python", "rust"):
            (tmp_path / side).mkdir()
            mock = MockLd(tmp_path / side)
            started.append(mock)
            for f in FLAGS:
                mock.put_flag(f)
        yield started
    finally:
        for mock in started:
            mock.stop()


def test_rust_ai_layer_returns_and_sends_what_python_1_2_does(mocks, tmp_path, report):
    binary = rust_binary()
    py_mock, rs_mock = mocks

    client = make_client(py_mock.url)
    assert client.is_initialized()
    ai = LDAIClient(client)
    py_results = [run_python_call(ai, call) for call in CALLS]
    client.close()

    script = tmp_path / "script.json"
    script.write_text(json.dumps({"calls": CALLS}))
    done = subprocess.run([str(binary), "--base-url", rs_mock.url, "--sdk-key", SDK_KEY, str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ai_layer_calls failed:\n{done.stderr}"
    rs_results = [json.loads(line) for line in done.stdout.splitlines()]

    assert len(rs_results) == len(py_results)
    for call, py, rs in zip(CALLS, py_results, rs_results):
        if "error" in py:
            assert "error" in rs, f"{call['key']}: Python raised {py['error']}, Rust returned {rs}"
            continue
        assert rs == py, f"{call['key']} for {call['context']}: Rust {rs} != Python {py}"

    py_custom = stable_events(py_mock, "custom")
    rs_custom = stable_events(rs_mock, "custom", minimum=len(py_custom))
    rust_identity = {"aiSdkName": RUST_NAME, "aiSdkVersion": crate_version(), "aiSdkLanguage": RUST_LANGUAGE}
    py_others, py_runs = custom_records(py_custom, PYTHON_IDENTITY)
    rs_others, rs_runs = custom_records(rs_custom, rust_identity)
    assert rs_others == py_others, "usage and sdk:info events differ"
    assert len(rs_runs) == len(py_runs), f"{len(rs_runs)} runs from Rust, {len(py_runs)} from Python"
    for py_run, rs_run in zip(py_runs, rs_runs):
        assert rs_run == py_run, f"a run's events differ:\nRust   {rs_run}\nPython {py_run}"

    py_summary = summary_counters(stable_events(py_mock, "summary"))
    rs_summary = summary_counters(stable_events(rs_mock, "summary"))
    assert set(rs_summary) == set(py_summary), "evaluated flags differ"
    for key in py_summary:
        assert rs_summary[key] == py_summary[key], f"{key}: Rust {rs_summary[key]} != Python {py_summary[key]}"
    report(f"ai layer parity: {len(CALLS)} calls, {len(py_custom)} custom events in {len(py_runs)} runs, "
           f"{len(py_summary)} flags in summaries: Rust == Python 1.2.0")


def crate_version():
    """The Rust layer's aiSdkVersion: the harness crate's version."""
    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]
