"""Helpers of benchmarks/zero_downtime.py: the load loop, the CPU hog and Traefik's task
history. Loopback traffic only; every loop is bounded in count and time."""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import threading
import time

RATE = 120  # requests per second, aimed at
MAX_SECONDS = 240
HOG_SECONDS = 1200  # a hog outlives no run: each busy loop ends by itself after this
HOG_LOOP = (
    "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
)


class Load:
    """GET / with a Host header at RATE per second until stopped (bounded in count and time)."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.sent = self.failed = 0
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]
        self.started = time.monotonic()
        self.seconds = 0.0

    def _one(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": self.host})
            response = conn.getresponse()
            response.read()
            why = None if response.status == 200 else str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            why = type(exc).__name__
        finally:
            conn.close()
        with self._lock:
            self.sent += 1
            if why:
                self.failed += 1
                self.errors[why] = self.errors.get(why, 0) + 1

    def _run(self) -> None:
        gap = len(self._threads) / RATE
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            self._one()
            time.sleep(max(0.0, gap - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def finish(self, at_least: int) -> None:
        """Stop once ``at_least`` requests were sent (or the time bound passed)."""
        deadline = time.monotonic() + MAX_SECONDS
        while self.sent < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.monotonic() - self.started

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def cell(self) -> str:
        rps = self.sent / self.seconds if self.seconds else 0
        return f"{self.failed} of {self.sent} ({rps:.0f} rps)"

    def detail(self) -> str:
        return ", ".join(f"{n} × {why}" for why, n in sorted(self.errors.items()))


def until_ok(port: int, host: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/", headers={"Host": host})
            if conn.getresponse().status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{host} never answered through Traefik on :{port}")


class Hog:
    """Two busy-loop processes for as long as the ``with`` block (each also ends by itself
    after HOG_SECONDS); killed on leaving it."""

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Hog:
        code = HOG_LOOP.format(seconds=HOG_SECONDS)
        self._procs = [
            subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.processes)
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.kill()
        for proc in self._procs:
            proc.wait(timeout=10)


def task_history(service: str) -> list[tuple[str, str]]:
    """Traefik's tasks as `docker service ps` lists them: (id, desired state)."""
    out = subprocess.run(
        ["docker", "service", "ps", "--no-trunc", "--format", "{{.ID}} {{.DesiredState}}", service],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    pairs = (line.split(" ", 1) for line in out.splitlines() if line.strip())
    return [(task, desired) for task, desired in pairs]


def restarted(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> str:
    """'no' when the task that ran before still runs and no task was added; else what."""
    running = [task for task, desired in before if desired == "Running"]
    new = [task for task, _ in after if task not in {t for t, _ in before}]
    still = [task for task, desired in after if desired == "Running"]
    if not new and running and still == running:
        return f"no (task {running[0][:12]} ran throughout)"
    return f"YES: {len(new)} new task(s) {[t[:12] for t in new]}, running now {still}"
