"""Test doubles of the swarm protocol (``core.swarm.SwarmClient``): not part of the product.

``FakeSwarm`` keeps one Swarm manager in memory for the fast tier, as httpx's
``MockTransport`` stands in for the network. All its state lives on the instance: two fakes
never share anything (an image saved on one carries its behaviour in its own bytes).
Nothing under ``bot``, ``commands`` or ``core`` imports this package; the wheel and the
image leave it out (pyproject.toml, .dockerignore). tests/contract/ runs the same tests
against it and against a real engine, so it cannot tell a different story.
"""

from core.swarm.testing.fake import FakeExec, FakeSwarm
from core.swarm.testing.orchestrator import EXITS_0, HEALTHY, STUCK, UNHEALTHY, Behaviour

__all__ = ["EXITS_0", "HEALTHY", "STUCK", "UNHEALTHY", "Behaviour", "FakeExec", "FakeSwarm"]
