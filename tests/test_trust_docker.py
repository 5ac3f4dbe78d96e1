"""Trust, as someone with deploy rights on one app would test it: real engine, real git.

Each test is a hole that was open: taking over another app's service, deploying something
other than what was approved, changing production without approval, mounting the host,
and using the masker as an oracle for another app's secrets.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, ApprovalRequest, Failure, Message
from core.secrets import MASK
from tests.chat import failure, result, say, table

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
ADMIN = "console:alice"
MALLORY = "console:mallory"  # deployer on her own app only
BOB = "console:bob"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:7]}"


def app_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    edit_yml(folder, name=name)
    return folder


def edit_yml(folder: Path, **changes: object) -> None:
    yml = folder / "app.yml"
    doc = yaml.safe_load(yml.read_text())
    doc.update(changes)
    yml.write_text(yaml.safe_dump(doc))


class Repo:
    """A work tree pushing to a bare origin, as a team's repository would."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.origin = root / "origin.git"
        self.work = folder
        self.git("init", "-q", "-b", "main", cwd=folder)
        self.git("add", ".")
        self.git("commit", "-qm", "first")
        subprocess.run(["git", "init", "-q", "--bare", str(self.origin)], check=True)
        self.git("remote", "add", "origin", str(self.origin))
        self.git("push", "-q", "origin", "main")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        base = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd or self.work)]
        return subprocess.run([*base, *args], check=True, capture_output=True, text=True).stdout

    def push(self, branch: str, message: str) -> str:
        self.git("checkout", "-q", "-B", branch)
        self.git("commit", "-q", "--allow-empty", "-am", message)
        self.git("push", "-q", "-f", "origin", branch)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{ADMIN}]\n")
    return home


async def test_a_branch_cannot_rename_its_app_onto_another_service(
    tmp_path, home, docker_client, made_apps
):
    victim, mine = unique("v"), unique("m")
    made_apps.extend([victim, mine])
    bot = Dispatcher.open(home)
    assert result(
        await say(bot, f"apps add {victim} --path {app_folder(tmp_path, victim)}", ADMIN)
    ).ok
    assert result(await say(bot, f"deploy {victim}", ADMIN)).ok
    before = docker_client.api.inspect_service(f"{victim}-production")["Version"]["Index"]

    repo = Repo(tmp_path, app_folder(tmp_path, mine))
    assert result(await say(bot, f"apps add {mine} --git {repo.origin} --ref main", ADMIN)).ok
    assert result(await say(bot, f"grant {MALLORY} deployer --app {mine}", ADMIN)).ok
    edit_yml(repo.work, name=victim)
    repo.push("takeover", "be the victim")

    for text in (f"deploy {mine} takeover", f"deploy {mine} takeover --dry-run"):
        refused = failure(await say(bot, text, MALLORY))
        assert f"names the app {victim!r}, not {mine!r}" in refused.message
    assert docker_client.api.inspect_service(f"{victim}-production")["Version"]["Index"] == before
    assert docker_client.api.services(filters={"name": f"{mine}-production"}) == []
    assert bot.engine.store.releases(mine) == []
    bot.close()


async def test_an_approval_covers_only_what_was_reviewed(tmp_path, home, docker_client, made_apps):
    name = unique("a")
    made_apps.append(name)
    folder = app_folder(tmp_path, name)
    edit_yml(folder, environments={"production": {"approval": {"approvers": ["deployer"]}}})
    repo = Repo(tmp_path, folder)
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --git {repo.origin} --ref main", ADMIN)).ok
    for user in (MALLORY, BOB):
        assert result(await say(bot, f"grant {user} deployer --app {name}", ADMIN)).ok

    reviewed = repo.push("feature", "two replicas, reviewed")
    asked = await say(bot, f"deploy {name} feature", MALLORY)
    card = next(r for r in asked if isinstance(r, ApprovalRequest))
    assert f"commit {reviewed}" in card.details
    digest = next(d for d in card.details if d.startswith("digest "))

    # pushed after the request: nine replicas nobody reviewed. The approval runs exactly
    # the reviewed commit and spec, not the branch as it is now.
    edit_yml(repo.work, replicas=9)
    sneaky = repo.push("feature", "sneaky")
    ran = result(await say(bot, f"approve {card.id}", BOB))
    assert ran.ok, ran
    spec = docker_client.api.inspect_service(f"{name}-production")["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 2
    assert bot.engine.store.releases(name)[0].source_ref == reviewed

    # what the commit alone does not pin (variables, secrets) changes: refused, not run
    again = next(
        r
        for r in await say(bot, f"deploy {name} feature", MALLORY)
        if isinstance(r, ApprovalRequest)
    )
    assert f"commit {sneaky}" in again.details and digest not in again.details
    changed = await say(bot, f"env set {name} MODE=other --break-glass 'test'", ADMIN)
    assert result(changed).ok
    refused = await say(bot, f"approve {again.id}", BOB)
    assert isinstance(refused[-1], Failure)
    assert "changed since requested" in refused[-1].message
    assert "request again" in refused[-1].message
    assert len(bot.engine.store.releases(name)) == 1
    pinned = sneaky

    # the requester lost the grant before anyone approved: nothing runs
    fourth = next(
        r
        for r in await say(bot, f"deploy {name} {pinned}", MALLORY)
        if isinstance(r, ApprovalRequest)
    )
    assert result(await say(bot, f"revoke {MALLORY} deployer --app {name}", ADMIN)).ok
    lost = await say(bot, f"approve {fourth.id}", BOB)
    assert lost[-1] == Failure(
        f"{MALLORY} may no longer run `deploy {name} {pinned}`, so request {fourth.id} cannot "
        "run; nothing was changed",
        DENIED,
    )
    bot.close()


async def test_every_change_to_production_waits_for_approval(
    tmp_path, home, docker_client, made_apps
):
    name = unique("p")
    made_apps.append(name)
    folder = app_folder(tmp_path, name)
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\nnotify:\n  - {{platform: slack, channel: CALERTS, kinds: [alerts]}}\n"
    )
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    for _ in range(2):  # two releases: a rollback has somewhere to go
        assert result(await say(bot, f"deploy {name}", ADMIN)).ok
    edit_yml(folder, environments={"production": {"approval": {"approvers": ["admin"]}}})
    assert result(await say(bot, f"grant {MALLORY} deployer --app {name}", ADMIN)).ok
    service = f"{name}-production"
    version = docker_client.api.inspect_service(service)["Version"]["Index"]

    for text in (
        f"scale {name} 0",
        f"restart {name}",
        f"rollback {name}",
        f"env set {name} MODE=evil",
        f"env unset {name} MODE",
    ):
        replies = await say(bot, text, MALLORY)
        assert any(isinstance(r, ApprovalRequest) for r in replies), (text, replies)
    secret = await bot.run(
        ChatRequest("console", MALLORY, "console", f"secret set {name} TOKEN", secret="x" * 12)
    )
    assert any(isinstance(r, ApprovalRequest) for r in secret)
    assert docker_client.api.inspect_service(service)["Version"]["Index"] == version
    assert bot.engine.store.variables(name) == []

    # break glass: not for deployers; admins pass, audited and announced
    denied = failure(await say(bot, f"scale {name} 1 --break-glass 'on fire'", MALLORY))
    assert denied.kind == DENIED
    glass = await say(bot, f"scale {name} 1 --break-glass 'on fire'", ADMIN)
    assert isinstance(glass[0], Message) and "break glass" in glass[0].text
    assert result(glass).ok
    audit = [(r["user"], r["result"], r["detail"]) for r in bot.engine.store.audit_log(name)]
    assert audit[0] == (ADMIN, "ok", f"break glass (on fire): {name} (production) scaled to 1")
    alerts = [row["payload"] for row in bot.engine.store.db["outbox"].rows]
    assert any("break glass" in payload and "on fire" in payload for payload in alerts)

    # the secret approved by an admin is stored with the value given at request time
    pending = next(r for r in secret if isinstance(r, ApprovalRequest))
    stored = await say(bot, f"approve {pending.id}", ADMIN)
    assert result(stored).ok
    assert bot.engine.vault.decrypt(bot.engine.store.variables(name)[0]["value"]) == "x" * 12
    bot.close()


async def test_a_branch_cannot_lift_its_own_approval(tmp_path, home, docker_client, made_apps):
    name = unique("l")
    made_apps.append(name)
    folder = app_folder(tmp_path, name)
    edit_yml(folder, environments={"production": {"approval": {"approvers": ["admin"]}}})
    repo = Repo(tmp_path, folder)
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --git {repo.origin} --ref main", ADMIN)).ok
    assert result(await say(bot, f"grant {MALLORY} deployer --app {name}", ADMIN)).ok
    edit_yml(repo.work, environments={})
    repo.push("no-approval", "approval? what approval")
    # a widening of the accepted policy (core/policy): refused, not even asked for
    refused = failure(await say(bot, f"deploy {name} no-approval", MALLORY))
    assert "environments.production.approval: " in refused.message
    assert f"`policy accept {name} no-approval --env production`" in refused.message
    assert docker_client.api.services(filters={"name": f"{name}-production"}) == []
    bot.close()


@pytest.mark.parametrize(
    "volume", ["/:/host", "/var/run/docker.sock:/var/run/docker.sock", "/srv/ok/../../etc:/e"]
)
async def test_host_paths_only_where_an_admin_allows(
    tmp_path, home, docker_client, made_apps, volume
):
    name = unique("h")
    made_apps.append(name)
    folder = app_folder(tmp_path, name)
    edit_yml(folder, volumes=[volume])
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    for text in (f"deploy {name}", f"deploy {name} --dry-run"):
        refused = failure(await say(bot, text, ADMIN))
        assert "outside the folders shipbot.yml allows (host_paths: none)" in refused.message
    assert docker_client.api.services(filters={"name": f"{name}-production"}) == []
    bot.close()


async def test_allowed_host_path_and_named_volumes_deploy(tmp_path, home, docker_client, made_apps):
    name = unique("k")
    made_apps.append(name)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note").write_text("from the host\n")
    (shared / "escape").symlink_to("/")
    folder = app_folder(tmp_path, name)
    (home / "shipbot.yml").write_text(f"admins: [{ADMIN}]\nhost_paths: [{shared}]\n")
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    # a link planted under the allowed folder does not lead out of it
    # (each host path is also one the admin accepts for this app: core/policy)
    edit_yml(folder, volumes=[f"{shared}/escape:/host"])
    assert result(await say(bot, f"policy accept {name}", ADMIN)).ok
    assert "outside the folders" in failure(await say(bot, f"deploy {name}", ADMIN)).message
    edit_yml(folder, volumes=[f"{shared}:/shared:ro", "data:/data"])
    assert result(await say(bot, f"policy accept {name}", ADMIN)).ok
    assert result(await say(bot, f"deploy {name}", ADMIN)).ok
    mounts = docker_client.api.inspect_service(f"{name}-production")["Spec"]["TaskTemplate"][
        "ContainerSpec"
    ]["Mounts"]
    assert [(m["Type"], m["Target"]) for m in mounts] == [("bind", "/shared"), ("volume", "/data")]
    bot.close()


async def test_the_masker_is_no_oracle_for_another_apps_secret(
    tmp_path, home, docker_client, made_apps
):
    billing, mine = unique("b"), unique("o")
    bot = Dispatcher.open(home)
    for name in (billing, mine):
        assert result(
            await say(bot, f"apps add {name} --path {app_folder(tmp_path, name)}", ADMIN)
        ).ok
    assert result(await say(bot, f"grant {MALLORY} deployer --app {mine}", ADMIN)).ok
    value = "billing-db-password-7"
    stored = await bot.run(
        ChatRequest("console", ADMIN, "console", f"secret set {billing} DB_PASSWORD", secret=value)
    )
    assert result(stored).ok
    # mallory guesses: the guess comes back as she typed it, whether right or wrong
    for guess in (value, "billing-db-password-8"):
        assert result(await say(bot, f"env set {mine} GUESS={guess}", MALLORY)).ok
        listed = table(await say(bot, f"env list {mine}", MALLORY))
        assert ("GUESS", guess, f"chat ({MALLORY})") in listed.rows
    # in billing's own replies its secret is masked, and ordinary words stay whole
    shown = table(await say(bot, f"env list {billing}", ADMIN))
    assert ("DB_PASSWORD", MASK, f"secret ({ADMIN})") in shown.rows
    bot.close()


async def test_a_token_in_a_git_url_is_never_shown_or_stored(home, made_apps):
    name = unique("t")
    made_apps.append(name)
    token = "ghp_Sup3rS3cretTok3n"
    url = f"https://user:{token}@127.0.0.1:9/team/app.git"  # nothing listens on port 9
    bot = Dispatcher.open(home)
    replies = await say(bot, f"apps add {name} --git {url}", ADMIN)
    assert isinstance(replies[-1], Failure)
    assert token not in repr(replies)
    rows = [
        repr(row)
        for table_name in ("apps", "audit")
        for row in bot.engine.store.db[table_name].rows
    ]
    assert rows and not any(token in row for row in rows)
    bot.close()


async def test_a_failed_re_add_keeps_the_clone(tmp_path, home, made_apps):
    name = unique("r")
    made_apps.append(name)
    repo = Repo(tmp_path, app_folder(tmp_path, name))
    bot = Dispatcher.open(home)
    assert result(await say(bot, f"apps add {name} --git {repo.origin} --ref main", ADMIN)).ok
    clone = home / "sources" / name
    assert (clone / "app.yml").is_file()
    broken = failure(await say(bot, f"apps add {name} --git {tmp_path}/nothing-here", ADMIN))
    assert "git" in broken.message
    assert (clone / "app.yml").is_file()
    # a repository that clones but whose app.yml names another app replaces nothing either
    other = Repo(tmp_path / "other", app_folder(tmp_path / "other", unique("x")))
    renamed = failure(await say(bot, f"apps add {name} --git {other.origin} --ref main", ADMIN))
    assert f"not {name!r}" in renamed.message
    assert yaml.safe_load((clone / "app.yml").read_text())["name"] == name
    assert bot.engine.store.get_app(name).source == str(repo.origin)
    assert isinstance((await say(bot, f"deploy {name} --dry-run", ADMIN))[-1], Message)
    bot.close()
