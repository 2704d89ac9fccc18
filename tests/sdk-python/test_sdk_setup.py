"""README's "Pointing an SDK at mock-ld" runs as written: each example in examples/ (Python
and Node with FDv1 and FDv2, Rust with FDv1) is started against a mock-ld seeded with
scenarios/demo-data.yaml, prints the model QA's target is served, and its tracker events or
evaluation summary arrive; README shows each file verbatim."""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, SDK_KEY, ENV, MockLd, wait_for

EXAMPLES = REPO / "examples"
SERVED = "support-assistant for qa-alice: claude-3-5-sonnet (anthropic)"
SETUP_FILES = ["sdk-setup/python_sdk.py", "sdk-setup/node_sdk.mjs", "sdk_setup.rs"]


@pytest.fixture
def demo_ld(tmp_path, monkeypatch):
    # Its debug log says which protocol each SDK connected with.
    monkeypatch.setenv("RUST_LOG", "mock_ld=debug")
    server = MockLd(tmp_path, extra_args=["--data", f"{ENV}={REPO / 'scenarios/demo-data.yaml'}"])
    yield server
    server.stop()


def run_example(command, mock_ld, cwd=EXAMPLES):
    env = {**os.environ, "MOCK_LD_URL": mock_ld.url, "MOCK_LD_SDK_KEY": SDK_KEY}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr}"
    assert done.stdout.strip() == SERVED, done.stdout
    return done


def assert_protocol(mock_ld, data_system):
    """The SDK used the data system it was asked for: FDv2's poll or stream, or FDv1."""
    log = mock_ld.log_path.read_text()
    fdv2 = "FDv2 poll" in log or "FDv2 stream connected" in log
    assert fdv2 == (data_system == ["--fdv2"]), log[-2000:]


def assert_tracked(mock_ld):
    """The example's one tracked generation reached mock-ld: one success, 30 tokens."""
    stats = wait_for(mock_ld.stats, lambda s: s["byCustomKey"].get("$ld:ai:generation:success"))
    assert stats["byCustomKey"]["$ld:ai:generation:success"] == 1, stats
    assert stats["customMetricSums"]["$ld:ai:tokens:total"] == 30.0, stats
    assert stats["customMetricSums"]["$ld:ai:duration:total"] == 420.0, stats


@pytest.mark.parametrize("data_system", [[], ["--fdv2"]], ids=["fdv1", "fdv2"])
def test_python_example(demo_ld, data_system):
    run_example([str(REPO / ".venv/bin/python"), "sdk-setup/python_sdk.py", *data_system], demo_ld)
    assert_tracked(demo_ld)
    assert_protocol(demo_ld, data_system)


@pytest.mark.parametrize("data_system", [[], ["--fdv2"]], ids=["fdv1", "fdv2"])
def test_node_example(demo_ld, data_system):
    # The example resolves its packages as a user's project would; the tests' own are the
    # same pinned versions (examples/sdk-setup/package.json).
    modules = EXAMPLES / "sdk-setup/node_modules"
    if not modules.exists():
        modules.symlink_to(REPO / "tests/sdk-node/node_modules")
    run_example(["node", "node_sdk.mjs", *data_system], demo_ld, cwd=EXAMPLES / "sdk-setup")
    assert_tracked(demo_ld)
    assert_protocol(demo_ld, data_system)


def test_rust_example(demo_ld):
    binary = REPO / "target/debug/examples/sdk_setup"
    if not binary.is_file():
        pytest.fail(f"{binary} not built: run `cargo build --example sdk_setup`", pytrace=False)
    run_example([str(binary)], demo_ld)
    stats = wait_for(demo_ld.stats, lambda s: s["byKind"].get("summary"))
    assert stats["byKind"].get("summary") == 1, stats


def test_readme_shows_each_example_verbatim():
    readme = (REPO / "README.md").read_text()
    for name in SETUP_FILES:
        text = (EXAMPLES / name).read_text()
        assert text in readme, f"README.md does not show examples/{name} as it is"
