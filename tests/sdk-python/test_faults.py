"""The Python SDK under mock-ld's faults (`/admin/faults`), observed as the SDK behaves:
unreachable at start (fallback values, then initialization once the fault ends), a stalled
stream (a change made meanwhile arrives after), and events refused or their connection
closed without an answer (the SDK sends a payload at most twice, a second apart, under one
payload id, then drops it: ldclient's `_post_events_with_retry` retries an exception like a
5xx). Waits are bounded; no timing is asserted."""

import time

import pytest

from ldclient import Context
from ldclient.client import LDClient
from ldclient.config import Config

from conftest import ENV, SDK_KEY, wait_for

FLAG = "ai-tracked"


def fault_on(mock_ld, spec):
    return mock_ld.admin("POST", "/faults", json=spec)


def fault_off(mock_ld, fault):
    return mock_ld.admin("DELETE", f"/faults/{fault['id']}")


def refused(mock_ld):
    totals = mock_ld.admin("GET", "/faults")["refusedEvents"]
    return next((t for t in totals if t["environment"] == ENV), {})


def served(client):
    context = Context.builder("user-1").set("tier", "free").build()
    return client.variation_detail(FLAG, context, {"fallback": True}).variation_index


def test_unreachable_at_start_serves_the_fallback_then_initializes(mock_ld, report):
    fault = fault_on(mock_ld, {"kind": "sdkUnavailable"})
    config = Config(SDK_KEY, base_uri=mock_ld.url, stream_uri=mock_ld.url, events_uri=mock_ld.url,
                    send_events=False)
    client = LDClient(config, start_wait=1)
    try:
        assert not client.is_initialized()
        assert served(client) is None, "not initialized: the fallback value"
        off = fault_off(mock_ld, fault)
        assert off["counts"]["requests"] >= 1, off
        started = time.monotonic()
        assert wait_for(client.is_initialized, bool, timeout=30), "initialized once the fault ended"
        report(f"python sdkUnavailable: {off['counts']['requests']} stream attempts refused; "
               f"initialized {time.monotonic() - started:.2f} s after the fault ended")
        assert served(client) == 0
    finally:
        client.close()


def test_a_stalled_stream_delivers_nothing_until_the_fault_ends(mock_ld, ld_client):
    assert served(ld_client) == 0
    fault = fault_on(mock_ld, {"kind": "streamStalled"})
    flag = mock_ld.admin("GET", f"/environments/{ENV}/flags/{FLAG}")
    flag["fallthrough"] = {"variation": 2}
    mock_ld.put_flag(flag)
    time.sleep(1)
    assert served(ld_client) == 0, "nothing arrived through the stalled stream"
    off = fault_off(mock_ld, fault)
    assert off["counts"]["requests"] == 1, off
    assert wait_for(lambda: served(ld_client), lambda v: v == 2, timeout=30) == 2


@pytest.mark.parametrize("spec", [{"kind": "eventsError", "status": 503}, {"kind": "eventsClosed"}],
                         ids=["eventsError", "eventsClosed"])
def test_refused_events_are_retried_once_then_lost(mock_ld, ld_client, spec):
    fault = fault_on(mock_ld, spec)
    context = Context.builder("user-1").build()
    for _ in range(5):
        ld_client.track("during-fault", context)
    ld_client.flush()
    wait_for(lambda: refused(mock_ld).get("refusedAttempts", 0), lambda n: n >= 2, timeout=15)
    time.sleep(1.5)  # past the one retry: a third attempt would have come by now
    totals = refused(mock_ld)
    assert totals["refusedAttempts"] == 2, totals
    assert totals["refusedPayloads"] == 1, totals
    assert totals["refusedEvents"] >= 5, totals
    off = fault_off(mock_ld, fault)
    assert off["counts"]["payloads"] == 2, off

    for _ in range(3):
        ld_client.track("after-fault", context)
    ld_client.flush()
    stats = wait_for(mock_ld.stats, lambda s: s["byCustomKey"].get("after-fault") == 3)
    assert stats["byCustomKey"].get("after-fault") == 3
    assert "during-fault" not in stats["byCustomKey"], "the SDK dropped them: never resent"
    assert refused(mock_ld)["retriedPayloads"] == 0
