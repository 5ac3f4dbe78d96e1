"""Previews under app.yml's image rules: never another app's release image, an image id or
an image only the engine has; a registry image runs by the digest the registry serves."""

from __future__ import annotations

import pytest
import yaml

from commands.hooks import Receiver
from commands.replies import Failure
from tests import forge_payloads
from tests.forge_payloads import audit, deliver, github_pull, posted

bot, fake, repo = forge_payloads.bot, forge_payloads.fake, forge_payloads.repo
HOST = "registry.example.com"
ID = "0ee697898f3b"


async def preview_of(bot, repo, number: int, image: str) -> None:
    doc = yaml.safe_load((repo.work / "app.yml").read_text())
    doc.pop("build", None)
    doc["image"] = image
    (repo.work / "app.yml").write_text(yaml.safe_dump(doc))
    head = repo.pull_request(number, f"run {image}")
    payload = github_pull(str(repo.origin), number, "opened", head)
    await deliver(Receiver(bot), "pull_request", payload)


@pytest.mark.parametrize(
    ("image", "refusal"),
    [
        ("docker.io/shipbot/other:1", "runs docker.io/shipbot/other:1, another app's release"),
        ("local:1", "local:1 is not in the registry docker.io"),
        (ID, f"{ID!r} is not an image reference"),
    ],
)
async def test_a_preview_runs_no_release_image_id_or_engine_only_image(
    bot, repo, fake, image, refusal
):
    for ref in ("shipbot/other:1", "local:1"):
        fake.add_image(ref)
    await preview_of(bot, repo, 4, image)
    assert fake.services() == []
    refused = [p for p in posted(bot) if isinstance(p, Failure)][-1]
    assert refusal in refused.message
    assert audit(bot)[-1][:2] == ("webhook:zpapp", "failed")


async def test_a_preview_runs_a_registry_image_pulled_by_digest(bot, repo, fake):
    digest = fake.push(f"{HOST}/team/app:pr")
    await preview_of(bot, repo, 4, f"{HOST}/team/app:pr")
    spec = fake.inspect_service("zpapp-pr-4")["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "shipbot/zpapp:1"
    served = fake.registry[f"{HOST}/team/app@{digest}"][1]
    assert fake.images["shipbot/zpapp:1"] == fake.images[f"{HOST}/team/app@{digest}"] == served
