"""A rollout plan's governance rehearsed against mock-ld with `requests` and the example roles
file (mock-ld/examples/roles.yaml): a developer builds an AI Config and rolls it out in test
but is refused in production; the release manager rolls it out in production; the audit log
shows who did what, with their comments and the targeting before and after; the real Python
SDK serves production what the release manager chose."""

import pytest
import requests
from conftest import REPO, MockLd, make_client
from ldclient import Context

ROLES = REPO / "mock-ld/examples/roles.yaml"
CONFIG = "support"
TARGETING = f"/projects/default/ai-configs/{CONFIG}/targeting"
SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


@pytest.fixture
def governed(tmp_path):
    server = MockLd(tmp_path, ["--roles", str(ROLES)])
    yield server
    server.stop()


class Token:
    """The REST calls one token holder makes."""

    def __init__(self, url, token):
        self.base = f"{url}/api/v2"
        self.headers = {"Authorization": token, "LD-API-Version": "beta"}

    def call(self, method, path, expect, body=None, params=None, content_type="application/json"):
        resp = requests.request(method, f"{self.base}{path}", json=body, params=params, timeout=10,
                                headers={**self.headers, "Content-Type": content_type})
        assert resp.status_code == expect, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def serve(self, env, variation_id, comment, expect=200):
        body = {"environmentKey": env, "comment": comment, "instructions": [
            {"kind": "updateFallthroughVariationOrRollout", "variationId": variation_id}]}
        return self.call("PATCH", TARGETING, expect, body, content_type=SEMANTIC_PATCH)


def build_config(developer):
    """The developer's AI Config with variations `standard` and `premium`; their `_id`s."""
    developer.call("POST", "/projects/default/ai-configs", 201,
                   {"key": CONFIG, "name": "Support", "mode": "completion", "comment": "new assistant"})
    for key, model in [("standard", "gpt-4o-mini"), ("premium", "gpt-4o")]:
        developer.call("POST", f"/projects/default/ai-configs/{CONFIG}/variations", 201,
                       {"key": key, "name": key.title(), "model": {"modelName": model},
                        "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}]})
    targeting = developer.call("GET", TARGETING, 200)
    return {v["key"]: v["_id"] for v in targeting["variations"]}


def test_developers_write_test_and_the_release_manager_ships_production(governed):
    developer = Token(governed.url, "api-developer")
    release_manager = Token(governed.url, "api-release-manager")
    auditor = Token(governed.url, "api-auditor")
    ids = build_config(developer)

    developer.serve("test", ids["premium"], "try premium in test")
    refused = developer.serve("production", ids["premium"], "straight to prod", expect=403)
    assert refused["code"] == "forbidden"
    assert "updateAIConfigTargeting" in refused["message"]
    assert f"proj/default:env/production:aiconfig/{CONFIG}" in refused["message"]
    auditor.serve("production", ids["premium"], "readers only read", expect=403)
    targeting = auditor.call("GET", TARGETING, 200)
    assert targeting["environments"]["production"]["fallthrough"] == {"variation": 0}, "unchanged"

    release_manager.serve("production", ids["premium"], "ship premium after sign-off in test")
    release_manager.call("POST", "/projects/default/ai-configs", 403, {"key": "other", "name": "Other"})

    log = auditor.call("GET", "/auditlog", 200, params={"spec": f"proj/*:env/*:aiconfig/{CONFIG}"})
    who = [(e["token"]["name"], e["target"]["resources"][0].split(":")[1], e["comment"]) for e in log["items"]]
    assert who == [
        ("release-manager", "env/production", "ship premium after sign-off in test"),
        ("developer", "env/test", "try premium in test"),
    ], "newest first, refused writes not logged"
    shipped = auditor.call("GET", f"/auditlog/{log['items'][0]['_id']}", 200)
    assert shipped["accesses"] == [{"action": "updateAIConfigTargeting",
                                    "resource": f"proj/default:env/production:aiconfig/{CONFIG}"}]
    assert shipped["delta"]["before"]["fallthrough"] == {"variation": 0}
    assert shipped["delta"]["after"]["fallthrough"] == {"variation": 2}
    created = auditor.call("GET", "/auditlog", 200, params={"q": "new assistant"})["items"]
    assert [(e["token"]["name"], e["accesses"][0]["action"]) for e in created] == [("developer", "createAIConfig")]

    client = make_client(governed.url, sdk_key="sdk-default-production")
    try:
        assert client.is_initialized()
        served = client.variation(CONFIG, Context.builder("customer-1").build(), {})
        assert served["_ldMeta"]["variationKey"] == "premium"
    finally:
        client.close()
