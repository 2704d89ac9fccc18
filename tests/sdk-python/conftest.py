"""Shared fixtures for the Python SDK tests: a private mock-ld per test, an SDK client
pointed at it, the AI-Config-shaped seed flags, LaunchDarkly's generated REST client
(`launchdarkly-api`) pointed at it, and small helpers (admin API, polling, chi-square)."""

import json
import math
import os
import select
import subprocess
import time
from pathlib import Path

import launchdarkly_api as ld_api
import pytest
import requests
from launchdarkly_api.exceptions import ApiException
from ldclient.client import LDClient
from ldclient.config import Config

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

REPO = Path(__file__).resolve().parents[2]
SDK_KEY = "sdk-python-test"
ENV = "test"
ADMIN_TOKEN = "api-default-admin"
SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


def ai_variation(variation_key, model, provider, version):
    """One AI Config variation, in the shape LaunchDarkly stores it (spec §7.1)."""
    return {
        "_ldMeta": {"enabled": True, "variationKey": variation_key, "version": version, "mode": "completion"},
        "model": {"name": model, "parameters": {"temperature": 0.2, "maxTokens": 256}},
        "provider": {"name": provider},
        "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}],
    }


VARIATIONS = [
    ai_variation("standard", "gpt-4o-mini", "openai", 1),
    ai_variation("premium-a", "gpt-4o", "openai", 2),
    ai_variation("premium-b", "claude-3-5-sonnet", "anthropic", 3),
]
MODEL_TO_INDEX = {v["model"]["name"]: i for i, v in enumerate(VARIATIONS)}


def ai_flag(key, premium_serves=None):
    """An AI Config flag: tier in [premium] gets a 60/40 rollout of variations 1 and 2
    (or `premium_serves`, a single variation), everyone else falls through to 0."""
    serve = premium_serves or {"rollout": {"variations": [{"variation": 1, "weight": 60000},
                                                          {"variation": 2, "weight": 40000}]}}
    return {
        "key": key, "version": 1, "on": True, "salt": f"{key}-salt", "offVariation": 0,
        "variations": VARIATIONS,
        "rules": [{"id": "premium", "trackEvents": False,
                   "clauses": [{"attribute": "tier", "op": "in", "values": ["premium"]}], **serve}],
        "fallthrough": {"variation": 0},
    }


SEED_FLAGS = ["ai-split", "ai-tracked", "ai-propagation"]


class MockLd:
    """A running mock-ld process and its admin API."""

    def __init__(self, tmp_path, extra_args=()):
        binary = Path(os.environ.get("MOCK_LD_BIN", REPO / "target/debug/mock-ld"))
        if not binary.is_file():
            pytest.fail(f"mock-ld binary not found at {binary}: run `cargo build -p mock-ld` "
                        "(or set MOCK_LD_BIN)", pytrace=False)
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"flags": {k: ai_flag(k) for k in SEED_FLAGS}}))
        self.log_path = tmp_path / "mock-ld.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--data", str(seed), "--sdk-key", SDK_KEY, *extra_args],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().strip() if ready else ""
        prefix = "mock-ld listening on "
        if not line.startswith(prefix):
            self.stop()
            pytest.fail(f"mock-ld did not start (first line {line!r}); log: {self.log_path.read_text()}")
        self.url = line[len(prefix):]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()

    def admin(self, method, path, **kw):
        resp = requests.request(method, f"{self.url}/admin{path}", timeout=10, **kw)
        assert resp.ok, f"{method} /admin{path} -> {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def put_flag(self, flag):
        return self.admin("PUT", f"/environments/{ENV}/flags/{flag['key']}", json=flag)

    def stats(self):
        return self.admin("GET", "/events/stats", params={"env": ENV})

    def custom_events(self, key):
        items = self.admin("GET", "/events", params={"env": ENV, "kind": "custom", "key": key})["items"]
        return [item["event"] for item in items]


class RestApi:
    """LaunchDarkly's generated REST client at mock-ld, with one access token. Its pydantic
    models validate every answer, so a call returns only if the answer carries every field
    LaunchDarkly's OpenAPI document requires."""

    def __init__(self, url, token=ADMIN_TOKEN):
        config = ld_api.Configuration(host=url)
        config.api_key["ApiKey"] = token  # sent raw in Authorization, as LaunchDarkly expects
        client = ld_api.ApiClient(config)
        client.set_default_header("LD-API-Version", "beta")
        self.ai = ld_api.AgentControlApi(client)  # AI Configs (the TypeScript client's AIConfigsBetaApi)
        self.projects = ld_api.ProjectsApi(client)
        self.environments = ld_api.EnvironmentsApi(client)
        self.segments = ld_api.SegmentsApi(client)
        self.audit = ld_api.AuditLogApi(client)

    def variation_ids(self, project, config):
        """Variation `_id`s by key, for instructions' `variationId`: the config lists its
        variations with both (targeting names them by `_id` and `name` only)."""
        return {v.key: v.id for v in self.ai.get_ai_config(project, config).variations}

    def patch_segment(self, project, env, key, instructions, comment=None):
        """A segment semantic patch, answered as a typed `UserSegment`. The client's
        `patch_segment` types its body as a JSON Patch (`PatchWithComment`), so the semantic
        patch goes through the same method's serializer with the semantic-patch content type,
        and the answer through the client's own deserializer."""
        body = {"environmentKey": env, "instructions": instructions}
        if comment is not None:
            body["comment"] = comment
        api = self.segments
        request = api._patch_segment_serialize(
            project_key=project, environment_key=env, segment_key=key, patch_with_comment=body,
            dry_run=None, _request_auth=None, _content_type=SEMANTIC_PATCH, _headers=None, _host_index=0)
        response = api.api_client.call_api(*request)
        response.read()
        types = {"200": "UserSegment", "400": "InvalidRequestErrorRep", "401": "UnauthorizedErrorRep",
                 "403": "ForbiddenErrorRep", "404": "NotFoundErrorRep"}
        return api.api_client.response_deserialize(response, types).data


def api_error(call, status):
    """Runs `call`, which must fail with `status`; returns the error body typed as the
    client's `Error` (`{code, message}`), whether or not the operation declares that status."""
    try:
        call()
    except ApiException as error:
        assert error.status == status, f"expected {status}, got {error.status}: {error.body}"
        data = error.data if error.data is not None else ld_api.Error.from_json(error.body)
        assert data.code and data.message, error.body
        return data
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def wait_for(fetch, done, timeout=15.0, interval=0.1):
    """Calls fetch() until done(value) or the timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def chi_square_p(observed, expected):
    """Chi-square goodness of fit for two categories (1 degree of freedom):
    p = P(X > chi2) = erfc(sqrt(chi2 / 2))."""
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def make_client(url, sdk_key=SDK_KEY, start_wait=5.0):
    """An SDK client with streaming (the default), polling and events all at mock-ld."""
    config = Config(sdk_key, base_uri=url, stream_uri=url, events_uri=url,
                    events_max_pending=100_000)
    return LDClient(config, start_wait=start_wait)


@pytest.fixture
def report(capsys):
    """Prints a result line even when pytest captures output (the counts, p-values and
    propagation times are worth seeing on every run)."""
    def emit(line):
        with capsys.disabled():
            print(f"\n{line}")
    return emit


@pytest.fixture
def mock_ld(tmp_path):
    server = MockLd(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def ld_client(mock_ld):
    client = make_client(mock_ld.url)
    assert client.is_initialized(), f"SDK did not initialize against {mock_ld.url}"
    yield client
    client.close()
