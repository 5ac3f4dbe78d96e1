"""The policy of an app.yml, and the differences between two, exactly (core/policy)."""

from __future__ import annotations

from core.appspec import Approval, parse_app_config
from core.policy.diff import Change, diff, shown, widening
from core.policy.extract import extract, nothing, with_env
from core.policy.gate import refusal, secrets_of, tighten

APP = """\
name: mine
image: x:1
port: 80
volumes: [data:/data, /srv/mine:/srv:ro]
deploy_on_push: {branch: main, env: staging}
previews: {domain: 'pr-{number}.p.test', env: {A: "1"}}
approval: {required: 2, approvers: [admin], expires: 10m}
environments:
  staging: {approval: false, swarm_secrets: [mine-token], volumes: [/srv/mine/s:/s]}
"""
MIN = 60 * 10**9


def policy(text: str = APP):
    return extract(parse_app_config(text))


def test_extract_reads_each_environment_after_merging_and_the_app_wide_keys():
    assert policy() == {
        "app": {
            "deploy_on_push": ["main -> staging"],
            "previews": {
                "domain": "pr-{number}.p.test",
                "https": True,
                "replicas": 1,
                "forks": False,
                "env": ["A"],
            },
        },
        "environments": {
            "production": {
                "approval": {"required": 2, "approvers": ["admin"], "expires": 10 * MIN},
                "swarm_secrets": [],
                "host_paths": ["/srv/mine:ro"],
            },
            "staging": {
                "approval": None,
                "swarm_secrets": ["mine-token"],
                "host_paths": ["/srv/mine/s:rw"],
            },
        },
    }


def test_the_same_policy_differs_in_nothing():
    assert diff(policy(), policy()) == []


def test_an_approval_removed_lowered_widened_or_longer_widens():
    held = policy()
    loose = APP.replace(
        "approval: {required: 2, approvers: [admin], expires: 10m}",
        "approval: {required: 1, approvers: [admin, deployer], expires: 1h}",
    )
    assert diff(held, policy(loose), "production") == [
        Change("production", "approval.required", 2, 1, True),
        Change("production", "approval.approvers", [], ["deployer"], True),
        Change("production", "approval.expires", "10m00s", "60m00s", True),
    ]
    gone = APP.replace("approval: {required: 2, approvers: [admin], expires: 10m}", "")
    removed = held["environments"]["production"]["approval"]
    assert diff(held, policy(gone), "production") == [
        Change("production", "approval", removed, None, True)
    ]
    # the other way round each one narrows
    assert diff(policy(loose), held, "production") == [
        Change("production", "approval.required", 1, 2, False),
        Change("production", "approval.approvers", ["deployer"], [], False),
        Change("production", "approval.expires", "60m00s", "10m00s", False),
    ]
    assert diff(policy(gone), held, "production") == [
        Change("production", "approval", None, removed, False)
    ]


def test_a_set_growing_widens_and_shrinking_narrows():
    more = APP.replace("swarm_secrets: [mine-token]", "swarm_secrets: [mine-token, mine-db]")
    more = more.replace("/srv/mine:/srv:ro", "/srv/mine:/srv")  # read-only to writable
    assert diff(policy(), policy(more)) == [
        Change("production", "host_paths", [], ["/srv/mine:rw"], True),
        Change("production", "host_paths", ["/srv/mine:ro"], [], False),
        Change("staging", "swarm_secrets", [], ["mine-db"], True),
    ]
    assert widening(diff(policy(more), policy())) == [
        Change("production", "host_paths", [], ["/srv/mine:ro"], True)
    ]


def test_push_rules_and_previews():
    wider = APP.replace(
        "deploy_on_push: {branch: main, env: staging}",
        "deploy_on_push: [{branch: main, env: staging}, {branch: main}]",
    ).replace(
        "previews: {domain: 'pr-{number}.p.test', env: {A: \"1\"}}",
        "previews: {domain: 'pr-{number}.q.test', forks: true, replicas: 3, https: false,"
        " env: {B: '2'}}",
    )
    assert diff(policy(), policy(wider), None)[:7] == [
        Change(None, "deploy_on_push", [], ["main -> production"], True),
        Change(None, "previews.domain", "pr-{number}.p.test", "pr-{number}.q.test", True),
        Change(None, "previews.replicas", 1, 3, True),
        Change(None, "previews.forks", False, True, True),
        Change(None, "previews.https", True, False, True),
        Change(None, "previews.env", [], ["B"], True),
        Change(None, "previews.env", ["A"], [], False),
    ]
    without = APP.replace("previews: {domain: 'pr-{number}.p.test', env: {A: \"1\"}}\n", "")
    before = policy()["app"]["previews"]
    assert diff(policy(), policy(without), None)[0] == Change(None, "previews", before, None, False)
    assert diff(policy(without), policy(), None)[0] == Change(None, "previews", None, before, True)


def test_a_new_environment_is_compared_with_nothing_and_a_dropped_one_is_not_compared():
    added = APP + "  qa: {swarm_secrets: [mine-qa], approval: true}\n"
    assert diff(policy(), policy(added)) == [
        Change("qa", "approval", None, policy(added)["environments"]["qa"]["approval"], False),
        Change("qa", "swarm_secrets", [], ["mine-qa"], True),
        Change("qa", "host_paths", [], ["/srv/mine:ro"], True),  # the base's, merged in
    ]
    assert diff(policy(added), policy()) == []


def test_nothing_accepted_makes_every_secret_path_rule_and_preview_widen():
    wider = widening(diff(nothing(), policy()))
    assert [c.where for c in wider] == [
        "deploy_on_push",
        "previews",
        "environments.production.host_paths",
        "environments.staging.swarm_secrets",
        "environments.staging.host_paths",
    ]


def test_accepting_one_environment_keeps_the_rest_as_accepted():
    held, offered = policy(), policy(APP.replace("[mine-token]", "[mine-token, mine-db]"))
    offered["environments"]["production"]["swarm_secrets"] = ["mine-other"]
    mixed = with_env(held, offered, "staging")
    assert mixed["environments"]["staging"]["swarm_secrets"] == ["mine-db", "mine-token"]
    assert mixed["environments"]["production"] == held["environments"]["production"]
    assert mixed["app"] == held["app"]


def test_values_are_bounded_and_the_refusal_names_the_admin_commands():
    long = [f"mine-{i:03d}" for i in range(60)]
    assert len(shown(long)) == 200 and shown(long).endswith("…")
    text = refusal(
        "mine",
        "app.yml at abc",
        [Change("staging", "swarm_secrets", [], long, True)],
        "feature",
        "staging",
    )
    assert "environments.staging.swarm_secrets: none → mine-000, mine-001" in text
    assert text.endswith(
        "An admin of mine reviews it with `policy diff mine feature` and accepts it with "
        "`policy accept mine feature --env staging`; until then it is refused."
    )


def test_tighten_takes_the_stricter_of_each_field():
    held = Approval(required=1, approvers=["deployer", "admin"], expires="30m")
    offered = Approval(required=2, approvers=["admin", "slack:U1"], expires="1h")
    assert tighten(held, offered) == Approval(required=2, approvers=["admin"], expires="30m")
    assert tighten(held, None) == held and tighten(None, offered) == offered
    disjoint = Approval(approvers=["slack:U1"])
    assert tighten(held, disjoint).approvers == ["deployer", "admin"]


def test_the_swarm_secrets_of_a_stored_service_spec():
    spec = {
        "TaskTemplate": {
            "ContainerSpec": {"Secrets": [{"SecretName": "mine-b"}, {"SecretName": "mine-a"}]}
        }
    }
    assert secrets_of(spec) == ["mine-a", "mine-b"]
    assert secrets_of({"TaskTemplate": {"ContainerSpec": {}}}) == []


def test_an_approval_shows_its_expiry_as_a_duration():
    held = policy()["environments"]["production"]["approval"]
    assert shown(held) == '{"approvers": ["admin"], "expires": "10m00s", "required": 2}'
