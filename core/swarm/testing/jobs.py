"""Swarm jobs (``replicated-job`` mode) in the in-memory fake swarm.

A job service starts one task; ``start_steps`` later the task runs its command, which a test
scripts with ``job_handler(argv, env) -> (exit code, lines printed)`` (by default: exit 0,
nothing printed). Every job run is kept in ``jobs`` as (service name, argv, env).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from core.swarm.testing.orchestrator import LIVE, Orchestrator, Service

JobHandler = Callable[[tuple[str, ...], dict[str, str]], tuple[int, list[str]]]


class FakeJobs(Orchestrator):
    def __init__(self) -> None:
        super().__init__()
        self.job_handler: JobHandler = lambda argv, env: (0, [])
        self.jobs: list[tuple[str, tuple[str, ...], dict[str, str]]] = []

    def services_labelled(self, label: str) -> list[dict[str, Any]]:
        """Every service carrying ``label``: jobs and helpers have no app label. Each is
        read as ``inspect_service`` reads it (so a fake that is down raises)."""
        self._enter("services_labelled")  # type: ignore[attr-defined]  # FakeSwarm's
        named = [name for name, s in self._services.items() if label in s.spec["Labels"]]
        inspect = self.inspect_service  # type: ignore[attr-defined]  # FakeSwarm's
        return [found for found in map(inspect, named) if found is not None]

    def volumes_labelled(self, label: str) -> list[dict[str, Any]]:
        """Every volume carrying ``label`` (a verify's scratch database's, for the sweep)."""
        self._enter("volumes_labelled")  # type: ignore[attr-defined]  # FakeSwarm's
        volumes = self.volumes.values()  # type: ignore[attr-defined]  # FakeSwarm's
        return [copy.deepcopy(v) for v in volumes if label in (v.get("Labels") or {})]

    @staticmethod
    def _is_job(service: Service) -> bool:
        return "ReplicatedJob" in service.spec["Mode"]

    def _keep_replicas(self, service: Service) -> None:
        if not self._is_job(service):
            super()._keep_replicas(service)
        elif not self._tasks_of(service):  # one task, once: no restart
            task = self._start(service, 1)
            if task["Status"]["State"] != "rejected":
                self._logs[task["Status"]["ContainerStatus"]["ContainerID"]] = []  # prints later

    def _advance_tasks(self, service: Service) -> None:
        if not self._is_job(service):
            super()._advance_tasks(service)
            return
        for task in self._tasks_of(service):
            if task["Status"]["State"] not in LIVE:
                continue
            if self.now - self._born[task["ID"]] < self._behaviour(task).start_steps:
                continue
            self._finish_job(service, task)

    def _finish_job(self, service: Service, task: dict[str, Any]) -> None:
        container_spec = task["Spec"]["ContainerSpec"]
        argv = tuple(container_spec.get("Args") or ())
        env = dict(item.partition("=")[::2] for item in container_spec.get("Env", []))
        self.jobs.append((service.spec["Name"], argv, env))
        code, lines = self.job_handler(argv, env)
        container_id = task["Status"]["ContainerStatus"]["ContainerID"]
        self._logs[container_id] = list(lines)
        self.containers[container_id]["State"].update(Status="exited", ExitCode=code)
        # a job done wants nothing more (as the engine says); a failed one, shut down
        task["DesiredState"] = "complete" if code == 0 else "shutdown"
        task["Status"]["ContainerStatus"]["ExitCode"] = code
        if code == 0:
            self._set_state(task, "complete", "finished")
        else:
            self._set_state(task, "failed", "started", Err=f"task: non-zero exit ({code})")
