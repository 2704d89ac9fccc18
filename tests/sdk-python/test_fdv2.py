"""The Python server SDK 9.18.4 with its FDv2 data system (`Config(datasystem_config=...)`)
against mock-ld's `/sdk/stream` and `/sdk/poll`: it initializes with the seeded AI Configs,
sees a change pushed through the admin API within the FDv1 propagation bound, recovers when
mock-ld restarts on the same port with `--state`, and, when mock-ld answers
`X-LD-FD-Fallback: true` (`--fdv2 off`), falls back to FDv1 and still gets the data."""

import os
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, SDK_KEY, MockLd, ai_flag, ai_variation, wait_for
from ldai.client import LDAIClient
from ldclient import Context, datasystem
from ldclient.client import LDClient
from ldclient.config import Config
from ldclient.impl.datasourcev2.polling import PollingDataSource
from ldclient.impl.datasourcev2.streaming import StreamingDataSource
from ldclient.impl.datasystem.fdv2 import FDv2
from ldclient.interfaces import DataSourceState

# The FDv1 propagation tests' bound (test_datasource.py).
PROPAGATION_S = 5
PREMIUM = Context.builder("user-7").set("tier", "premium").build()
# Polls every 100 ms instead of the SDKs' 30 s, so polling tests take well under a second.
FAST_POLL_S = 0.1


def fdv2_client(url, data_system):
    config = Config(SDK_KEY, base_uri=url, stream_uri=url, events_uri=url,
                    send_events=False, datasystem_config=data_system.build())
    return LDClient(config, start_wait=5)


def running(client, kind):
    """Whether the SDK's FDv2 data system runs a synchronizer of `kind` (within a few
    seconds: an initializer may finish first, and the synchronizer starts after it)."""
    system = client._data_system  # pylint: disable=protected-access
    assert isinstance(system, FDv2), f"the FDv2 data system is not in use: {type(system)}"
    active = wait_for(lambda: system._active_synchronizer,  # pylint: disable=protected-access
                      lambda s: isinstance(s, kind), timeout=5, interval=0.01)
    return isinstance(active, kind)


def streams(server):
    """The test environment's connected streams: (all, FDv2 ones)."""
    envs = server.admin("GET", "/environments")["items"]
    return next((e["streams"], e["fdv2Streams"]) for e in envs if e["key"] == "test")


def served_model(client):
    return LDAIClient(client).completion_config("ai-propagation", PREMIUM).model.name


def push_change_and_time(mock_ld, client, report, label):
    """Changes ai-propagation through the admin API; returns the model the SDK then serves."""
    updated = ai_flag("ai-propagation", premium_serves={"variation": 3})
    updated["variations"] = updated["variations"] + [ai_variation("premium-next", "gpt-4.1", "openai", 4)]
    start = time.monotonic()
    stored = mock_ld.put_flag(updated)
    served = wait_for(lambda: served_model(client), lambda m: m == "gpt-4.1",
                      timeout=PROPAGATION_S, interval=0.001)
    report(f"python fdv2 {label} propagation: {(time.monotonic() - start) * 1000:.1f} ms "
           f"(flag version {stored['version']})")
    return served


def assert_seeded_data(client):
    assert client.is_initialized(), "the FDv2 SDK did not initialize from mock-ld"
    detail = client.variation_detail("ai-split", Context.create("someone"), None)
    assert detail.value["_ldMeta"]["variationKey"] == "standard", detail
    assert detail.reason == {"kind": "FALLTHROUGH"}
    config = LDAIClient(client).completion_config("ai-split", Context.create("someone"))
    assert config.enabled and config.model.name == "gpt-4o-mini", config
    assert config.messages[0].content == "You help someone."
    assert served_model(client) in {"gpt-4o", "claude-3-5-sonnet"}


def test_streaming_with_polling_fallback_initializes_and_sees_a_change(mock_ld, report):
    client = fdv2_client(mock_ld.url, datasystem.default())
    try:
        assert_seeded_data(client)
        assert running(client, StreamingDataSource)
        assert wait_for(lambda: streams(mock_ld), lambda n: n == (1, 1), timeout=5) == (1, 1)
        assert push_change_and_time(mock_ld, client, report, "stream") == "gpt-4.1"
        assert client.variation_detail("ai-propagation", PREMIUM, None).variation_index == 3
        assert client.data_source_status_provider.status.state == DataSourceState.VALID
    finally:
        client.close()


def test_polling_only_initializes_and_sees_a_change(mock_ld, report):
    polling = datasystem.polling_ds_builder().poll_interval(FAST_POLL_S)
    system = datasystem.custom().synchronizers(polling).fdv1_compatible_synchronizer(
        datasystem.fdv1_fallback_ds_builder())
    client = fdv2_client(mock_ld.url, system)
    try:
        assert_seeded_data(client)
        assert running(client, PollingDataSource)
        assert streams(mock_ld) == (0, 0)
        assert push_change_and_time(mock_ld, client, report, "poll") == "gpt-4.1"
    finally:
        client.close()


class RestartableMockLd(MockLd):
    """A mock-ld with durable `--state`, started on a given port (0 picks one), so that a
    second one can take over the first one's address and data."""

    def __init__(self, tmp_path, state_dir, port=0):  # pylint: disable=super-init-not-called
        binary = Path(os.environ.get("MOCK_LD_BIN", REPO / "target/debug/mock-ld"))
        self.log_path = tmp_path / f"mock-ld-{port}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{port}", "--state", str(state_dir),
             "--sdk-key", SDK_KEY],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().strip() if ready else ""
        prefix = "mock-ld listening on "
        if not line.startswith(prefix):
            self.stop()
            pytest.fail(f"mock-ld did not start (first line {line!r}); log: {self.log_path.read_text()}")
        self.url = line[len(prefix):]
        self.port = int(self.url.rsplit(":", 1)[1])


def flag_serving(key, value):
    return {"key": key, "on": True, "variations": [value], "fallthrough": {"variation": 0}, "offVariation": 0}


def test_streaming_recovers_after_mock_ld_restarts(tmp_path, report):
    state = tmp_path / "state"
    first = RestartableMockLd(tmp_path, state)
    first.put_flag(flag_serving("durable", "before"))
    first.put_flag(flag_serving("kept", "from before the restart"))
    client = fdv2_client(first.url, datasystem.streaming())
    second = None
    try:
        someone = Context.create("someone")
        assert client.is_initialized()
        assert client.variation("durable", someone, "default") == "before"
        first.stop()
        second = RestartableMockLd(tmp_path, state, port=first.port)
        # The stream reconnects with a basis from the previous process, gets a full
        # transfer, and then a change made after the restart.
        start = time.monotonic()
        second.put_flag(flag_serving("durable", "after"))
        served = wait_for(lambda: client.variation("durable", someone, "default"),
                          lambda v: v == "after", timeout=PROPAGATION_S + 5, interval=0.01)
        report(f"python fdv2 reconnect after restart: {(time.monotonic() - start) * 1000:.0f} ms")
        assert served == "after", f"still {served!r} after the restart"
        # The full transfer after the restart carried the data --state kept.
        assert client.variation("kept", someone, "default") == "from before the restart"
        assert streams(second) == (1, 1)
        assert running(client, StreamingDataSource)
        # Live changes flow again on the new stream.
        second.put_flag(flag_serving("durable", "again"))
        assert wait_for(lambda: client.variation("durable", someone, "default"),
                        lambda v: v == "again", timeout=PROPAGATION_S, interval=0.001) == "again"
    finally:
        client.close()
        if second is not None:
            second.stop()


def test_fallback_directive_switches_to_fdv1_and_still_gets_data(tmp_path, report):
    server = MockLd(tmp_path, extra_args=("--fdv2", "off"))
    fallback = datasystem.fdv1_fallback_ds_builder().poll_interval(FAST_POLL_S)
    system = datasystem.custom().synchronizers(datasystem.streaming_ds_builder()) \
        .fdv1_compatible_synchronizer(fallback)
    client = fdv2_client(server.url, system)
    try:
        assert client.is_initialized()
        # Switched for good to the FDv1 fallback: polling /sdk/latest-all, not the FDv2 stream.
        assert running(client, PollingDataSource)
        assert streams(server) == (0, 0)
        assert served_model(client) in {"gpt-4o", "claude-3-5-sonnet"}
        assert push_change_and_time(server, client, report, "fdv1 fallback") == "gpt-4.1"
    finally:
        client.close()
        server.stop()
