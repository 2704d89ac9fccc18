"""A rollout plan's governance rehearsed against mock-ld through LaunchDarkly's generated Python
client (`launchdarkly-api`) and the example roles file (mock-ld/examples/roles.yaml): a
developer builds an AI Config and rolls it out in test but is refused in production; the
release manager rolls it out in production; the audit log shows who did what, with their
comments and the targeting before and after; the real Python SDK serves production what the
release manager chose."""

import launchdarkly_api as ld_api
import pytest
from conftest import REPO, MockLd, RestApi, api_error, make_client
from launchdarkly_api.exceptions import ForbiddenException
from ldclient import Context

ROLES = REPO / "mock-ld/examples/roles.yaml"
CONFIG = "support"


@pytest.fixture
def governed(tmp_path):
    server = MockLd(tmp_path, ["--roles", str(ROLES)])
    yield server
    server.stop()


def serve(api, env, variation_id, comment):
    """Points `env`'s fallthrough at one variation; returns the typed targeting."""
    return api.ai.patch_ai_config_targeting("default", CONFIG, ld_api.AIConfigTargetingPatch(
        environmentKey=env, comment=comment, instructions=[
            {"kind": "updateFallthroughVariationOrRollout", "variationId": variation_id}]))


def build_config(developer):
    """The developer's AI Config with variations `standard` and `premium`; their `_id`s."""
    # AIConfigPost has no `comment` (the client drops one), so the comment rides on the
    # first variation, whose post has one.
    config = developer.ai.post_ai_config("default", ld_api.AIConfigPost(key=CONFIG, name="Support", mode="completion"))
    assert (config.key, config.mode) == (CONFIG, "completion")
    for key, model, comment in [("standard", "gpt-4o-mini", "new assistant"), ("premium", "gpt-4o", None)]:
        developer.ai.post_ai_config_variation("default", CONFIG, ld_api.AIConfigVariationPost(
            key=key, name=key.title(), model={"modelName": model}, comment=comment,
            messages=[ld_api.Message(role="system", content="You help {{ldctx.key}}.")]))
    return developer.variation_ids("default", CONFIG)


def test_developers_write_test_and_the_release_manager_ships_production(governed):
    developer = RestApi(governed.url, "api-developer")
    release_manager = RestApi(governed.url, "api-release-manager")
    auditor = RestApi(governed.url, "api-auditor")
    ids = build_config(developer)

    in_test = serve(developer, "test", ids["premium"], "try premium in test")
    assert in_test.environments["test"].fallthrough.variation == 2
    with pytest.raises(ForbiddenException) as refused:
        serve(developer, "production", ids["premium"], "straight to prod")
    refused = refused.value.data
    assert refused.code == "forbidden"
    assert "updateAIConfigTargeting" in refused.message
    assert f"proj/default:env/production:aiconfig/{CONFIG}" in refused.message
    api_error(lambda: serve(auditor, "production", ids["premium"], "readers only read"), 403)
    targeting = auditor.ai.get_ai_config_targeting("default", CONFIG)
    assert targeting.environments["production"].fallthrough.variation == 0, "unchanged"

    shipped = serve(release_manager, "production", ids["premium"], "ship premium after sign-off in test")
    assert shipped.environments["production"].fallthrough.variation == 2
    api_error(lambda: release_manager.ai.post_ai_config("default", ld_api.AIConfigPost(key="other", name="Other")), 403)

    log = auditor.audit.get_audit_log_entries(spec=f"proj/*:env/*:aiconfig/{CONFIG}")
    who = [(e.token.name, e.target.resources[0].split(":")[1], e.comment) for e in log.items]
    assert who == [
        ("release-manager", "env/production", "ship premium after sign-off in test"),
        ("developer", "env/test", "try premium in test"),
    ], "newest first, refused writes not logged"
    entry = auditor.audit.get_audit_log_entry(log.items[0].id)
    assert [(a.action, a.resource) for a in entry.accesses] == \
        [("updateAIConfigTargeting", f"proj/default:env/production:aiconfig/{CONFIG}")]
    assert (entry.kind, entry.token.name, entry.comment) == ("aiconfig", "release-manager", "ship premium after sign-off in test")
    assert entry.delta["before"]["fallthrough"] == {"variation": 0}
    assert entry.delta["after"]["fallthrough"] == {"variation": 2}
    by_token = auditor.audit.get_audit_log_entries(token=log.items[0].token.id).items
    assert [(e.token.name, e.comment) for e in by_token] == \
        [("release-manager", "ship premium after sign-off in test")], "the token filter"
    created = auditor.audit.get_audit_log_entries(q="new assistant").items
    assert [(e.token.name, e.accesses[0].action) for e in created] == [("developer", "createAIConfigVariation")]

    client = make_client(governed.url, sdk_key="sdk-default-production")
    try:
        assert client.is_initialized()
        served = client.variation(CONFIG, Context.builder("customer-1").build(), {})
        assert served["_ldMeta"]["variationKey"] == "premium"
    finally:
        client.close()
