"""A pull request's preview as data: its environment, its domain, and the spec it runs.

What a preview gets is decided here, and only from the app.yml at the registered ref
(``previews:``), never from the pull request's own app.yml:

- its one domain, ``previews.domain`` with the number filled in (a pull request cannot
  route a production domain to its code), and only when an admin granted it to the app
  (``domain grant APP '*.preview.example.com' --env 'pr-*'``);
- app.yml's plain ``env`` at its head, then ``previews.env``; **no** variables or secrets
  set from chat for any environment, and no database URLs: a pull request's code (from a
  fork, when ``previews.forks`` allows them) must not read production's secrets;
- named volumes of its own (``app-pr-N-*``), never host paths;
- ``previews.replicas`` tasks, no approval and no environments of its own;
- no Swarm secrets, no ``server:`` or placement of its own: it runs on the server the
  registered app.yml names (``previews.server``, else its top-level ``server:``, else the
  control plane's own), and never another app's release image.
"""

from __future__ import annotations

from core.appspec import VOLUME_RE, AppSpec, Previews
from core.appspec.swarm import Placement
from core.deploy.spec import borrows_release_image
from core.pipelines import PipelineError

PREFIX = "pr-"


def env_name(number: int) -> str:
    return f"{PREFIX}{number}"


def domain_for(previews: Previews, number: int) -> str:
    return previews.domain.replace("{number}", str(number))


def grant_to_ask(domain: str) -> tuple[str, str]:
    """The domain grant that covers every preview at once: the wildcard one label above
    the preview's domain, in the preview environments (the domain itself when that
    wildcard would sit over a top-level domain)."""
    parent = domain.partition(".")[2]
    return (f"*.{parent}" if "." in parent else domain), f"{PREFIX}*"


def pull_refspec(forge: str, number: int) -> str:
    """Where a forge publishes a pull request's head in the base repository (a fork's
    commits are reachable only there), kept out of the branches a fetch prunes."""
    source = (
        f"refs/merge-requests/{number}/head" if forge == "gitlab" else f"refs/pull/{number}/head"
    )
    return f"+{source}:refs/shipbot/pull/{number}"


def preview_spec(head: AppSpec, previews: Previews, number: int) -> AppSpec:
    """The spec a preview runs: the pull request's app.yml (its base) within the limits
    above."""
    binds = [v for v in head.volumes if (m := VOLUME_RE.match(v)) and m["source"].startswith("/")]
    if binds:
        raise PipelineError(
            f"app.yml at the pull request's head bind-mounts {', '.join(binds)}: previews get "
            "named volumes only, so nothing was deployed"
        )
    if borrows_release_image(head):
        raise PipelineError(
            f"app.yml at the pull request's head runs {head.image}, another app's release: "
            "a preview runs its own build or a registry image, so nothing was deployed"
        )
    if head.port is None:
        raise PipelineError(
            "app.yml at the pull request's head sets no port: a preview is reached through "
            "the proxy, so it needs one"
        )
    return head.model_copy(
        update={
            "domains": [domain_for(previews, number)],
            "path_prefix": [],
            "https": previews.https,
            "replicas": previews.replicas,
            "env": {**head.env, **previews.env},
            "databases": [],
            "links": [],  # a preview's network is its own alone
            "approval": None,
            "environments": {},
            "deploy_on_push": [],
            "previews": None,
            "swarm_secrets": [],
            "server": previews.server,
            "placement": Placement(),
        }
    )
