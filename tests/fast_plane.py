"""The real dispatcher and engine on an in-memory swarm: the fast tier's control plane.

Everything is real (store, vault, policy, approvals, locks, the deploy path) except the
Swarm manager, which is a ``FakeSwarm``. Rollouts are watched on the fake's steps (the
engine's clock is ``SwarmSteps``), so a deploy finishes in as many Swarm steps as it takes,
without real time passing.
"""

from __future__ import annotations

from pathlib import Path

from commands.dispatch import Dispatcher
from core.apps import config_in
from core.config import ControlConfig
from core.engine import Engine
from core.policy.extract import extract
from core.secrets import Vault
from core.store import App, Store
from core.swarm import running_tasks
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.clock import SwarmSteps


def fake_swarm(*images: str) -> FakeSwarm:
    """A swarm that knows ``images`` (healthy, pulled from its registry); a plane watches
    its rollouts on ``SwarmSteps(swarm)``."""
    swarm = FakeSwarm()
    for ref in images:
        swarm.publish(ref)
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
        clock=SwarmSteps(swarm),
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
