"""mock-ld's REST API v2 driven through LaunchDarkly's generated Python client
(`launchdarkly-api`, pydantic models that validate every answer): projects, environments,
model configs, AI Configs, their variations and targeting (variation `_id`s and the index forms
LaunchDarkly's agent skills send), segments by semantic patch, and the typed errors. Then the
real Python SDK and AI SDK check what targeting serves: the model `completion_config` returns
for targets, segment members, a multi-context rule, a 60/40 premium rollout, a country rule,
and the fallthrough after `replaceRules []`."""

from collections import Counter

import launchdarkly_api as ld_api
import pytest
from conftest import (SEED_FLAGS, VARIATIONS, MockLd, RestApi, api_error, chi_square_p, make_client,
                      wait_for)
from launchdarkly_api.exceptions import (BadRequestException, ConflictException, ForbiddenException,
                                         NotFoundException, UnauthorizedException)
from ldai.client import LDAIClient
from ldclient import Context

PROJECT, CONFIG = "py-shop", "support-assistant"
PREMIUM = 20_000
MODELS = {  # variation key -> (modelConfigKey, model name the SDK must return)
    "standard": ("OpenAI.gpt-4o-mini", "gpt-4o-mini"),
    "premium-a": ("OpenAI.gpt-4o", "gpt-4o"),
    "premium-b": ("Anthropic.claude-3-5-sonnet", "claude-3-5-sonnet"),
    "enterprise": ("OpenAI.o1", "o1"),
    "eu": ("Mistral.mistral-large", "mistral-large-latest"),
}
HELP = ld_api.Message(role="system", content="You help {{ldctx.key}}.")


def set_up(api):
    """Project, model config, AI Config with variations, segment; returns the test SDK key."""
    project = api.projects.post_project(ld_api.ProjectPost(key=PROJECT, name="Python shop"))
    assert [e.key for e in project.environments] == ["production", "test"]
    sdk_key = next(e.api_key for e in project.environments if e.key == "test")
    model = api.ai.post_model_config(PROJECT, ld_api.ModelConfigPost(
        key="Mistral.mistral-large", id="mistral-large-latest", name="Mistral Large", provider="Mistral",
        costPerInputToken=2e-6, costPerOutputToken=6e-6, costPerCachedInputToken=5e-7))
    assert (model.id, model.version, model.cost_per_output_token, model.cost_per_cached_input_token) == \
        ("mistral-large-latest", 1, 6e-6, 5e-7)
    config = api.ai.post_ai_config(PROJECT, ld_api.AIConfigPost(key=CONFIG, name="Support", mode="completion"))
    assert (config.key, config.version, config.variations) == (CONFIG, 1, [])
    for key, (model_config, model) in MODELS.items():
        params = {"parameters": {"temperature": 0.2, "maxTokens": 256}}
        if key != "eu":  # eu names its model through the model config's id
            params["modelName"] = model
        variation = api.ai.post_ai_config_variation(PROJECT, CONFIG, ld_api.AIConfigVariationPost(
            key=key, name=key.title(), description=f"{key} tier", modelConfigKey=model_config,
            messages=[HELP], model=params))
        assert (variation.key, variation.version, variation.description) == (key, 1, f"{key} tier")
    segment = api.segments.post_segment(PROJECT, "test", ld_api.SegmentBody(key="beta-testers", name="Beta testers"))
    assert (segment.key, segment.included) == ("beta-testers", [])
    segment = api.patch_segment(PROJECT, "test", "beta-testers", [
        {"kind": "addIncludedTargets", "contextKind": "user", "values": ["beta-1", "beta-2"]}])
    assert segment.included == ["beta-1", "beta-2"]
    return sdk_key


def targeting_patch(api, instructions, project=PROJECT, config=CONFIG):
    return api.ai.patch_ai_config_targeting(project, config, ld_api.AIConfigTargetingPatch(
        environmentKey="test", comment="rollout plan", instructions=instructions))


def set_targeting(api):
    ids = api.variation_ids(PROJECT, CONFIG)
    order = [v.id for v in api.ai.get_ai_config_targeting(PROJECT, CONFIG).variations]
    index = {key: order.index(variation_id) for key, variation_id in ids.items()}
    targeting = targeting_patch(api, [
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["standard"]},
        # The targeting skill's target_individuals sends an index, not an _id.
        {"kind": "addTargets", "variation": index["premium-b"], "contextKind": "user", "values": ["qa-1", "qa-2"]},
        {"kind": "addTargets", "variationId": ids["enterprise"], "contextKind": "organization", "values": ["org-vip"]},
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
    test = targeting.environments["test"]
    assert test.fallthrough.variation == index["standard"]
    assert [(t.context_kind, t.values, t.variation) for t in test.targets] == \
        [("user", ["qa-1", "qa-2"], index["premium-b"])], "a target's kind is the kind targeted"
    assert ("organization", ["org-vip"], index["enterprise"]) in \
        [(t.context_kind, t.values, t.variation) for t in test.context_targets]
    assert [[c.attribute for c in rule.clauses] for rule in test.rules] == \
        [["segmentMatch"], ["role", "plan"], ["tier"], ["country"]]
    assert all(c.id for rule in test.rules for c in rule.clauses), "clauses carry their ids"
    assert targeting.environments["production"].rules == [], "other environments untouched"
    descriptions = {v.name: v.description for v in targeting.variations}
    assert descriptions == {"Disabled": "", **{k.title(): f"{k} tier" for k in MODELS}}


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
    api = RestApi(mock_ld.url)
    sdk_key = set_up(api)
    set_targeting(api)

    client = make_client(mock_ld.url, sdk_key=sdk_key)
    try:
        assert client.is_initialized(), "the new project's SDK key must stream at once"
        ai = LDAIClient(client)
        config = ai.completion_config(CONFIG, user("qa-1", tier="premium"))
        assert (config.model.name, config.provider.name) == ("claude-3-5-sonnet", "Anthropic"), "target"
        assert config.messages[0].content == "You help qa-1."
        vip = Context.builder("org-vip").kind("organization").build()
        assert model_of(ai, vip) == "o1", "organization target"
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

        before = api.ai.get_ai_config_targeting(PROJECT, CONFIG)
        after = targeting_patch(api, [{"kind": "replaceRules", "rules": []}])
        assert after.environments["test"].rules == []
        assert after.version > before.version
        assert after.environments["test"].version > before.environments["test"].version
        assert after.environments["test"].last_modified >= before.environments["test"].last_modified
        premium = user("premium-0", tier="premium")
        assert wait_for(lambda: model_of(ai, premium), lambda m: m == "gpt-4o-mini", timeout=5, interval=0.01) \
            == "gpt-4o-mini", "replaceRules [] did not reach the SDK"
        for context in [user("beta-2"), admin_of("enterprise"), user("u-fr", country="FR")]:
            assert model_of(ai, context) == "gpt-4o-mini"
        assert model_of(ai, user("qa-1")) == "claude-3-5-sonnet", "targets are not rules"
    finally:
        client.close()


def test_refused_changes_explain_themselves(mock_ld):
    api = RestApi(mock_ld.url)
    set_up(api)
    ids = api.variation_ids(PROJECT, CONFIG)
    error = api_error(lambda: targeting_patch(api, [
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["standard"]},
        {"kind": "addRule", "clauses": [], "rolloutWeights": {ids["premium-a"]: 60000, ids["premium-b"]: 30000}},
    ]), 400)
    assert (error.code, error.message) == \
        ("invalid_request", "instructions[1] (addRule): rolloutWeights sum to 90000, not 100000")
    fallthrough = api.ai.get_ai_config_targeting(PROJECT, CONFIG).environments["test"].fallthrough
    assert (fallthrough.variation, fallthrough.rollout) == (0, None), "nothing was applied"
    assert api_error(lambda: api.ai.post_ai_config(PROJECT, ld_api.AIConfigPost(key=CONFIG, name="x")),
                     409).code == "conflict"
    assert api_error(lambda: RestApi(mock_ld.url, "api-wrong").projects.get_projects(), 401).code == "unauthorized"


def test_every_resource_reads_back_typed_and_deletes(mock_ld):
    """The reads, updates and deletes the scenario above does not make, each answer typed."""
    api = RestApi(mock_ld.url)
    set_up(api)

    projects = api.projects.get_projects(expand="environments")
    assert [p.key for p in projects.items] == ["default", PROJECT]
    project = api.projects.get_project(PROJECT, expand="environments")
    assert (project.name, project.links["self"].href) == ("Python shop", f"/api/v2/projects/{PROJECT}")
    assert [e.key for e in project.environments.items] == ["production", "test"]

    staging = api.environments.post_environment(PROJECT, ld_api.EnvironmentPost(
        key="staging", name="Staging", color="00AA00", requireComments=True, tags=["eu"]))
    assert (staging.name, staging.color, staging.require_comments, staging.tags) == ("Staging", "00AA00", True, ["eu"])
    assert staging.api_key.startswith("sdk-") and staging.mobile_key.startswith("mob-") and staging.id
    assert api.environments.get_environment(PROJECT, "staging").api_key == staging.api_key
    listed = api.environments.get_environments_by_project(PROJECT)
    assert ([e.key for e in listed.items], listed.total_count) == (["production", "staging", "test"], 3)
    staging_targeting = api.ai.get_ai_config_targeting(PROJECT, CONFIG).environments["staging"]
    assert (staging_targeting.environment_name, staging_targeting.fallthrough.variation) == ("Staging", 0), \
        "a new environment serves every AI Config, its disabled variation first"

    models = api.ai.list_model_configs(PROJECT)
    assert [(m.key, m.provider, m.var_global, m.is_restricted) for m in models] == \
        [("Mistral.mistral-large", "Mistral", False, False)]
    assert api.ai.get_model_config(PROJECT, "Mistral.mistral-large").name == "Mistral Large"

    configs = api.ai.get_ai_configs(PROJECT)
    assert ([c.key for c in configs.items], configs.total_count) == ([CONFIG], 1)
    patched = api.ai.patch_ai_config(PROJECT, CONFIG, ld_api.AIConfigPatch(
        name="Support v2", description="answers customers", tags=["support"]))
    assert (patched.name, patched.description, patched.tags) == ("Support v2", "answers customers", ["support"])
    assert patched.version > configs.items[0].version and patched.updated_at >= patched.created_at
    assert [v.key for v in api.ai.get_ai_config(PROJECT, CONFIG).variations] == list(MODELS)

    edited = api.ai.patch_ai_config_variation(PROJECT, CONFIG, "eu", ld_api.AIConfigVariationPatch(
        description="EU data residency", comment="move to EU"))
    assert (edited.version, edited.description, edited.name) == (2, "EU data residency", "Eu")
    versions = api.ai.get_ai_config_variation(PROJECT, CONFIG, "eu")
    assert ([(v.version, v.description) for v in versions.items], versions.total_count) == \
        ([(2, "EU data residency"), (1, "eu tier")], 2), "every version, newest first"
    assert len({v.id for v in versions.items}) == 1, "a variation keeps its _id across versions"
    api.ai.delete_ai_config_variation(PROJECT, CONFIG, "eu")
    assert "eu" not in [v.key for v in api.ai.get_ai_config(PROJECT, CONFIG).variations]
    api_error(lambda: api.ai.get_ai_config_variation(PROJECT, CONFIG, "eu"), 404)

    segments = api.segments.get_segments(PROJECT, "test")
    assert [(s.key, s.name, s.included) for s in segments.items] == [("beta-testers", "Beta testers", ["beta-1", "beta-2"])]
    segment = api.segments.get_segment(PROJECT, "test", "beta-testers")
    assert segment.version >= 2 and segment.last_modified_date >= segment.creation_date > 0
    mock_ld.admin("PUT", "/environments/test/segments/seeded", json={"key": "seeded", "included": ["a"]})
    seeded = api.segments.get_segment("default", "test", "seeded")
    assert (seeded.name, seeded.included, seeded.creation_date > 0) == ("seeded", ["a"], True), \
        "a segment the API did not create is named by its key and dated when mock-ld started"
    api.segments.delete_segment(PROJECT, "test", "beta-testers")
    assert api.segments.get_segments(PROJECT, "test").items == []

    api.ai.delete_model_config(PROJECT, "Mistral.mistral-large")
    assert api.ai.list_model_configs(PROJECT) == []
    api.ai.delete_ai_config(PROJECT, CONFIG)
    assert api.ai.get_ai_configs(PROJECT).items == []
    api.environments.delete_environment(PROJECT, "staging")
    api_error(lambda: api.environments.get_environment(PROJECT, "staging"), 404)
    api.projects.delete_project(PROJECT)
    assert [p.key for p in api.projects.get_projects().items] == ["default"]


@pytest.fixture
def small_bodies(tmp_path):
    server = MockLd(tmp_path, ["--max-api-body-bytes", "4096"])
    yield server
    server.stop()


def test_errors_are_the_clients_typed_exceptions(small_bodies):
    api = RestApi(small_bodies.url)
    cases = [
        (lambda: api.ai.post_ai_config("default", ld_api.AIConfigPost(key="bad key", name="x")),
         BadRequestException, 400, "invalid_request", "invalid AI Config key"),
        (lambda: RestApi(small_bodies.url, "api-wrong").ai.get_ai_configs("default"),
         UnauthorizedException, 401, "unauthorized", "invalid access token"),
        (lambda: api.ai.get_ai_config("default", "missing"), NotFoundException, 404, "not_found", "missing"),
        (lambda: api.projects.get_project("nowhere"), NotFoundException, 404, "not_found", "nowhere"),
        (lambda: api.projects.post_project(ld_api.ProjectPost(key="default", name="again")),
         ConflictException, 409, "conflict", "already exists"),
        (lambda: api.ai.post_ai_config("default", ld_api.AIConfigPost(key="big", name="x" * 10_000)),
         ld_api.ApiException, 413, "payload_too_large", "4096 bytes"),
    ]
    for call, kind, status, code, needle in cases:
        with pytest.raises(kind) as info:
            call()
        assert info.value.status == status
        error = api_error(call, status)
        assert (error.code, needle in error.message) == (code, True), error


def test_a_role_without_the_action_gets_a_typed_403(tmp_path):
    from conftest import REPO
    server = MockLd(tmp_path, ["--roles", str(REPO / "mock-ld/examples/roles.yaml")])
    try:
        auditor = RestApi(server.url, "api-auditor")
        with pytest.raises(ForbiddenException) as info:
            auditor.ai.post_ai_config("default", ld_api.AIConfigPost(key="nope", name="Nope"))
        error = info.value.data
        assert (error.code, "createAIConfig" in error.message) == ("forbidden", True), error
        listed = [c.key for c in auditor.ai.get_ai_configs("default").items]
        assert sorted(listed) == sorted(SEED_FLAGS), "readers still read; nothing was created"
    finally:
        server.stop()


def test_seeded_ai_config_flags_are_ai_configs(mock_ld, ld_client):
    """The `--data` file's AI Config flags are listed as AI Configs with their variations,
    read back from what SDKs are served; a targeting change through the API then keeps the
    seeded flag's variation indices (it has no disabled variation to shift them)."""
    api = RestApi(mock_ld.url)
    assert sorted(c.key for c in api.ai.get_ai_configs("default").items) == sorted(SEED_FLAGS)
    config = api.ai.get_ai_config("default", "ai-split")
    seeded = [(v["_ldMeta"]["variationKey"], v["model"]["name"]) for v in VARIATIONS]
    assert [(v.key, v.model["modelName"]) for v in config.variations] == seeded
    assert {v.version for v in config.variations} == {1, 2, 3}

    premium_b = api.variation_ids("default", "ai-split")["premium-b"]
    targeting_patch(api, [{"kind": "updateFallthroughVariationOrRollout", "variationId": premium_b}],
                    project="default", config="ai-split")
    ctx = Context.builder("free-user").set("tier", "free").build()
    served = wait_for(lambda: ld_client.variation_detail("ai-split", ctx, None),
                      lambda d: d.variation_index == 2)
    assert served.variation_index == 2, "the seeded flag's index of premium-b"
    assert served.value["model"]["name"] == "claude-3-5-sonnet"
