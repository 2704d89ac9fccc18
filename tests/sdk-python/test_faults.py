"""The Python SDK (ldclient 9.18.4) under each of mock-ld's SDK faults (`/admin/faults`),
observed as the SDK behaves: unreachable at start (fallback values, then initialization once
the fault ends); a stream stalled, refused or dropped (the data kept, reconnects with backoff,
the change made meanwhile served after or through a reopened stream); a malformed event (the
SDK restarts the stream); a polling client refused (the fallback until its next poll, 30 s
on); events refused, closed or held past the read timeout (the SDK sends a payload at most
twice, a second apart, under one payload id, then drops it: ldclient's
`_post_events_with_retry` retries an exception like a 5xx), or held shorter (waited for, and
the retry after the 503 stored); slow and throttled links (initialization waits for the
payload). Waits are bounded; only least times are asserted (mock-ld's delays, the SDK's
least reconnect delays), never most."""

import time

import pytest
import requests

from ldclient import Context
from ldclient.client import LDClient
from ldclient.config import Config, HTTPConfig

from conftest import ENV, SDK_KEY, wait_for

FLAG = "ai-tracked"

# streaming.py `StreamingUpdateProcessor._handle_error` waits `RetryState.next_delay` before
# each reconnect; retry.py `for_streaming` starts it at `initial_reconnect_delay` (1 s),
# doubles it per failure and takes off a jitter of at most half (`record_failure`): the
# first reconnect comes at least 0.5 s after a stream ends, the second at least 1 s later.
FIRST_RECONNECT = 0.5
FIRST_TWO_RECONNECTS = 1.5


def fault_on(mock_ld, spec):
    return mock_ld.admin("POST", "/faults", json=spec)


def fault_off(mock_ld, fault):
    return mock_ld.admin("DELETE", f"/faults/{fault['id']}")


def refused(mock_ld):
    totals = mock_ld.admin("GET", "/faults")["refusedEvents"]
    return next((t for t in totals if t["environment"] == ENV), {})


def events_fault_on(mock_ld, spec):
    """`spec` switched on once the client's diagnostic-init event is in: the client posts it
    on its own thread at start (event_processor.py `EventDispatcher.__init__`), and a late
    one would meet the fault too, as a second payload."""
    wait_for(mock_ld.stats, lambda s: s["byKind"].get("diagnostic-init"))
    return fault_on(mock_ld, spec)


def counted(mock_ld, fault):
    """What mock-ld has counted so far against `fault`, while it is on."""
    active = mock_ld.admin("GET", "/faults")["active"]
    return next(f for f in active if f["id"] == fault["id"])["counts"]["requests"]


def change_flag(mock_ld):
    """Everyone falls through to variation 2 from now on (0 before)."""
    flag = mock_ld.admin("GET", f"/environments/{ENV}/flags/{FLAG}")
    flag["fallthrough"] = {"variation": 2}
    mock_ld.put_flag(flag)


def client_without_events(mock_ld, start_wait, **options):
    """An SDK client at mock-ld that sends no events: only its data source's requests count."""
    config = Config(SDK_KEY, base_uri=mock_ld.url, stream_uri=mock_ld.url, events_uri=mock_ld.url,
                    send_events=False, **options)
    return LDClient(config, start_wait=start_wait)


def served(client):
    context = Context.builder("user-1").set("tier", "free").build()
    return client.variation_detail(FLAG, context, {"fallback": True}).variation_index


def test_unreachable_at_start_serves_the_fallback_then_initializes(mock_ld, report):
    fault = fault_on(mock_ld, {"kind": "sdkUnavailable"})
    client = client_without_events(mock_ld, start_wait=1)
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
    change_flag(mock_ld)
    time.sleep(1)
    assert served(ld_client) == 0, "nothing arrived through the stalled stream"
    off = fault_off(mock_ld, fault)
    assert off["counts"]["requests"] == 1, off
    assert wait_for(lambda: served(ld_client), lambda v: v == 2, timeout=30) == 2


def test_a_refused_stream_keeps_the_data_reconnects_with_backoff_and_catches_up(mock_ld, ld_client, report):
    assert served(ld_client) == 0
    started = time.monotonic()
    fault = fault_on(mock_ld, {"kind": "streamRefused", "status": 503})
    change_flag(mock_ld)
    # The open stream ended (1), then two reopens refused (2, 3): a 503 is a NORMAL failure
    # to the SDK (retry.py `classify_http_status`), so it reconnects, with backoff.
    count = wait_for(lambda: counted(mock_ld, fault), lambda n: n >= 3)
    took = time.monotonic() - started
    assert count >= 3, "the SDK reconnects while refused"
    assert took >= FIRST_TWO_RECONNECTS, f"two reconnects {took:.2f} s after the stream ended"
    assert served(ld_client) == 0, "the data it had, kept through the fault"
    off = fault_off(mock_ld, fault)
    assert wait_for(lambda: served(ld_client), lambda v: v == 2, timeout=30) == 2
    report(f"python streamRefused: {off['counts']['requests']} streams ended or refused; "
           f"the first two reconnects {took:.2f} s after the fault began")


def test_a_dropped_stream_is_reopened_and_its_payload_brings_the_change(mock_ld, ld_client, report):
    assert served(ld_client) == 0
    started = time.monotonic()
    fault = fault_on(mock_ld, {"kind": "streamDropped"})
    change_flag(mock_ld)
    # The open stream ended (1); each reopened one ends after its `put` (2, 3). A clean end
    # is a StreamClosedError to streaming.py `run`, retried like any NORMAL failure.
    count = wait_for(lambda: counted(mock_ld, fault), lambda n: n >= 3)
    took = time.monotonic() - started
    assert count >= 3, "the SDK reopens the dropped stream"
    assert took >= FIRST_TWO_RECONNECTS, f"two reopens {took:.2f} s after the stream ended"
    # A reopened stream's `put` is the whole data set (streaming.py `_process_message`:
    # `store.init`), the change included: it arrives while the fault is still on.
    assert wait_for(lambda: served(ld_client), lambda v: v == 2) == 2
    off = fault_off(mock_ld, fault)
    report(f"python streamDropped: {off['counts']['requests']} streams ended; "
           f"the first two reopens {took:.2f} s after the fault began")


def test_a_malformed_event_restarts_the_stream(mock_ld, ld_client):
    assert served(ld_client) == 0
    started = time.monotonic()
    fault = fault_on(mock_ld, {"kind": "streamMalformed"})
    change_flag(mock_ld)
    # Unlike the Rust and Node SDKs, which skip the event and read on: streaming.py `run`
    # catches the JSONDecodeError, interrupts the stream and reconnects after the backoff
    # (`_handle_error`), so a second stream opens and gets its own malformed event.
    count = wait_for(lambda: counted(mock_ld, fault), lambda n: n >= 2)
    took = time.monotonic() - started
    assert count >= 2, "a second stream: the SDK restarted it"
    assert took >= FIRST_RECONNECT, f"restarted {took:.2f} s after the malformed event"
    # The restarted stream's `put` brings the change, while the fault is still on.
    assert wait_for(lambda: served(ld_client), lambda v: v == 2) == 2
    fault_off(mock_ld, fault)


def test_refused_polling_leaves_a_polling_sdk_on_the_fallback(mock_ld):
    # config.py `Config.__init__`: `poll_interval` is at least DEFAULT_POLL_INTERVAL (30 s),
    # too long to wait for a second poll here: one refused first poll is the test.
    assert Config(SDK_KEY, poll_interval=1).poll_interval == 30
    fault = fault_on(mock_ld, {"kind": "pollingError", "status": 503})
    client = client_without_events(mock_ld, start_wait=2, stream=False)
    try:
        # polling.py `_poll`: an unsuccessful response records a failure and does not set
        # `ready`; the next poll is a poll interval later (retry.py `for_polling`).
        assert not client.is_initialized()
        assert served(client) is None, "not initialized: the fallback value"
        off = fault_off(mock_ld, fault)
        # feature_requester.py `get_all_data_with_headers` asks urllib3 for `retries=1`,
        # which retries no 503 without Retry-After: one request.
        assert off["counts"]["requests"] == 1, off
    finally:
        client.close()


def events_retried_once_then_lost(mock_ld, client, spec, settle=1.5):
    """Events tracked while `spec` refuses them: sent twice under one payload id, then
    dropped (event_processor.py `_post_events_with_retry`: `can_retry` once, `time.sleep(1)`
    between); the ones tracked after the fault arrive. `settle`: long enough after the second
    attempt that a third would have come. Returns how long after the flush the retry came."""
    fault = events_fault_on(mock_ld, spec)
    context = Context.builder("user-1").build()
    for _ in range(5):
        client.track("during-fault", context)
    started = time.monotonic()
    client.flush()
    wait_for(lambda: refused(mock_ld).get("refusedAttempts", 0), lambda n: n >= 2, timeout=15)
    retried_after = time.monotonic() - started
    time.sleep(settle)
    totals = refused(mock_ld)
    assert totals["refusedAttempts"] == 2, totals
    assert totals["refusedPayloads"] == 1, totals
    assert totals["refusedEvents"] >= 5, totals
    off = fault_off(mock_ld, fault)
    assert off["counts"]["payloads"] == 2, off

    for _ in range(3):
        client.track("after-fault", context)
    client.flush()
    stats = wait_for(mock_ld.stats, lambda s: s["byCustomKey"].get("after-fault") == 3)
    assert stats["byCustomKey"].get("after-fault") == 3
    assert "during-fault" not in stats["byCustomKey"], "the SDK dropped them: never resent"
    assert refused(mock_ld)["retriedPayloads"] == 0
    return retried_after


@pytest.mark.parametrize("spec", [{"kind": "eventsError", "status": 503}, {"kind": "eventsClosed"}],
                         ids=["eventsError", "eventsClosed"])
def test_refused_events_are_retried_once_then_lost(mock_ld, ld_client, spec):
    events_retried_once_then_lost(mock_ld, ld_client, spec)


def test_held_events_are_waited_for_then_retried_and_stored(mock_ld, ld_client, report):
    # event_processor.py `_post_events_with_retry` posts with `config.http.read_timeout`,
    # 15 s by default (config.py `HTTPConfig`, which `make_client` keeps): a hold shorter
    # than that is waited out.
    assert Config(SDK_KEY).http.read_timeout == 15
    fault = events_fault_on(mock_ld, {"kind": "eventsTimeout"})
    context = Context.builder("user-1").build()
    for _ in range(5):
        ld_client.track("during-fault", context)
    ld_client.flush()
    wait_for(lambda: refused(mock_ld).get("refusedAttempts", 0), lambda n: n >= 1)
    time.sleep(1.5)  # past the SDK's retry delay, and still one attempt: it waits
    assert refused(mock_ld)["refusedAttempts"] == 1, refused(mock_ld)
    off = fault_off(mock_ld, fault)
    assert off["counts"]["payloads"] == 1, off
    # The 503 that ends the hold is recoverable: one retry a second later, stored.
    stats = wait_for(mock_ld.stats, lambda s: s["byCustomKey"].get("during-fault") == 5)
    assert stats["byCustomKey"].get("during-fault") == 5, "the retry after the hold was stored"
    totals = refused(mock_ld)
    assert totals["retriedPayloads"] == 1, totals
    report(f"python eventsTimeout (read timeout 15 s, held 1.5 s): {totals}")


def test_events_held_past_the_read_timeout_are_retried_once_then_lost(mock_ld):
    # urllib3 raises a ReadTimeoutError after `read_timeout`; `_post_events_with_retry`
    # retries an exception once, then drops the payload: like a refusal, two attempts.
    read_timeout = 1
    config = Config(SDK_KEY, base_uri=mock_ld.url, stream_uri=mock_ld.url, events_uri=mock_ld.url,
                    http=HTTPConfig(read_timeout=read_timeout))
    client = LDClient(config, start_wait=5)
    try:
        assert client.is_initialized()
        retried_after = events_retried_once_then_lost(mock_ld, client, {"kind": "eventsTimeout"},
                                                      settle=read_timeout + 1.5)
        assert retried_after >= read_timeout + 1, f"the retry {retried_after:.2f} s after the flush"
    finally:
        client.close()


def test_a_slow_link_delays_initialization_by_the_latency(mock_ld, report):
    latency = 1.5
    fault = fault_on(mock_ld, {"kind": "sdkSlow", "latencyMs": int(latency * 1000)})
    started = time.monotonic()
    client = client_without_events(mock_ld, start_wait=10)
    took = time.monotonic() - started
    try:
        # streaming.py `run` sets `ready` on the stream's first `put`, which comes no sooner.
        assert client.is_initialized()
        assert took >= latency, f"initialized after {took:.2f} s"
        assert served(client) == 0
        off = fault_off(mock_ld, fault)
        assert off["counts"]["requests"] == 1, f"one stream slowed: {off}"
        report(f"python sdkSlow: {latency} s added; initialized after {took:.2f} s")
    finally:
        client.close()


def test_a_throttled_link_delays_initialization_by_the_payloads_size(mock_ld, report):
    # The polling answer of the same data: smaller than the stream's `put`, a least size.
    size = len(requests.get(f"{mock_ld.url}/sdk/latest-all", headers={"Authorization": SDK_KEY},
                            timeout=10).content)
    rate = max(size * 2 // 3, 1)  # about a second and a half for the payload
    fault = fault_on(mock_ld, {"kind": "sdkThrottled", "bytesPerSecond": rate})
    started = time.monotonic()
    client = client_without_events(mock_ld, start_wait=10)
    took = time.monotonic() - started
    try:
        # streaming.py `run`: `ready` once the whole `put` has been read and parsed.
        assert client.is_initialized()
        assert took >= size / rate, f"initialized after {took:.2f} s"
        assert served(client) == 0
        off = fault_off(mock_ld, fault)
        assert off["counts"]["requests"] == 1, f"one stream throttled: {off}"
        report(f"python sdkThrottled: {size} bytes at {rate} B/s; initialized after {took:.2f} s")
    finally:
        client.close()
