"""Two benchmark runs on one engine never share a name: every benchmark that makes Docker
objects names them with its run's tag (benchmarks/_unique.py), so neither removes the
other's services, networks, volumes or images."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from benchmarks._unique import RUN, unique
from core.names import APP_NAME_RE

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def reaches_the_engine(path: Path) -> bool:
    """Imports the Docker SDK, or runs the docker CLI (an argv word "docker")."""
    words = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
    return "docker" in imports(path) or "docker" in words


def test_every_benchmark_that_makes_engine_objects_names_them_with_its_run():
    engine = [p for p in sorted(BENCHMARKS.glob("[!_]*.py")) if reaches_the_engine(p)]
    # the others time the CLI's start and Slack's HTTP acks: nothing on the engine
    assert [p.stem for p in engine] == [
        "backup_stream",
        "cert_latency",
        "deploy_overhead",
        "deploy_scaling",
        "first_run",
        "status_scale",
        "zero_downtime",
    ]
    for path in engine:
        assert "benchmarks._unique" in imports(path), path.name


def test_each_run_has_its_own_tag_and_names_stay_valid():
    def run_tag() -> str:
        done = subprocess.run(
            [sys.executable, "-c", "from benchmarks._unique import RUN; print(RUN)"],
            cwd=BENCHMARKS.parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    first, second = run_tag(), run_tag()
    assert first != second and len(first) == len(second) == 6
    assert unique("bench-overhead") == f"bench-overhead-{RUN}"
    assert APP_NAME_RE.match(unique("bench-scale-serial"))
