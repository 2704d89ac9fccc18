"""The Python AI SDK (launchdarkly-server-sdk-ai 1.x) against mock-ld: an AI Config's 60/40
percentage rollout splits 10,000 premium contexts as it should, mock-ld's summary counts
match every evaluation, and the tracker's custom events arrive with the documented `data`
fields (spec §7.3)."""

import uuid
from collections import Counter

from conftest import MODEL_TO_INDEX, VARIATIONS, chi_square_p, wait_for
from ldai.client import LDAIClient
from ldai.tracker import FeedbackKind, TokenUsage
from ldclient import Context

PREMIUM, FREE = 10_000, 1_000
TRACKER_DATA_FIELDS = {"runId", "configKey", "version", "modelName", "providerName", "variationKey"}


def context(key, tier):
    return Context.builder(key).set("tier", tier).build()


def served_index(ai, flag_key, ctx):
    """Evaluates through the AI SDK; returns the variation index that was served."""
    config = ai.completion_config(flag_key, ctx)
    assert config.enabled, f"{flag_key} disabled for {ctx.key}: the SDK served its default"
    assert config.messages[0].content == f"You help {ctx.key}."
    return MODEL_TO_INDEX[config.model.name]


def flushed_stats(mock_ld, client, done):
    client.flush()
    return wait_for(mock_ld.stats, done)


def test_rollout_split_and_summary_counts(mock_ld, ld_client, report):
    ai = LDAIClient(ld_client)
    premium = Counter(served_index(ai, "ai-split", context(f"user-{i}", "premium")) for i in range(PREMIUM))
    free = Counter(served_index(ai, "ai-split", context(f"free-{i}", "free")) for i in range(FREE))

    assert set(premium) <= {1, 2}, f"premium contexts got {premium}"
    assert free == {0: FREE}, f"non-premium contexts got {free}"
    chi2, p = chi_square_p([premium[1], premium[2]], [0.6 * PREMIUM, 0.4 * PREMIUM])
    report(f"python split: premium-a={premium[1]} premium-b={premium[2]} standard={free[0]} "
          f"chi2={chi2:.3f} p={p:.4f}")
    assert p > 0.001, f"60/40 split rejected: {premium[1]}/{premium[2]}, chi2={chi2:.2f}, p={p:.2g}"

    expected = {"0": free[0], "1": premium[1], "2": premium[2]}
    stats = flushed_stats(mock_ld, ld_client, lambda s: s["flagVariations"].get("ai-split") == expected)
    assert stats["flagVariations"].get("ai-split") == expected
    assert stats["byCustomKey"].get("$ld:ai:usage:completion-config") == PREMIUM + FREE
    assert (stats["malformedEvents"], stats["rejectedPayloads"], stats["duplicatePayloads"]) == (0, 0, 0)


def run_tracker(ai, key, ctx, n, ok):
    """One AI run: every metric once (and success or error twice: the second must be
    ignored by 1.x). Returns the variation index served."""
    config = ai.completion_config(key, ctx)
    tracker = config.create_tracker()
    tracker.track_duration(100 + n)
    tracker.track_time_to_first_token(20 + n)
    tracker.track_tokens(TokenUsage(total=30 + n, input=10 + n, output=20))
    outcome = tracker.track_success if ok else tracker.track_error
    outcome()
    outcome()
    tracker.track_feedback({"kind": FeedbackKind.Positive if ok else FeedbackKind.Negative})
    return MODEL_TO_INDEX[config.model.name] if config.model else None


def test_tracker_events(mock_ld, ld_client):
    ai = LDAIClient(ld_client)
    runs = {f"user-{n}": (n, n != 3) for n in range(4)}  # user-3's run fails
    served = {key: run_tracker(ai, "ai-tracked", context(key, "premium"), n, ok)
              for key, (n, ok) in runs.items()}
    # A config the SDK does not know: default (disabled) config, empty variationKey.
    default_run = ai.completion_config("ai-missing", context("user-x", "premium")).create_tracker()
    default_run.track_error()

    expected_counts = {
        "$ld:ai:duration:total": 4, "$ld:ai:tokens:ttf": 4, "$ld:ai:tokens:total": 4,
        "$ld:ai:tokens:input": 4, "$ld:ai:tokens:output": 4, "$ld:ai:generation:success": 3,
        "$ld:ai:generation:error": 2, "$ld:ai:feedback:user:positive": 3,
        "$ld:ai:feedback:user:negative": 1, "$ld:ai:usage:completion-config": 5, "$ld:ai:sdk:info": 1,
    }
    stats = flushed_stats(mock_ld, ld_client, lambda s: s["byCustomKey"] == expected_counts)
    assert stats["byCustomKey"] == expected_counts
    assert stats["customMetricSums"]["$ld:ai:tokens:total"] == sum(30 + n for n in range(4))

    run_ids = {}
    metric_of = {"$ld:ai:duration:total": lambda n: 100 + n, "$ld:ai:tokens:ttf": lambda n: 20 + n,
                 "$ld:ai:tokens:total": lambda n: 30 + n, "$ld:ai:tokens:input": lambda n: 10 + n,
                 "$ld:ai:tokens:output": lambda n: 20}
    for key, count in expected_counts.items():
        events = mock_ld.custom_events(key)
        assert len(events) == count, f"{key}: {len(events)} events, expected {count}"
        if key.startswith("$ld:ai:usage:"):
            for event in events:
                assert (event["data"], event["metricValue"]) in {("ai-tracked", 1), ("ai-missing", 1)}
            continue
        if key == "$ld:ai:sdk:info":
            (event,) = events
            assert event["context"] == {"kind": "ld_ai", "key": "ld-internal-tracking", "anonymous": True}
            assert event["data"] == {"aiSdkName": "launchdarkly-server-sdk-ai", "aiSdkVersion": "1.2.0",
                                     "aiSdkLanguage": "python"}
            assert event["metricValue"] == 1
            continue
        for event in events:
            data, user = event["data"], event["context"]["key"]
            if user == "user-x":
                assert data == {"runId": data["runId"], "configKey": "ai-missing", "version": 1,
                                "modelName": "", "providerName": ""}, f"{key}: {data}"
                continue
            n, variation = runs[user][0], VARIATIONS[served[user]]
            assert set(data) == TRACKER_DATA_FIELDS, f"{key}: data fields {sorted(data)}"
            assert data["configKey"] == "ai-tracked"
            assert data["variationKey"] == variation["_ldMeta"]["variationKey"]
            assert data["version"] == variation["_ldMeta"]["version"]
            assert data["modelName"] == variation["model"]["name"]
            assert data["providerName"] == variation["provider"]["name"]
            assert uuid.UUID(data["runId"]).version == 4
            assert run_ids.setdefault(user, data["runId"]) == data["runId"], "one runId per tracker"
            assert event["metricValue"] == metric_of.get(key, lambda _: 1)(n), f"{key} for {user}"
    assert len(set(run_ids.values())) == len(runs), "every tracker has its own runId"
