"""CLI start-up: `shipbot --version`, `shipbot chat whoami` and `shipbot health` beside
`python -c pass`, side by side.

Each is run as the installed `shipbot` script runs (``from bot.cli import main``) by the
same interpreter, RUNS times, interleaved so a busy moment hurts all of them alike; prints
each median, its ratio to `python -c pass`, and the goals: `--version` < 0.3 s, `chat
whoami` < 0.5 s, `health` < 0.2 s. `whoami` reads a fresh SHIPBOT_HOME (made here, removed
after) and never talks to the engine. The children write and use bytecode caches, as an
installed shipbot does; ``--no-bytecode`` keeps PYTHONDONTWRITEBYTECODE=1 when it is set
(caches an earlier run wrote are still read: remove ``__pycache__`` to time a cold start).

    .venv/bin/python benchmarks/cli_start.py [RUNS] [--no-bytecode]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "import sys; from bot.cli import main; sys.argv[0] = 'shipbot'; main()"
RUNS = 11
USER = "console:bench"
# name, argv after the interpreter, goal in seconds (None: the baseline)
CASES: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    ("python -c pass", ("-c", "pass"), None),
    ("shipbot --version", ("-c", SCRIPT, "--version"), 0.3),
    ("shipbot chat whoami", ("-c", SCRIPT, "chat", "whoami", "--as", USER), 0.5),
    ("shipbot health", ("-c", SCRIPT, "health"), 0.2),
)


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run: on a busy machine the CPU time is what the run would
    take alone, the wall time what it took beside everything else."""
    spent = cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    # health exits 1 without a running `serve`: it answered, which is what is timed
    if done.returncode not in (0, 1) or (done.returncode == 1 and "health" not in argv):
        raise SystemExit(f"{' '.join(argv[-4:])} failed ({done.returncode}): {done.stderr}")
    return elapsed, cpu() - spent


def main() -> int:
    counts = [arg for arg in sys.argv[1:] if arg.isdigit()]
    runs = int(counts[0]) if counts else RUNS
    with tempfile.TemporaryDirectory(prefix="shipbot-cli-start-") as home:
        Path(home, "shipbot.yml").write_text(f"admins: [{USER}]\n")
        env = {**os.environ, "SHIPBOT_HOME": home, "DOCKER_HOST": "unix:///nonexistent.sock"}
        # as an installed shipbot runs: pip writes the bytecode at install, Python on first
        # import; without it every run compiles some 200 modules (say so, and measure that)
        if env.pop("PYTHONDONTWRITEBYTECODE", None) and "--no-bytecode" in sys.argv:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        cached = "PYTHONDONTWRITEBYTECODE" not in env
        for _name, argv, _goal in CASES:  # warm the page cache and the bytecode caches
            timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name, _argv, _goal in CASES}
        cpus: dict[str, list[float]] = {name: [] for name, _argv, _goal in CASES}
        for _ in range(runs):
            for name, argv, _goal in CASES:
                wall, used = timed(argv, env)
                times[name].append(wall)
                cpus[name].append(used)
    base = statistics.median(times[CASES[0][0]])
    load = os.getloadavg()[0]
    print(
        f"{runs} runs each, interleaved; load average {load:.2f} on {os.cpu_count()} CPUs; "
        f"bytecode caches {'used' if cached else 'off (PYTHONDONTWRITEBYTECODE=1)'}"
    )
    print(f"{'':22} {'median':>9} {'min':>9} {'× pass':>7} {'CPU':>9}  goal (wall median)")
    failed = False
    for name, _argv, goal in CASES:
        median = statistics.median(times[name])
        verdict = ""
        if goal is not None:
            ok = median < goal
            failed |= not ok
            verdict = f"< {goal:.1f} s {'✅' if ok else '❌'}"
        print(
            f"{name:22} {median * 1000:7.0f}ms {min(times[name]) * 1000:7.0f}ms "
            f"{median / base:6.1f}× {statistics.median(cpus[name]) * 1000:7.0f}ms  {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
