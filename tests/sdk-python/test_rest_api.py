"""mock-ld's REST API v2 driven with `requests` the way LaunchDarkly's docs and agent skills
script it (raw token, `LD-API-Version: beta`, semantic-patch content type, variation `_id`s
looked up by key, index forms), then checked with the real Python SDK and AI SDK: the model
`completion_config` returns for targets, segment members, a multi-context rule, a 60/40
premium rollout, a country rule, and the fallthrough after `replaceRules []`."""

from collections import Counter

import requests
from conftest import chi_square_p, make_client, wait_for
from ldai.client import LDAIClient
from ldclient import Context

TOKEN = "api-default-admin"
PROJECT, CONFIG = "py-shop", "support-assistant"
PREMIUM = 20_000
MODELS = {  # variation key -> (modelConfigKey, model name the SDK must return)
    "standard": ("OpenAI.gpt-4o-mini", "gpt-4o-mini"),
    "premium-a": ("OpenAI.gpt-4o", "gpt-4o"),
    "premium-b": ("Anthropic.claude-3-5-sonnet", "claude-3-5-sonnet"),
    "enterprise": ("OpenAI.o1", "o1"),
    "eu": ("Mistral.mistral-large", "mistral-large-latest"),
}


class LaunchDarklyApi:
    """The REST calls of LaunchDarkly's scripts, at mock-ld's base URL."""

    def __init__(self, url):
        self.base = f"{url}/api/v2"
        self.headers = {"Authorization": TOKEN, "LD-API-Version": "beta", "Content-Type": "application/json"}

    def call(self, method, path, expect, body=None, headers=None):
        resp = requests.request(method, f"{self.base}{path}", json=body, timeout=10,
                                headers={**self.headers, **(headers or {})})
        assert resp.status_code == expect, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def targeting_patch(self, instructions, expect=200):
        return self.call("PATCH", f"/projects/{PROJECT}/ai-configs/{CONFIG}/targeting", expect,
                         {"environmentKey": "test", "comment": "rollout plan", "instructions": instructions},
                         {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"})

    def variation_ids(self):
        """Variation `_id`s by key, read from targeting as the targeting skill does."""
        targeting = self.call("GET", f"/projects/{PROJECT}/ai-configs/{CONFIG}/targeting", 200)
        return {v["key"]: v["_id"] for v in targeting["variations"]}


def set_up(api):
    """Project, model config, AI Config with variations, segment; returns the test SDK key."""
    project = api.call("POST", "/projects", 201, {"key": PROJECT, "name": "Python shop"})
    sdk_key = next(e["apiKey"] for e in project["environments"] if e["key"] == "test")
    api.call("POST", f"/projects/{PROJECT}/ai-model-configs", 200,
             {"key": "Mistral.mistral-large", "id": "mistral-large-latest", "name": "Mistral Large",
              "provider": "Mistral", "costPerInputToken": 2e-6, "costPerOutputToken": 6e-6})
    api.call("POST", f"/projects/{PROJECT}/ai-configs", 201, {"key": CONFIG, "name": "Support", "mode": "completion"})
    for key, (model_config, model) in MODELS.items():
        body = {"key": key, "name": key.title(), "modelConfigKey": model_config,
                "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}],
                "model": {"parameters": {"temperature": 0.2, "maxTokens": 256}}}
        if key != "eu":  # eu names its model through the model config's id
            body["model"]["modelName"] = model
        api.call("POST", f"/projects/{PROJECT}/ai-configs/{CONFIG}/variations", 201, body)
    api.call("POST", f"/segments/{PROJECT}/test", 201, {"key": "beta-testers", "name": "Beta testers"})
    api.call("PATCH", f"/segments/{PROJECT}/test/beta-testers", 200,
             {"environmentKey": "test", "instructions": [
                 {"kind": "addIncludedTargets", "contextKind": "user", "values": ["beta-1", "beta-2"]}]},
             {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"})
    return sdk_key


def set_targeting(api):
    ids = api.variation_ids()
    index = {key: i for i, key in enumerate(ids)}
    api.targeting_patch([
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["standard"]},
        # The targeting skill's target_individuals sends an index, not an _id.
        {"kind": "addTargets", "variation": index["premium-b"], "contextKind": "user", "values": ["qa-1", "qa-2"]},
        # ... and target_segment a segmentMatch clause with an empty contextKind.
        {"kind": "addRule", "variation": index["premium-a"], "clauses": [
            {"attribute": "segmentMatch", "contextKind": "", "op": "segmentMatch", "values": ["beta-testers"], "negate": False}]},
        {"kind": "addRule", "variationId": ids["enterprise"], "description": "enterprise admins", "clauses": [
            {"contextKind": "user", "attribute": "role", "op": "in", "values": ["admin"], "negate": False},
            {"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["enterprise"], "negate": False}]},
        {"kind": "addRule", "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]}],
         "percentageRolloutConfig": {"contextKind": "user", "bucketBy": "key", "variations": [
             {"variation": index["premium-a"], "weight": 60000}, {"variation": index["premium-b"], "weight": 40000}]}},
        {"kind": "addRule", "variationId": ids["eu"], "clauses": [
            {"contextKind": "user", "attribute": "country", "op": "in", "values": ["FR", "DE"]}]},
    ])


def user(key, **attributes):
    builder = Context.builder(key)
    for name, value in attributes.items():
        builder.set(name, value)
    return builder.build()


def admin_of(plan):
    org = Context.builder("org-1").kind("organization").set("plan", plan).build()
    return Context.create_multi(user("alice", role="admin"), org)


def model_of(ai, context):
    config = ai.completion_config(CONFIG, context)
    assert config.enabled, f"disabled for {context.key}"
    return config.model.name


def test_rest_targeting_is_what_the_python_ai_sdk_serves(mock_ld, report):
    api = LaunchDarklyApi(mock_ld.url)
    sdk_key = set_up(api)
    set_targeting(api)

    client = make_client(mock_ld.url, sdk_key=sdk_key)
    try:
        assert client.is_initialized(), "the new project's SDK key must stream at once"
        ai = LDAIClient(client)
        config = ai.completion_config(CONFIG, user("qa-1", tier="premium"))
        assert (config.model.name, config.provider.name) == ("claude-3-5-sonnet", "Anthropic"), "target"
        assert config.messages[0].content == "You help qa-1."
        assert model_of(ai, user("beta-2", country="FR")) == "gpt-4o", "segment member"
        assert model_of(ai, admin_of("enterprise")) == "o1", "multi-context rule"
        assert model_of(ai, admin_of("free")) == "gpt-4o-mini", "both contexts must match"
        assert model_of(ai, user("u-fr", country="FR")) == "mistral-large-latest", "country rule"
        assert model_of(ai, user("u-plain")) == "gpt-4o-mini", "fallthrough"

        split = Counter(model_of(ai, user(f"premium-{i}", tier="premium")) for i in range(PREMIUM))
        assert set(split) == {"gpt-4o", "claude-3-5-sonnet"}, split
        chi2, p = chi_square_p([split["gpt-4o"], split["claude-3-5-sonnet"]], [0.6 * PREMIUM, 0.4 * PREMIUM])
        report(f"python REST rollout: gpt-4o={split['gpt-4o']} claude={split['claude-3-5-sonnet']} "
               f"chi2={chi2:.3f} p={p:.4f}")
        assert p > 0.001, f"60/40 rejected: {split}"

        api.targeting_patch([{"kind": "replaceRules", "rules": []}])
        premium = user("premium-0", tier="premium")
        assert wait_for(lambda: model_of(ai, premium), lambda m: m == "gpt-4o-mini", timeout=5, interval=0.01) \
            == "gpt-4o-mini", "replaceRules [] did not reach the SDK"
        for context in [user("beta-2"), admin_of("enterprise"), user("u-fr", country="FR")]:
            assert model_of(ai, context) == "gpt-4o-mini"
        assert model_of(ai, user("qa-1")) == "claude-3-5-sonnet", "targets are not rules"
    finally:
        client.close()


def test_refused_changes_explain_themselves(mock_ld):
    api = LaunchDarklyApi(mock_ld.url)
    set_up(api)
    ids = api.variation_ids()
    error = api.targeting_patch([
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["standard"]},
        {"kind": "addRule", "clauses": [], "rolloutWeights": {ids["premium-a"]: 60000, ids["premium-b"]: 30000}},
    ], expect=400)
    assert error == {"code": "invalid_request",
                     "message": "instructions[1] (addRule): rolloutWeights sum to 90000, not 100000"}
    targeting = api.call("GET", f"/projects/{PROJECT}/ai-configs/{CONFIG}/targeting", 200)
    assert targeting["environments"]["test"]["fallthrough"] == {"variation": 0}, "nothing was applied"
    assert api.call("POST", f"/projects/{PROJECT}/ai-configs", 409, {"key": CONFIG, "name": "x"})["code"] == "conflict"
    resp = requests.get(f"{api.base}/projects", headers={"Authorization": "api-wrong"}, timeout=5)
    assert (resp.status_code, resp.json()["code"]) == (401, "unauthorized")
