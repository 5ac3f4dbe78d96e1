"""The engine's face: every operation the chat side (or a script) asks of the core.

Each operation lives in its own module (``core.apps``, ``core.deploy.*``) as a function of a
``Plane``; this class only holds the plane and hands calls on. Operations that change the
swarm are async iterators of ``core.events`` whose last event is an ``Outcome``; problems
found before anything changed raise a ``CoreError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.clients import Clients
from core.clock import SYSTEM, Clock
from core.config import BuildConfig, ControlConfig, DataConfig, EdgeConfig
from core.config.parts import DEFAULT_ENV
from core.data.s3 import S3Store
from core.errors import CoreError
from core.events import Event
from core.plane import OffLoop, Plane
from core.secrets import Vault, secret_values
from core.store import App, Release, Store, shipbot_home
from core.store.locks import ttl_seconds
from core.swarm.docker_host import refuse_ssh
from core.swarm.servers import Servers

# Each operation's module is imported in the method that runs it: a command line that runs
# none (``shipbot chat whoami``) loads neither app.yml's model nor the deploy, data and edge
# code and their libraries.
if TYPE_CHECKING:
    from core.appspec import AppConfig
    from core.data import databases
    from core.deploy import status
    from core.deploy.drift import Drift
    from core.deploy.resolve import Resolved
    from core.edge import operate as edge

NETWORK = Clients(s3_factory=S3Store)  # the real clients: boto3's S3, httpx on the network


class Engine:
    def __init__(
        self,
        store: Store,
        servers: Servers | None = None,
        home: Path | None = None,
        vault: Vault | None = None,
        host_paths: Iterable[str] = (),
        server_apps: Mapping[str, Iterable[str]] | None = None,
        edge: EdgeConfig | None = None,
        build: BuildConfig | None = None,
        clock: Clock | None = None,
        clients: Clients = NETWORK,
    ) -> None:
        from core.servers import remote

        home = home or shipbot_home()
        self.plane = Plane(
            store=store,
            vault=vault or Vault.open(home),
            servers=servers or Servers.local(),
            home=home,
            host_paths=tuple(host_paths),
            server_apps={k: tuple(v) for k, v in (server_apps or {}).items()},
            edge=edge or EdgeConfig(),
            build=build or BuildConfig(),
            clock=clock or store.clock,  # one time for the rows and the operations
            clients=clients,
        )
        remote.install(self.plane)  # servers added from chat (`server add`)

    @classmethod
    def open(
        cls,
        home: Path,
        config: ControlConfig,
        servers: Servers | None = None,
        clock: Clock = SYSTEM,
        clients: Clients = NETWORK,
    ) -> Engine:
        """The plane under ``home`` as shipbot.yml says (rooms/root.py is the caller)."""
        if servers is None:  # without a local engine, only the servers added over SSH
            if config.local:  # DOCKER_HOST=ssh://: refused before anything dials it
                refuse_ssh(os.environ)
            servers = Servers.local() if config.local else Servers({})
        return cls(
            Store(home / "shipbot.db", clock=clock),
            servers=servers,
            home=home,
            vault=Vault.open(home, config.secret_key),
            host_paths=config.host_paths,
            server_apps=config.server_apps,
            edge=config.edge,
            build=config.build,
            clock=clock,
            clients=clients,
        )

    @property
    def store(self) -> Store:
        return self.plane.store

    @property
    def clock(self) -> Clock:
        return self.plane.clock

    @property
    def db(self) -> OffLoop:
        """The store's methods as coroutines, for callers on the event loop."""
        return self.plane.db

    @property
    def vault(self) -> Vault:
        return self.plane.vault

    # apps
    def app(self, name: str) -> App:
        from core import apps

        return apps.get_app(self.store, name)

    async def add_app(self, name: str, **source: str | None) -> tuple[App, AppConfig]:
        """Register an app, and accept its app.yml's policy as it stands (an admin's)."""
        from core import apps
        from core.policy import accept as policy_accept

        app, config, commit = await apps.add_app(self.plane, name, **source)  # type: ignore[arg-type]
        await policy_accept.first(self.plane, name, config, commit, app.created_by)
        return app, config

    async def config(self, name: str, ref: str | None = None) -> AppConfig:
        from core import apps

        app = await asyncio.to_thread(self.app, name)
        return (await apps.read_config(self.plane, app, ref))[0]

    # deploy
    async def resolve(
        self, name: str, env: str | None = None, ref: str | None = None, image: str | None = None
    ) -> Resolved:
        from core.deploy.resolve import resolve

        return await resolve(self.plane, name, env, ref, image)

    async def plan(self, resolved: Resolved) -> list[str]:
        from core.deploy import deploy

        return await deploy.plan(self.plane, resolved)

    def deploy(
        self, resolved: Resolved, *, user: str, approved_by: str | None = None
    ) -> AsyncIterator[Event]:
        from core.deploy import deploy

        return deploy.deploy(self.plane, resolved, user=user, approved_by=approved_by)

    def rollback(
        self,
        name: str,
        *,
        user: str,
        env: str | None = None,
        number: int | None = None,
        approved_by: str | None = None,
    ) -> AsyncIterator[Event]:
        from core.deploy import rollback

        return rollback.rollback(
            self.plane, name, env or DEFAULT_ENV, user=user, number=number, approved_by=approved_by
        )

    async def rollback_target(
        self, name: str, env: str | None = None, number: int | None = None
    ) -> Release:
        from core.deploy import rollback

        return await rollback.target(self.plane, name, env or DEFAULT_ENV, number)

    def scale(
        self, name: str, replicas: int, *, user: str, env: str | None = None
    ) -> AsyncIterator[Event]:
        from core.deploy import adjust

        return adjust.scale(self.plane, name, env or DEFAULT_ENV, replicas, user=user)

    def restart(self, name: str, *, user: str, env: str | None = None) -> AsyncIterator[Event]:
        from core.deploy import adjust

        return adjust.restart(self.plane, name, env or DEFAULT_ENV, user=user)

    # reading, each time from Swarm
    async def status(self, name: str | None = None) -> list[status.ServiceStatus]:
        from core.deploy import reconcile, status

        if name is not None:
            await asyncio.to_thread(self.app, name)
        await reconcile.reconcile(self.plane, name)
        return await status.status(self.plane, name)

    async def drift(self, name: str | None = None) -> list[Drift]:
        """What runs that the store did not ask for (of ``name`` when given)."""
        from core.deploy.drift import detect

        if name is not None:
            await asyncio.to_thread(self.app, name)
        return await detect(self.plane, name)

    async def logs(
        self,
        name: str,
        *,
        env: str | None = None,
        tail: int = 50,
        release: int | None = None,
        everything: bool = False,
    ) -> list[str]:
        from core.deploy import status

        await asyncio.to_thread(self.app, name)
        return await status.logs(
            self.plane, name, env or DEFAULT_ENV, tail=tail, release=release, everything=everything
        )

    async def releases(self, name: str, env: str | None = None) -> list[Release]:
        from core.deploy import reconcile
        from core.deploy.verdicts import KEEP_RELEASES

        await asyncio.to_thread(self.app, name)
        with contextlib.suppress(CoreError):  # the engine is away: the records still show
            await reconcile.reconcile(self.plane, name)
        return await self.plane.db.in_thread(
            lambda: self.plane.store.releases(name, env or DEFAULT_ENV, limit=KEEP_RELEASES)
        )

    def interrupted(self) -> list[dict]:
        """On start: changes whose process stopped beating are marked interrupted (their
        releases become unknown until read back from Swarm)."""
        return self.store.interrupt_orphans(stale_after=ttl_seconds())

    async def settle(self) -> None:
        """Releases nobody saw finish, read back from Swarm, when it answers."""
        from core.deploy import reconcile

        with contextlib.suppress(CoreError):  # Swarm is away: status and releases retry
            await reconcile.reconcile(self.plane)

    # the edge: Traefik in front of the swarm
    def proxy_setup(self, server: str | None = None) -> AsyncIterator[Event]:
        from core.edge import operate as edge

        return edge.setup(self.plane, server)

    async def proxy_status(self, server: str | None = None) -> edge.ProxyStatus | None:
        from core.edge import operate as edge

        return await edge.proxy_status(self.plane, server)

    async def routes(self, name: str) -> list[edge.Route]:
        """An app's domains, each probed once through the proxy."""
        from core.edge import operate as edge

        return await edge.routes(self.plane, name)

    # managed databases: core/data/databases.py
    def create_database(
        self,
        kind: str,
        name: str,
        version: str | None,
        *,
        user: str,
        config: DataConfig,
        server: str | None = None,
    ) -> AsyncIterator[Event]:
        from core.data import databases

        return databases.create(self.plane, config, kind, name, version, user=user, server=server)

    def remove_database(self, name: str, *, delete_data: bool) -> AsyncIterator[Event]:
        from core.data import databases

        return databases.remove(self.plane, name, delete_data=delete_data)

    async def database(self, name: str) -> databases.Database:
        from core.data import databases

        return await databases.get(self.plane, name)

    async def list_databases(self) -> list[databases.Database]:
        from core.data import databases

        return await asyncio.to_thread(databases.load_all, self.plane)

    async def database_status(self, name: str) -> databases.DatabaseStatus:
        from core.data import databases

        return await databases.status(self.plane, name)

    async def attach_database(self, name: str, app: str, env: str, *, user: str) -> bool:
        from core.data import databases

        return await databases.attach(self.plane, name, app, env, user=user)

    async def detach_database(self, name: str, app: str, env: str) -> bool:
        from core.data import databases

        return await databases.detach(self.plane, name, app, env)

    # secrets
    def secret_values(self, app: str | None, env: str | None) -> list[str]:
        """What replies about app/env must mask (``core.secrets.secret_values``)."""
        return secret_values(self.store, self.vault, app, env)

    def close(self) -> None:
        self.plane.servers.close()
        self.store.close()

    def run_once(
        self, name: str, argv: Sequence[str], *, user: str, env: str | None = None
    ) -> AsyncIterator[Event]:
        """``argv`` once as a Swarm job on the live release of ``name`` (``run``)."""
        from core.deploy import release_job

        return release_job.run_once(self.plane, name, env or DEFAULT_ENV, argv, user=user)
