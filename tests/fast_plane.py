"""The real dispatcher and engine on an in-memory swarm: the fast tier's control plane.

Everything is real (store, vault, policy, approvals, locks, the deploy path) except the
Swarm manager, which is a ``FakeSwarm``. Rollouts are watched on the fake's clock, so a
deploy finishes in as many Swarm steps as it takes, without real time passing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from core.apps import config_in
from core.config import ControlConfig
from core.engine import Engine
from core.policy.extract import extract
from core.secrets import Vault
from core.store import App, Store
from core.swarm import rollout, running_tasks
from core.swarm.fake import FakeSwarm
from core.swarm.servers import Servers


def fake_swarm(monkeypatch: pytest.MonkeyPatch, *images: str) -> FakeSwarm:
    """A swarm that knows ``images`` (healthy, pulled from its registry), with rollouts
    watched on its clock."""
    swarm = FakeSwarm()
    for ref in images:
        swarm.publish(ref)
    monkeypatch.setattr(rollout, "clock", lambda: swarm.now)
    monkeypatch.setattr(rollout, "POLL_SECONDS", 0)
    monkeypatch.setattr(rollout, "RETRY_FIRST_SECONDS", 0)
    monkeypatch.setattr(rollout, "RETRY_MAX_SECONDS", 0)
    return swarm


def dispatcher(
    home: Path, swarm: FakeSwarm, admins: list[str], busy_timeout: float = 5.0
) -> Dispatcher:
    """The dispatcher whose engine's only server, ``local``, is ``swarm``."""
    engine = Engine(
        Store(home / "shipbot.db", busy_timeout=busy_timeout),
        servers=Servers({"local": lambda: swarm}),
        home=home,
        vault=Vault.open(home),
    )
    plane = engine.plane
    # the fake swarm's proxy serves its routes once its task runs (no HTTP in this tier)
    plane.edge_ready = lambda address, port: bool(running_tasks(swarm.tasks(plane.edge.service)))
    return Dispatcher(engine, ControlConfig(admins=admins))


def register(store: Store, app: App) -> None:
    """Register a folder app as `apps add` does: its row, and its app.yml's policy accepted."""
    store.add_app(app)
    policy = extract(config_in(Path(app.source), app.name))
    store.accept_policy(app.name, policy, commit=None, user=app.created_by)
