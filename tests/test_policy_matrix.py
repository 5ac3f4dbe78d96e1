"""Each widening of an app's policy pushed to its registered branch, by a deployer: refused
with the difference and nothing deployed; after an admin's `policy accept`, the same action
goes through and one audit row names the difference.

Another key (domains, databases, image, links) is one more ``Row``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from commands.replies import ApprovalRequest, Failure, Result
from tests import forge_payloads, policy_fixtures
from tests.chat import result, say
from tests.policy_fixtures import ADMIN, APP, act, policy_audit, write

fake, pbot, prepo = forge_payloads.fake, policy_fixtures.pbot, policy_fixtures.prepo


@dataclass(frozen=True)
class Row:
    where: str  # the key the refusal and the audit name
    override: dict[str, Any]  # merged into app.yml at the registered branch
    action: str  # tests/policy_fixtures.py ``act``
    then: str = "live"  # after accepting: "live", "asks" (an approval card) or "deploying"
    env: str = "qa"
    extra: dict[str, Any] = field(default_factory=dict)


def staging_approval(**changed: Any) -> dict[str, Any]:
    return {"environments": {"staging": {"approval": changed}}}


ROWS = {
    "approval removed": Row(
        "environments.staging.approval",
        {"environments": {"staging": {"approval": False}}},
        f"deploy {APP} --env staging",
        env="staging",
    ),
    "approval required lowered": Row(
        "environments.staging.approval.required",
        staging_approval(required=1),
        f"deploy {APP} --env staging",
        "asks",
        env="staging",
    ),
    "approvers widened": Row(
        "environments.staging.approval.approvers",
        staging_approval(approvers=["admin", "deployer"]),
        f"deploy {APP} --env staging",
        "asks",
        env="staging",
    ),
    "approval expires later": Row(
        "environments.staging.approval.expires",
        staging_approval(expires="2h"),
        f"deploy {APP} --env staging",
        "asks",
        env="staging",
    ),
    "swarm secret added": Row(
        "environments.qa.swarm_secrets",
        {"environments": {"qa": {"swarm_secrets": [f"{APP}-token"]}}},
        f"deploy {APP} --env qa",
    ),
    "host path added": Row(
        "environments.qa.host_paths",
        {"environments": {"qa": {"volumes": ["/srv/zpol:/data"]}}},
        f"deploy {APP} --env qa",
    ),
    "dry run sees it too": Row(
        "environments.qa.swarm_secrets",
        {"environments": {"qa": {"swarm_secrets": [f"{APP}-db"]}}},
        f"deploy {APP} --env qa --dry-run",
        "planned",
    ),
    "push rule added": Row(
        "deploy_on_push",
        {"deploy_on_push": [{"branch": "main", "env": "qa"}, {"branch": "hotfix", "env": "qa"}]},
        "push hotfix",
        "deploying",
    ),
    "previews from forks": Row(
        "previews.forks", {"previews": {"forks": True}}, "fork 7", "deploying", env="pr-7"
    ),
    "previews replicas": Row(
        "previews.replicas", {"previews": {"replicas": 2}}, "pull 8", "deploying", env="pr-8"
    ),
    "previews domain": Row(
        "previews.domain",
        {"previews": {"domain": "pr-{number}.elsewhere.test"}},
        "pull 9",
        "deploying",
        env="pr-9",
    ),
    "previews env key": Row(
        "previews.env", {"previews": {"env": {"DEBUG": "1"}}}, "pull 6", "deploying", env="pr-6"
    ),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
async def test_a_widening_pushed_is_refused_until_an_admin_accepts_it(pbot, prepo, fake, row):
    write(prepo, row.override)
    prepo.push("main", f"widen {row.where}")

    replies, answer = await act(pbot, prepo, row.action)
    if answer is None:
        refused = [r for r in replies if isinstance(r, Failure)]
        assert len(refused) == 1, replies
        text = refused[0].message
    else:
        assert f"{APP}: refused: " in answer.text, answer
        text = answer.text
    assert f"{row.where}: " in text and "(widens)" in text
    assert f"`policy accept {APP}" in text
    assert not any(isinstance(r, ApprovalRequest) for r in replies)
    assert fake.services() == [] and pbot.engine.store.releases(APP, row.env) == []
    assert policy_audit(pbot) == []

    accepted = result(await say(pbot, f"policy accept {APP}", ADMIN))
    assert accepted.ok and row.where in accepted.title
    [audited] = policy_audit(pbot)
    assert (audited["user"], audited["result"]) == (ADMIN, "ok")
    assert f"{row.where}: " in audited["detail"] and "(widens)" in audited["detail"]

    replies, answer = await act(pbot, prepo, row.action)
    if row.then == "deploying":
        assert answer is not None and f"{APP}: deploying" in answer.text, answer
        assert [r.status for r in pbot.engine.store.releases(APP, row.env)] == ["live"]
    elif row.then == "asks":
        [card] = [r for r in replies if isinstance(r, ApprovalRequest)]
        assert pbot.engine.store.releases(APP, row.env) == []
    elif row.then == "planned":
        assert not any(isinstance(r, Failure) for r in replies), replies
        assert any("dry run of deploy" in getattr(r, "text", "") for r in replies)
    else:
        assert [r for r in replies if isinstance(r, Result)][-1].ok, replies
        assert [r.status for r in pbot.engine.store.releases(APP, row.env)] == ["live"]
