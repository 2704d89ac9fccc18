"""The feature-flag REST API and segment patch formats, driven through LaunchDarkly's
generated Python client (`launchdarkly-api`, pydantic models that validate every response),
checked against the real Python server SDK evaluating the same flags.

The generated client sends JSON Patch (`PatchWithComment`) for flags and segments; it has no
model for a semantic patch or a merge patch, so those go through the same client's
transport (`param_serialize` + `call_api`) and their answers are read with its models."""

import json

import launchdarkly_api
import pytest
from launchdarkly_api import (
    ClientSideAvailabilityPost,
    Defaults,
    FeatureFlag,
    FeatureFlagBody,
    FeatureFlagsApi,
    PatchOperation,
    PatchWithComment,
    SegmentBody,
    SegmentsApi,
    UserSegment,
    Variation,
)
from launchdarkly_api.exceptions import BadRequestException, ForbiddenException, NotFoundException
from ldclient import Context

from conftest import ENV, MockLd, make_client, wait_for

PROJECT = "default"
SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"


def client(url, token="api-default-admin"):
    config = launchdarkly_api.Configuration(host=url, api_key={"ApiKey": token})
    return launchdarkly_api.ApiClient(config)


def raw_patch(api, path, body, content_type="application/json"):
    """A PATCH the typed client has no model for, through its own transport; the answer's
    JSON text, for the caller's model to read."""
    method, url, headers, body, _ = api.param_serialize(
        "PATCH", path, header_params={"Content-Type": content_type}, body=body,
        auth_settings=["ApiKey"])
    response = api.call_api(method, url, headers, body)
    response.read()
    text = response.data.decode()
    assert response.status == 200, f"PATCH {path} -> {response.status} {text}"
    return text


def semantic(api, key, instructions, env=ENV):
    body = {"comment": "semantic", "instructions": instructions}
    if env:
        body["environmentKey"] = env
    return FeatureFlag.from_json(raw_patch(api, f"/api/v2/flags/{PROJECT}/{key}", body, SEMANTIC))


def evaluates(ld_client, key, context, expected):
    """Waits for the SDK to evaluate `key` to `expected` (a change arrives by stream)."""
    got = wait_for(lambda: ld_client.variation(key, context, "fallback"), lambda v: v == expected,
                   timeout=5)
    assert got == expected, f"{key} for {context.key}: {got!r}, expected {expected!r}"


def variation_ids(flag):
    return {v.value: v.id for v in flag.variations}


def test_flag_lifecycle_through_the_generated_client_reaches_the_sdk(mock_ld, ld_client):
    api = client(mock_ld.url)
    flags = FeatureFlagsApi(api)
    bob, alice = Context.create("bob"), Context.create("alice")
    premium = Context.builder("carol").set("tier", "premium").build()

    created = flags.post_feature_flag(PROJECT, FeatureFlagBody(
        name="Checkout v2", key="checkout-v2", description="new checkout",
        variations=[Variation(value="a", name="A"), Variation(value="b", name="B", description="bee"),
                    Variation(value="c")],
        defaults=Defaults(on_variation=1, off_variation=0), temporary=False, tags=["team-x"],
        client_side_availability=ClientSideAvailabilityPost(using_environment_id=True,
                                                            using_mobile_key=False)))
    assert (created.key, created.name, created.kind, created.version) == (
        "checkout-v2", "Checkout v2", "multivariate", 1)
    assert [(v.value, v.name, v.description) for v in created.variations] == [
        ("a", "A", None), ("b", "B", "bee"), ("c", None, None)]
    assert all(v.id for v in created.variations)
    assert (created.defaults.on_variation, created.defaults.off_variation) == (1, 0)
    assert created.client_side_availability.using_environment_id is True
    assert (created.temporary, created.tags) == (False, ["team-x"])
    test_env = created.environments[ENV]
    assert (test_env.on, test_env.fallthrough.variation, test_env.off_variation) == (False, 1, 0)
    assert test_env.environment_name == "Test"
    assert set(created.environments) == {"test", "production"}
    evaluates(ld_client, "checkout-v2", bob, "a")  # off: the off variation, pushed live

    # JSON Patch with a comment (the client's PatchWithComment).
    on = flags.patch_feature_flag(PROJECT, "checkout-v2", PatchWithComment(
        comment="launch in test",
        patch=[PatchOperation(op="replace", path="/environments/test/on", value=True),
               PatchOperation(op="replace", path="/description", value="v2 checkout")]))
    assert (on.environments[ENV].on, on.environments["production"].on) == (True, False)
    assert (on.description, on.version, on.environments[ENV].version) == ("v2 checkout", 2, 2)
    evaluates(ld_client, "checkout-v2", bob, "b")

    # Merge patch, as LaunchDarkly documents it, through the client's transport.
    merged = FeatureFlag.from_json(raw_patch(
        api, f"/api/v2/flags/{PROJECT}/checkout-v2",
        {"comment": "rename", "merge": {"name": "Checkout", "tags": ["team-x", "web"]}}))
    assert (merged.name, merged.tags, merged.description) == ("Checkout", ["team-x", "web"], "v2 checkout")

    # Semantic patch: targets, a rule and the fallthrough, in one atomic request.
    ids = variation_ids(merged)
    targeted = semantic(api, "checkout-v2", [
        {"kind": "addTargets", "values": ["alice"], "variationId": ids["c"]},
        {"kind": "addRule", "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in",
                                         "values": ["premium"], "negate": False}],
         "variationId": ids["a"], "description": "premium gets A"},
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["b"]},
    ])
    env = targeted.environments[ENV]
    assert [(t.values, t.variation) for t in env.targets] == [(["alice"], 2)]
    assert [(r.description, r.variation, r.clauses[0].attribute, r.clauses[0].values)
            for r in env.rules] == [("premium gets A", 0, "tier", ["premium"])]
    assert env.rules[0].id and env.rules[0].clauses[0].id
    evaluates(ld_client, "checkout-v2", alice, "c")
    evaluates(ld_client, "checkout-v2", premium, "a")
    evaluates(ld_client, "checkout-v2", bob, "b")

    # Rule clause edits and a prerequisite on another flag (boolean, off in test).
    gate = flags.post_feature_flag(PROJECT, FeatureFlagBody(name="Gate", key="gate"))
    assert (gate.kind, [v.value for v in gate.variations]) == ("boolean", [True, False])
    rule_id = env.rules[0].id
    gated = semantic(api, "checkout-v2", [
        {"kind": "addValuesToClause", "ruleId": rule_id, "clauseId": env.rules[0].clauses[0].id,
         "values": ["gold"]},
        {"kind": "addPrerequisite", "key": "gate", "variationId": variation_ids(gate)[True]},
    ])
    assert gated.environments[ENV].rules[0].clauses[0].values == ["premium", "gold"]
    assert [(p.key, p.variation) for p in gated.environments[ENV].prerequisites] == [("gate", 0)]
    evaluates(ld_client, "checkout-v2", bob, "a")  # the gate is off: prerequisite fails
    semantic(api, "gate", [{"kind": "turnFlagOn"}])
    evaluates(ld_client, "checkout-v2", bob, "b")

    # Flag-level instructions need no environment.
    renamed = semantic(api, "checkout-v2", [{"kind": "updateName", "value": "Checkout 2"},
                                            {"kind": "removeTags", "values": ["web"]}], env=None)
    assert (renamed.name, renamed.tags) == ("Checkout 2", ["team-x"])

    # Variations change in every environment at once: bob's fallthrough now serves "B!".
    revalued = semantic(api, "checkout-v2", [
        {"kind": "updateVariation", "variationId": ids["b"], "value": "B!", "description": "loud"},
        {"kind": "addVariation", "value": "d", "name": "D"},
    ], env=None)
    assert [(v.value, v.description) for v in revalued.variations] == [
        ("a", None), ("B!", "loud"), ("c", None), ("d", None)]
    evaluates(ld_client, "checkout-v2", bob, "B!")

    # Reads: one flag, one environment; the list, in full or summary, filtered.
    only_test = flags.get_feature_flag(PROJECT, "checkout-v2", env=ENV)
    assert set(only_test.environments) == {ENV}
    listed = flags.get_feature_flags(PROJECT, env=ENV, summary=False, filter="query:checkout")
    assert [f.key for f in listed.items] == ["checkout-v2"] and listed.total_count == 1
    assert listed.items[0].environments[ENV].rules[0].description == "premium gets A"
    summary = flags.get_feature_flags(PROJECT, tag="team-x")
    assert [f.key for f in summary.items] == ["checkout-v2"]
    assert summary.items[0].environments[ENV].rules is None

    # A read-only field is refused with its path.
    with pytest.raises(BadRequestException) as refused:
        flags.patch_feature_flag(PROJECT, "checkout-v2", PatchWithComment(
            patch=[PatchOperation(op="replace", path="/key", value="other")]))
    assert json.loads(refused.value.body)["message"] == "/key is read-only; the patch may not change it"

    # Status: the SDK's evaluations, flushed to /bulk, make the flag active in test only.
    ld_client.flush()
    status = wait_for(lambda: flags.get_feature_flag_status(PROJECT, ENV, "checkout-v2"),
                      lambda s: s.name != "new", timeout=10)
    assert status.name == "active" and status.last_requested is not None
    assert status.links["parent"].href == f"/api/v2/flags/{PROJECT}/checkout-v2"
    across = flags.get_feature_flag_status_across_environments(PROJECT, "checkout-v2")
    assert (across.key, across.environments[ENV].name, across.environments["production"].name) == (
        "checkout-v2", "active", "new")
    statuses = flags.get_feature_flag_statuses(PROJECT, "production")
    hrefs = {item.links["self"].href: item.name for item in statuses.items}
    assert hrefs[f"/api/v2/flag-statuses/{PROJECT}/production/gate"] == "new"

    # Delete: the SDK falls back to the code's default.
    flags.delete_feature_flag(PROJECT, "checkout-v2")
    evaluates(ld_client, "checkout-v2", bob, "fallback")
    with pytest.raises(NotFoundException):
        flags.get_feature_flag(PROJECT, "checkout-v2")


def test_seeded_and_admin_flags_appear_with_defaults(mock_ld):
    mock_ld.put_flag({"key": "admin-bool", "on": True, "variations": [True, False],
                      "fallthrough": {"variation": 0}, "offVariation": 1})
    flags = FeatureFlagsApi(client(mock_ld.url))
    flag = flags.get_feature_flag(PROJECT, "admin-bool")
    assert (flag.name, flag.kind, flag.description, flag.tags) == ("admin-bool", "boolean", "", [])
    assert flag.environments[ENV].on is True
    assert flag.environments["production"].on is False
    keys = [f.key for f in flags.get_feature_flags(PROJECT).items]
    assert "admin-bool" in keys
    # AI Configs are flags to SDKs: left out of the flag list, readable (scripts read the
    # salt there), and changed only through the AI Config API.
    api = client(mock_ld.url)
    method, url, headers, body, _ = api.param_serialize(
        "POST", f"/api/v2/projects/{PROJECT}/ai-configs", body={"key": "helper", "name": "Helper"},
        header_params={"Content-Type": "application/json"}, auth_settings=["ApiKey"])
    assert api.call_api(method, url, headers, body).status == 201
    assert "helper" not in [f.key for f in flags.get_feature_flags(PROJECT).items]
    helper = flags.get_feature_flag(PROJECT, "helper")
    assert (helper.name, helper.kind, helper.variations[0].name) == ("Helper", "multivariate", "Disabled")
    assert helper.environments[ENV].salt == mock_ld.admin(
        "GET", f"/environments/{ENV}/flags/helper")["salt"]
    with pytest.raises(BadRequestException) as refused:
        flags.delete_feature_flag(PROJECT, "helper")
    assert "is an AI Config" in json.loads(refused.value.body)["message"]
    # Its first API change keeps the variation ids the reads showed.
    ids = [v.id for v in flag.variations]
    patched = flags.patch_feature_flag(PROJECT, "admin-bool", PatchWithComment(
        patch=[PatchOperation(op="add", path="/tags/-", value="seeded")]))
    assert ([v.id for v in patched.variations], patched.tags) == (ids, ["seeded"])


def test_segments_take_json_patch_merge_patch_and_semantic_patch(mock_ld):
    api = client(mock_ld.url)
    segments = SegmentsApi(api)
    created = segments.post_segment(PROJECT, ENV, SegmentBody(key="beta", name="Beta", tags=["t"]))
    assert (created.key, created.name, created.included) == ("beta", "Beta", [])

    patched = segments.patch_segment(PROJECT, ENV, "beta", PatchWithComment(
        comment="add testers",
        patch=[PatchOperation(op="add", path="/included/-", value="u1"),
               PatchOperation(op="add", path="/rules/-", value={
                   "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@x.io"],
                                "negate": False}]})]))
    assert isinstance(patched, UserSegment)
    assert patched.included == ["u1"] and patched.version == created.version + 1
    assert patched.rules[0].clauses[0].values == ["@x.io"] and patched.rules[0].id

    bare = UserSegment.from_json(raw_patch(
        api, f"/api/v2/segments/{PROJECT}/{ENV}/beta",
        [{"op": "add", "path": "/excluded/-", "value": "u2"}]))
    assert bare.excluded == ["u2"]
    merged = UserSegment.from_json(raw_patch(
        api, f"/api/v2/segments/{PROJECT}/{ENV}/beta",
        {"merge": {"name": "Beta testers", "description": "people"}}))
    assert (merged.name, merged.description, merged.included) == ("Beta testers", "people", ["u1"])
    sem = UserSegment.from_json(raw_patch(
        api, f"/api/v2/segments/{PROJECT}/{ENV}/beta",
        {"environmentKey": ENV, "instructions": [{"kind": "addIncludedUsers", "values": ["u3"]}]},
        SEMANTIC))
    assert sem.included == ["u1", "u3"]
    with pytest.raises(BadRequestException) as refused:
        segments.patch_segment(PROJECT, ENV, "beta", PatchWithComment(
            patch=[PatchOperation(op="replace", path="/version", value=99)]))
    assert "/version is read-only" in json.loads(refused.value.body)["message"]


def test_a_role_without_the_action_gets_the_typed_403(tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({
        "customRoles": [{"key": "targeter", "policy": [
            {"effect": "allow", "actions": ["updateTargets"], "resources": ["proj/*:env/test:flag/*"]}]}],
        "tokens": [{"name": "targeter", "token": "api-targeter", "customRoles": ["targeter"]}],
    }))
    server = MockLd(tmp_path, ["--roles", str(roles)])
    try:
        admin = FeatureFlagsApi(client(server.url))
        admin.post_feature_flag(PROJECT, FeatureFlagBody(name="F", key="f"))
        targeter_api = client(server.url, "api-targeter")
        targeter = FeatureFlagsApi(targeter_api)
        with pytest.raises(ForbiddenException) as denied:
            targeter.patch_feature_flag(PROJECT, "f", PatchWithComment(
                patch=[PatchOperation(op="replace", path="/environments/test/on", value=True)]))
        assert "may not updateOn on proj/default:env/test:flag/f" in json.loads(denied.value.body)["message"]
        with pytest.raises(ForbiddenException):
            targeter.delete_feature_flag(PROJECT, "f")
        # The action it has goes through.
        allowed = FeatureFlag.from_json(raw_patch(
            targeter_api, f"/api/v2/flags/{PROJECT}/f",
            {"environmentKey": ENV, "instructions": [
                {"kind": "addTargets", "values": ["u1"], "variation": 0}]}, SEMANTIC))
        assert allowed.environments[ENV].targets[0].values == ["u1"]
        sdk = make_client(server.url)
        try:
            # The flag is off (the role may not turn it on): its off variation, targets or not.
            assert sdk.variation("f", Context.create("u1"), None) is False
        finally:
            sdk.close()
    finally:
        server.stop()


def test_flags_survive_a_restart_and_reach_a_new_environment(tmp_path):
    state = tmp_path / "state"
    server = MockLd(tmp_path, ["--state", str(state)])
    try:
        flags = FeatureFlagsApi(client(server.url))
        created = flags.post_feature_flag(PROJECT, FeatureFlagBody(
            name="Durable", key="durable", tags=["kept"],
            variations=[Variation(value=1, name="one"), Variation(value=2)]))
        semantic(client(server.url), "durable", [{"kind": "turnFlagOn"}])
    finally:
        server.stop()
    server = MockLd(tmp_path, ["--state", str(state)])
    try:
        api = client(server.url)
        flags = FeatureFlagsApi(api)
        kept = flags.get_feature_flag(PROJECT, "durable")
        assert (kept.name, kept.tags, kept.version) == ("Durable", ["kept"], 2)
        assert [(v.id, v.value, v.name) for v in kept.variations] == [
            (v.id, v.value, v.name) for v in created.variations]
        assert (kept.environments[ENV].on, kept.environments["production"].on) == (True, False)

        # A new environment serves the flag at once: off, with its off variation.
        answer = launchdarkly_api.EnvironmentsApi(api).post_environment_without_preload_content(
            PROJECT, launchdarkly_api.EnvironmentPost(name="Staging", key="staging", color="00ff00"))
        assert answer.status == 201
        sdk_key = json.loads(answer.read())["apiKey"]
        staging = flags.get_feature_flag(PROJECT, "durable", env="staging").environments["staging"]
        assert (staging.on, staging.off_variation) == (False, 1)
        sdk = make_client(server.url, sdk_key=sdk_key)
        try:
            assert sdk.is_initialized()
            assert sdk.variation("durable", Context.create("u"), 0) == 2
        finally:
            sdk.close()
    finally:
        server.stop()
