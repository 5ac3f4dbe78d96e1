"""Swarm's own work, in memory, for ``core.swarm.testing.FakeSwarm``: tasks that start, pass or
fail their health check and end; the orchestrator that keeps the replica count; the updater
that replaces tasks in batches of ``UpdateConfig.Parallelism`` (0: all), start-first or
stop-first, and on a task's failure takes the ``FailureAction`` (rollback, whose own
failure takes ``RollbackConfig``'s: pause; or pause). One ``step()`` is one second.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

EPOCH = 1_700_000_000.0
HISTORY = 5  # ended tasks Swarm keeps per slot (its TaskHistoryRetentionLimit default)
ENDED = {"complete", "failed", "rejected", "shutdown"}
LIVE = {"starting", "running"}


@dataclass(frozen=True)
class Behaviour:
    """What a task of an image does ``start_steps`` steps after it starts (or, for a task
    already running when the behaviour is set, at the next step)."""

    kind: Literal["healthy", "unhealthy", "exits_0", "stuck"] = "healthy"
    start_steps: int = 1
    probe_output: str = "wget: can't connect to remote host (127.0.0.1): Connection refused"
    log: tuple[str, ...] = ("listening on :8080",)


HEALTHY = Behaviour()
UNHEALTHY = Behaviour("unhealthy", log=("listening on :9999",))
EXITS_0 = Behaviour("exits_0", log=("listening on :9999", "SIGTERM: shutting down"))
STUCK = Behaviour("stuck", log=("waiting for the database",))


def stamp(seconds: float) -> str:
    """The engine's timestamp format: RFC 3339 with nanoseconds, in UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class Rollout:
    config: dict[str, Any]  # UpdateConfig, or RollbackConfig when rolling back
    rolling_back: bool
    started: set[str] = field(default_factory=set)  # tasks this rollout started
    batch: list[str] = field(default_factory=list)  # start-first: new tasks not yet counted


@dataclass
class Service:
    id: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    version: int = 1
    previous: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    rollout: Rollout | None = None


class Orchestrator:
    """The state of one swarm (services, tasks, containers, images) and its clock."""

    def __init__(self) -> None:
        self.now = EPOCH
        self.images: dict[str, str] = {}  # ref -> image id
        self.behaviours: dict[str, Behaviour] = {}  # image id -> what its tasks do
        self.containers: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, list[str]] = {}  # container id -> what it printed
        self._services: dict[str, Service] = {}
        self._tasks: list[dict[str, Any]] = []
        self._born: dict[str, float] = {}  # task id -> when it last (re)started
        self._ids = itertools.count(1)

    # scripting
    def add_image(self, ref: str, behaviour: Behaviour = HEALTHY) -> str:
        image_id = f"sha256:{next(self._ids):064x}"
        self.images[ref] = image_id
        self.behaviours[image_id] = behaviour
        return image_id

    def behave(self, ref: str, behaviour: Behaviour) -> None:
        """From the next step, tasks of ``ref``'s image (whatever its tags) do ``behaviour``."""
        image_id = self.images[ref]
        self.behaviours[image_id] = behaviour
        for task in self._tasks:
            if self._image_id(task) == image_id and task["Status"]["State"] == "running":
                self._born[task["ID"]] = self.now

    def step(self) -> None:
        """One second of Swarm's work: tasks start or fail, rollouts move a batch on."""
        self.now += 1.0
        for service in self._services.values():
            self._advance_tasks(service)
            if service.rollout is not None:
                self._advance_rollout(service)
            else:
                self._keep_replicas(service)
        self._prune_history()

    def settle(self, max_steps: int = 100) -> None:
        """Step until no rollout is under way (Swarm carrying on while nobody watches)."""
        for _ in range(max_steps):
            if all(s.rollout is None for s in self._services.values()):
                return
            self.step()
        raise AssertionError(f"the swarm did not settle in {max_steps} steps")

    def _tasks_of(self, service: Service) -> list[dict[str, Any]]:
        return [t for t in self._tasks if t["ServiceID"] == service.id]

    def _image_id(self, task: dict[str, Any]) -> str | None:
        image = task["Spec"]["ContainerSpec"]["Image"]
        return self.images.get(image) or self.images.get(image.split("@", 1)[0])

    def _behaviour(self, task: dict[str, Any]) -> Behaviour:
        return self.behaviours.get(self._image_id(task) or "", HEALTHY)

    def _lines(self, container_id: str) -> list[str]:
        return list(self._logs.get(container_id, []))

    def _start(self, service: Service, slot: int) -> dict[str, Any]:
        template = copy.deepcopy(service.spec["TaskTemplate"])
        task_id, container_id = f"task{next(self._ids)}", f"{next(self._ids):064x}"
        if not self._room(service):  # Swarm's scheduler: the task waits for a node
            return self._task(
                service,
                slot,
                template,
                task_id,
                State="pending",
                Message="pending task scheduling",
                Err="no suitable node (max replicas per node limit exceed)",
            )
        task = self._task(
            service,
            slot,
            template,
            task_id,
            State="starting",
            Message="starting",
            ContainerStatus={"ContainerID": container_id},
        )
        self._born[task_id] = self.now
        image = template["ContainerSpec"]["Image"]
        if self._image_id(task) is None:  # pruned, never pulled: the engine rejects the task
            task["DesiredState"] = "shutdown"
            task["Status"]["ContainerStatus"] = {"ContainerID": "", "ExitCode": 0}
            self._set_state(task, "rejected", "preparing", Err=f"No such image: {image}")
            return task
        behaviour = self._behaviour(task)
        container: dict[str, Any] = {
            "Id": container_id,
            "Config": {"Image": image},
            "State": {"Status": "running", "ExitCode": 0},
        }
        self._logs[container_id] = list(behaviour.log)
        check = template["ContainerSpec"].get("Healthcheck")
        if check:
            container["Config"]["Healthcheck"] = copy.deepcopy(check)
            container["State"]["Health"] = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.containers[container_id] = container
        return task

    def ready_nodes(self) -> int:
        """How many nodes can take tasks (the watch side knows its node list)."""
        return 1

    def _room(self, service: Service) -> bool:
        """``Placement.MaxReplicas`` per Ready node leaves room for one more task."""
        cap = (service.spec["TaskTemplate"].get("Placement") or {}).get("MaxReplicas")
        placed = [t for t in self._tasks_of(service) if t["Status"]["State"] in LIVE]
        return not cap or len(placed) < cap * self.ready_nodes()

    def _task(
        self, service: Service, slot: int, template: dict[str, Any], task_id: str, **status: Any
    ) -> dict[str, Any]:
        """A new task of ``service`` in ``slot``, listed, with ``status``'s fields."""
        task = {
            "ID": task_id,
            "ServiceID": service.id,
            "Slot": slot,
            "CreatedAt": stamp(self.now),
            "UpdatedAt": stamp(self.now),
            "DesiredState": "running",
            "Spec": template,
            "Status": {"Timestamp": stamp(self.now), **status},
        }
        self._tasks.append(task)
        return task

    def _set_state(self, task: dict[str, Any], state: str, message: str, **extra: Any) -> None:
        task["UpdatedAt"] = stamp(self.now)
        task["Status"].update(Timestamp=stamp(self.now), State=state, Message=message, **extra)

    def _advance_tasks(self, service: Service) -> None:
        for task in self._tasks_of(service):
            state = task["Status"]["State"]
            behaviour = self._behaviour(task)
            if state not in LIVE or self.now - self._born[task["ID"]] < behaviour.start_steps:
                continue
            container = self.containers[task["Status"]["ContainerStatus"]["ContainerID"]]
            health = container["State"].get("Health")
            if behaviour.kind == "healthy" and state == "starting":
                self._set_state(task, "running", "started")
                if health:
                    health.update(Status="healthy")
                    health["Log"].append({"ExitCode": 0, "Output": "ok"})
            elif behaviour.kind in ("unhealthy", "exits_0"):
                self._end(task, container, behaviour)

    def _end(self, task: dict[str, Any], container: dict[str, Any], behaviour: Behaviour) -> None:
        """The container fails: its health check (Swarm then stops it) or, with none, itself."""
        health = container["State"].get("Health")
        if health is None:
            code = 1  # no health check: the failure is the process's own exit
        else:
            retries = container["Config"]["Healthcheck"].get("Retries") or 3
            probe = {"ExitCode": 1, "Output": behaviour.probe_output + "\n"}
            health.update(Status="unhealthy", FailingStreak=retries, Log=[probe] * retries)
            code = 0 if behaviour.kind == "exits_0" else 137  # SIGTERM handled, or killed
        container["State"].update(Status="exited", ExitCode=code)
        task["DesiredState"] = "shutdown"
        task["Status"]["ContainerStatus"]["ExitCode"] = code
        if health is None:
            self._set_state(task, "failed", "started", Err=f"task: non-zero exit ({code})")
        elif code == 0:
            self._set_state(task, "complete", "finished")
        else:
            # as the real engine words it: the message stays where the task was
            # (``starting`` when it never passed its check), the error names the check
            error = f"task: non-zero exit ({code}): dockerexec: unhealthy container"
            self._set_state(task, "failed", task["Status"]["Message"], Err=error)

    def _shutdown(self, task: dict[str, Any]) -> None:
        task["DesiredState"] = "shutdown"
        if task["Status"]["State"] in LIVE:
            self._set_state(task, "shutdown", "shutdown")
            container = self.containers[task["Status"]["ContainerStatus"]["ContainerID"]]
            container["State"].update(Status="exited", ExitCode=0)

    def _keep_replicas(self, service: Service) -> None:
        """The orchestrator: as many live tasks as replicas (restart policy ``any``)."""
        live = [t for t in self._tasks_of(service) if t["DesiredState"] == "running"]
        replicas = service.spec["Mode"]["Replicated"]["Replicas"]
        for task in sorted(live, key=lambda t: t["Slot"])[replicas:]:
            self._shutdown(task)
        slots = {t["Slot"] for t in live}
        free = (n for n in itertools.count(1) if n not in slots)
        for _ in range(replicas - len(live)):
            self._start(service, next(free))

    def _advance_rollout(self, service: Service) -> None:
        rollout = service.rollout
        assert rollout is not None
        tasks = self._tasks_of(service)
        ended = [t for t in tasks if t["ID"] in rollout.started and t["Status"]["State"] in ENDED]
        if ended:
            self._fail_rollout(service, rollout, ended[0]["ID"])
            return
        template = service.spec["TaskTemplate"]
        live = [t for t in tasks if t["DesiredState"] == "running"]
        for task in live:  # a task never placed has nothing to stop: it goes first
            if task["Spec"] != template and task["Status"]["State"] == "pending":
                self._shutdown(task)
        live = [t for t in live if t["DesiredState"] == "running"]
        fresh = [t for t in live if t["Spec"] == template]
        stale = sorted((t for t in live if t["Spec"] != template), key=lambda t: t["Slot"])
        if any(t["Status"]["State"] in ("starting", "pending") for t in fresh):
            return  # the updater waits for the batch (for a node, when none has room)
        for task in stale[: len(rollout.batch)]:  # start-first: the batch is up, retire as many
            self._shutdown(task)
        stale, rollout.batch = stale[len(rollout.batch) :], []
        replicas = service.spec["Mode"]["Replicated"]["Replicas"]
        missing = max(len(stale), replicas - len(fresh))
        if missing > 0:
            count = min(rollout.config.get("Parallelism") or missing, missing)
            slots = [t["Slot"] for t in stale[:count]]
            used = {t["Slot"] for t in live}
            free = (n for n in itertools.count(1) if n not in used)
            slots += itertools.islice(free, count - len(slots))
            if rollout.config.get("Order") == "stop-first":
                for task in stale[:count]:
                    self._shutdown(task)
            started = [self._start(service, slot)["ID"] for slot in slots]
            rollout.started.update(started)
            if rollout.config.get("Order") != "stop-first":
                rollout.batch = started
            return
        assert service.status is not None
        state, message = (
            ("rollback_completed", "rollback completed")
            if rollout.rolling_back
            else ("completed", "update completed")
        )
        service.status.update(State=state, CompletedAt=stamp(self.now), Message=message)
        service.rollout = None

    def _fail_rollout(self, service: Service, rollout: Rollout, task_id: str) -> None:
        assert service.status is not None
        action = rollout.config.get("FailureAction", "pause")
        if rollout.rolling_back or action != "rollback":
            state = "rollback_paused" if rollout.rolling_back else "paused"
            message = f"update paused due to failure or early termination of task {task_id}"
            service.status.update(State=state, Message=message)
            service.rollout = None
            return
        assert service.previous is not None
        # Swarm rolls back to the previous spec and keeps none before it
        service.spec, service.previous = service.previous, None
        service.version += 1
        service.updated_at = self.now
        service.status = {
            "State": "rollback_started",
            "StartedAt": stamp(self.now),
            "Message": f"update rolled back due to failure or early termination of task {task_id}",
        }
        service.rollout = Rollout(service.spec["RollbackConfig"], rolling_back=True)

    def _prune_history(self) -> None:
        kept: dict[tuple[str, int], int] = {}
        survivors = []
        for task in reversed(self._tasks):  # newest first
            if task["DesiredState"] != "running" and task["Status"]["State"] in ENDED:
                key = (task["ServiceID"], task["Slot"])
                kept[key] = kept.get(key, 0) + 1
                if kept[key] > HISTORY:
                    container_id = task["Status"]["ContainerStatus"]["ContainerID"]
                    self.containers.pop(container_id, None)
                    self._logs.pop(container_id, None)
                    self._born.pop(task["ID"], None)
                    continue
            survivors.append(task)
        self._tasks = survivors[::-1]
