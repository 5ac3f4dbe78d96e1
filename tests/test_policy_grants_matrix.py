"""The rest of the policy matrix (issue 20, items 2 and 6 beside item 1's keys): what app.yml
may reach through an admin's *grant* rather than through `policy accept`. For each widening
a deployer pushes to the registered branch (a domain, a database in another environment, a
link to another app's network, a private registry image), the deploy is refused with the
grant to ask for and nothing runs; after the admin's grant, the same deploy goes live and one
audit row names the grant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from commands.pipelines import registry_login
from commands.replies import Failure
from tests import forge_payloads, policy_fixtures
from tests.chat import failure, result, say
from tests.policy_fixtures import ADMIN, APP, DEPLOYER, write

fake, pbot, prepo = forge_payloads.fake, policy_fixtures.pbot, policy_fixtures.prepo
REGISTRY = "registry.test:5000"
PRIVATE = f"{REGISTRY}/team/private:1"


@dataclass(frozen=True)
class Row:
    override: dict[str, Any]  # merged into app.yml at the registered branch
    refusal: str  # what the refusal says to do
    grant: str  # the admin's command (a secret after "|", typed in a form)
    audited: str  # the start of the grant's audit row


ROWS = {
    "a domain": Row(
        {"port": 8080, "https": False, "domains": ["shop.example.test"]},
        f"domain grant {APP} shop.example.test --env qa",
        f"domain grant {APP} shop.example.test --env qa",
        f"domain grant {APP} shop.example.test",
    ),
    "a wildcard": Row(
        {"port": 8080, "https": False, "domains": ["*.example.test"]},
        "domain grant",
        f"domain grant {APP} '*.example.test' --env qa",
        f"domain grant {APP} '*.example.test'",
    ),
    "production's database in another environment": Row(
        {"environments": {"qa": {"databases": ["proddb"]}}},
        f"db attach proddb {APP} --env qa",
        f"db attach proddb {APP} --env qa",
        f"db attach proddb {APP} --env qa",
    ),
    "a link to another team's app": Row(
        {"links": ["zother"]},
        f"link grant {APP} zother --env qa",
        f"link grant {APP} zother --env qa",
        f"link grant {APP} zother --env qa",
    ),
    "a private registry image": Row(
        {"build": None, "image": PRIVATE},
        f"registry login {REGISTRY}",
        "",  # the CLI's `shipbot registry login` (below): a password never goes through chat
        f"registry login {REGISTRY} --user ci --app {APP}",
    ),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
async def test_a_widening_needing_a_grant_is_refused_until_an_admin_grants_it(
    pbot, prepo, fake, row, tmp_path
):
    fake.publish("redis:7")
    assert result(await say(pbot, "db create redis proddb", ADMIN)).ok
    assert result(await say(pbot, f"db attach proddb {APP}", ADMIN)).ok  # production only
    other = tmp_path / "zother"  # another team's app, for the link
    other.mkdir()
    (other / "app.yml").write_text("name: zother\nbuild: .\nport: 8080\n")
    assert result(await say(pbot, f"apps add zother --path {other}", ADMIN)).ok
    fake.logins[REGISTRY] = {"username": "ci", "password": "s3cret"}
    fake.publish(PRIVATE)
    write(prepo, row.override)
    prepo.push("main", "widen")

    refused = failure(await say(pbot, f"deploy {APP} --env qa", DEPLOYER))
    assert row.refusal in refused.message, refused.message
    assert "nothing was changed" in refused.message or "nothing" in refused.message
    assert fake.inspect_service(f"{APP}-qa") is None
    assert pbot.engine.store.releases(APP, "qa") == []

    if row.grant:
        granted = await say(pbot, row.grant, ADMIN)
        assert not any(isinstance(r, Failure) for r in granted), granted
    else:
        registry_login(
            pbot, registry=REGISTRY, username="ci", password="s3cret", app=APP, by="cli:root"
        )
    rows = [
        r
        for r in pbot.engine.store.audit_log(APP, 50)
        if r["command"].startswith(row.audited) and r["result"] == "ok"
    ]
    assert len(rows) == 1, [
        (r["command"], r["app"], r["env"], r["result"]) for r in pbot.engine.store.db["audit"].rows
    ]

    assert result(await say(pbot, f"deploy {APP} --env qa", DEPLOYER)).ok
    assert [r.status for r in pbot.engine.store.releases(APP, "qa")] == ["live"]


async def test_another_apps_release_image_is_refused_under_any_spelling(pbot, prepo):
    """No grant makes another app's build an image source."""
    for spelling in (
        "shipbot/other:1",
        "docker.io/shipbot/other:1",
        "index.docker.io/shipbot/other:1",
    ):
        write(prepo, {"build": None, "image": spelling})
        prepo.push("main", f"borrow {spelling}")
        refused = failure(await say(pbot, f"deploy {APP} --env qa", DEPLOYER))
        assert "is a shipbot release image" in refused.message, refused.message
    assert pbot.engine.store.releases(APP, "qa") == []
