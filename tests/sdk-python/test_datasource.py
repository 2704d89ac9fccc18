"""The Python server SDK's data source against mock-ld: it initializes over the `/all`
stream, a flag changed through the admin API reaches it as a streamed patch, and an
unknown SDK key (mock-ld answers 401) fails initialization within a short timeout."""

import time

import requests
from conftest import ai_flag, ai_variation, make_client, wait_for
from ldai.client import LDAIClient
from ldclient import Context
from ldclient.interfaces import DataSourceState


def test_initializes_over_the_stream(mock_ld, ld_client):
    assert ld_client.is_initialized()
    envs = mock_ld.admin("GET", "/environments")["items"]
    assert [e["streams"] for e in envs if e["key"] == "test"] == [1], f"one stream expected: {envs}"
    flag = ld_client.variation_detail("ai-split", Context.create("someone"), None)
    assert flag.value["_ldMeta"]["variationKey"] == "standard", flag
    assert flag.reason == {"kind": "FALLTHROUGH"}
    ld_client.flush()
    stats = wait_for(mock_ld.stats, lambda s: s["byKind"].get("diagnostic-init"))
    assert stats["byKind"].get("diagnostic-init") == 1, stats["byKind"]


def test_flag_change_propagates(mock_ld, ld_client, report):
    ai = LDAIClient(ld_client)
    ctx = Context.builder("user-7").set("tier", "premium").build()
    assert ai.completion_config("ai-propagation", ctx).model.name in {"gpt-4o", "claude-3-5-sonnet"}

    updated = ai_flag("ai-propagation", premium_serves={"variation": 3})
    updated["variations"] = updated["variations"] + [ai_variation("premium-next", "gpt-4.1", "openai", 4)]
    start = time.monotonic()
    stored = mock_ld.put_flag(updated)
    served = wait_for(lambda: ai.completion_config("ai-propagation", ctx), timeout=5, interval=0.001,
                      done=lambda c: c.model.name == "gpt-4.1")
    elapsed_ms = (time.monotonic() - start) * 1000
    report(f"python propagation: {elapsed_ms:.1f} ms (flag version {stored['version']})")
    assert stored["version"] == 2
    assert served.model.name == "gpt-4.1", f"still served {served.model.name} after 5 s"
    assert ld_client.variation_detail("ai-propagation", ctx, None).variation_index == 3


def test_unknown_sdk_key_fails_init(mock_ld):
    resp = requests.get(f"{mock_ld.url}/all", headers={"Authorization": "sdk-unknown"}, timeout=5)
    assert resp.status_code == 401

    # 9.18.x no longer gives up on a 401: it retries after minutes (extended backoff), so
    # init fails by the short start_wait. The data source status shows mock-ld's 401.
    start = time.monotonic()
    client = make_client(mock_ld.url, sdk_key="sdk-unknown", start_wait=1)
    try:
        assert time.monotonic() - start < 3
        assert not client.is_initialized()
        status = client.data_source_status_provider.status
        assert status.state == DataSourceState.INITIALIZING, status.state
        assert status.error is not None and status.error.status_code == 401, status.error
        assert client.variation("ai-split", Context.create("someone"), "fallback") == "fallback"
    finally:
        client.close()
