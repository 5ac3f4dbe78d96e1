"""The accepted policy through the dispatcher on the in-memory swarm: what narrows applies
at once, what widens waits for an admin, and who may accept (tests/policy_fixtures.py)."""

from __future__ import annotations

import time

from commands.replies import DENIED, ApprovalRequest, Failure, Message
from core.store import App
from tests import forge_payloads, policy_fixtures
from tests.chat import failure, result, say, table
from tests.forge_payloads import posted
from tests.policy_fixtures import ADMIN, APP, DEPLOYER, write

fake, pbot, prepo = forge_payloads.fake, policy_fixtures.pbot, policy_fixtures.prepo
SECRET_IN_QA = {"environments": {"qa": {"swarm_secrets": [f"{APP}-token"]}}}


async def test_apps_add_accepts_the_policy_at_the_registered_ref(pbot, prepo):
    commit = prepo.git("rev-parse", "HEAD").strip()
    shown = table(await say(pbot, f"policy {APP}", DEPLOYER))
    assert shown.title.startswith(f"policy of {APP}, accepted by {ADMIN} ")
    assert shown.title.endswith(f"at {commit[:12]}")
    rows = dict(shown.rows)
    assert rows["deploy_on_push"] == "main -> qa"
    assert rows["environments.staging.approval"] == (
        '{"approvers": ["admin"], "expires": "30m00s", "required": 2}'
    )
    assert rows["environments.qa.swarm_secrets"] == "none"
    same = await say(pbot, f"policy diff {APP}", DEPLOYER)
    assert same == [
        Message(f"the policy of {APP} at the registered ref ({commit[:12]}) is the accepted one")
    ]


async def test_a_push_that_adds_an_approval_is_honoured_at_once(pbot, prepo):
    write(prepo, {"environments": {"qa": {"approval": {"approvers": ["admin"]}}}})
    prepo.push("main", "qa asks for approval now")
    replies = await say(pbot, f"deploy {APP} --env qa", DEPLOYER)
    [card] = [r for r in replies if isinstance(r, ApprovalRequest)]
    assert (card.required, card.approvers) == (1, ("admin",))
    assert pbot.engine.store.releases(APP, "qa") == []
    assert policy_fixtures.policy_audit(pbot) == []  # no admin was needed


async def test_the_accepted_approval_holds_for_commands_that_read_no_ref(pbot, prepo, fake):
    write(prepo, {"environments": {"staging": {"approval": False}}})
    prepo.push("main", "no approval on staging")
    for text in (f"scale {APP} 2 --env staging", f"run {APP} --env staging -- ls /"):
        replies = await say(pbot, text, DEPLOYER)
        [card] = [r for r in replies if isinstance(r, ApprovalRequest)]
        assert (card.required, card.approvers) == (2, ("admin",))
    assert fake.services() == []


async def test_a_deployer_cannot_accept_and_not_accepting_keeps_it_refused(pbot, prepo, fake):
    write(prepo, SECRET_IN_QA)
    prepo.push("main", "production's secret in qa")
    before = pbot.engine.store.accepted_policy(APP)
    for text in (f"policy accept {APP}", f"policy accept {APP} --env qa"):
        denied = failure(await say(pbot, text, DEPLOYER))
        assert denied.kind == DENIED
        assert f"{DEPLOYER} may not admin on {APP}/" in denied.message
    assert pbot.engine.store.accepted_policy(APP) == before
    diff = table(await say(pbot, f"policy diff {APP}", ADMIN))
    assert ("environments.qa.swarm_secrets", "none", f"{APP}-token", "widens") in diff.rows
    for _ in range(2):  # the admin looked and did not accept: still refused
        refused = failure(await say(pbot, f"deploy {APP} --env qa", DEPLOYER))
        assert "environments.qa.swarm_secrets: none → zpol-token (widens)" in refused.message
    assert fake.services() == []
    denials = [r for r in pbot.engine.store.audit_log(APP, 50) if r["result"] == DENIED]
    assert len(denials) == 2


async def test_accepting_one_environment_leaves_the_others_refused(pbot, prepo, fake):
    write(
        prepo,
        {
            **SECRET_IN_QA,
            "environments": {
                "qa": {"swarm_secrets": [f"{APP}-token"]},
                "staging": {"approval": False},
            },
        },
    )
    prepo.push("main", "two widenings")
    accepted = result(await say(pbot, f"policy accept {APP} --env qa", ADMIN))
    assert accepted.title.startswith(f"accepted the policy of {APP} (qa) at ")
    assert "staging" not in accepted.title
    assert result(await say(pbot, f"deploy {APP} --env qa", DEPLOYER)).ok
    refused = failure(await say(pbot, f"deploy {APP} --env staging", DEPLOYER))
    assert "environments.staging.approval: " in refused.message
    assert f"`policy accept {APP} --env staging`" in refused.message
    announced = [p for p in posted(pbot) if isinstance(p, Message) and "🛡️" in p.text]
    head = prepo.git("rev-parse", "HEAD")[:12]
    [notice] = announced
    assert notice.text.startswith(f"🛡️ {ADMIN} accepted the policy of {APP} (qa) at {head}: ")


async def test_an_app_registered_before_policies_deploys_nothing_until_accepted(
    pbot, prepo, fake, tmp_path
):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "app.yml").write_text("name: zpold\nimage: web:1\n")
    pbot.engine.store.add_app(App("zpold", "path", str(folder), None, ADMIN, time.time()))
    refused = failure(await say(pbot, "deploy zpold", ADMIN))
    assert refused.message.startswith(
        "zpold has no accepted policy (it was registered before policies existed)"
    )
    assert "`policy accept zpold`" in refused.message
    assert pbot.engine.store.releases("zpold", "production") == []
    none = await say(pbot, "policy zpold", ADMIN)
    assert none[0].text.startswith("zpold has no accepted policy, so its deploys are refused")
    accepted = result(await say(pbot, "policy accept zpold", ADMIN))
    assert accepted.title == "accepted the policy of zpold at its folder: no difference"
    assert result(await say(pbot, "deploy zpold", ADMIN)).ok


async def test_a_rollback_cannot_bring_back_a_secret_the_policy_dropped(pbot, prepo, fake):
    write(prepo, SECRET_IN_QA)
    prepo.push("main", "a secret in qa")
    assert result(await say(pbot, f"policy accept {APP} --env qa", ADMIN)).ok
    assert result(await say(pbot, f"deploy {APP} --env qa", DEPLOYER)).ok
    write(prepo, {})
    prepo.push("main", "no secret any more")
    assert result(await say(pbot, f"deploy {APP} --env qa", DEPLOYER)).ok  # narrowing: at once
    dropped = result(await say(pbot, f"policy accept {APP}", ADMIN))
    assert "environments.qa.swarm_secrets: zpol-token → none (narrows)" in dropped.title
    refused = failure(await say(pbot, f"rollback {APP} 1 --env qa", DEPLOYER))
    assert refused.message.startswith(
        f"release 1 of {APP} (qa) mounts the Swarm secret(s) {APP}-token, which {APP}'s "
        "accepted policy for qa no longer allows, so nothing was changed"
    )
    assert [r.status for r in pbot.engine.store.releases(APP, "qa")] == ["live", "superseded"]


async def test_help_names_the_policy_commands(pbot, prepo):
    shown = table(await say(pbot, "help deploys", ADMIN))
    usages = [row[0] for row in shown.rows]
    assert {"policy APP", "policy diff APP [REF]", "policy accept APP [REF] [--env ENV]"} <= set(
        usages
    )
    assert not any(isinstance(r, Failure) for r in await say(pbot, "help policy accept"))


async def test_apps_add_audits_the_policy_it_accepts(pbot, prepo):
    commit = prepo.git("rev-parse", "HEAD").strip()
    rows = pbot.engine.store.audit_log(APP, 200)
    [row] = [r for r in rows if r["command"] == f"policy accept {APP}"]
    assert row["user"] == ADMIN and row["result"] == "ok"
    assert row["detail"].startswith(
        f"accepted with `apps add` at {commit[:12]}: deploy_on_push: main -> qa; previews: "
    )
    assert "environments.qa.swarm_secrets: none" in row["detail"]
