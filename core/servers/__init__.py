"""Servers: the swarms shipbot drives, each behind one swarm client (``swarm.servers``).

``local`` is the engine the control plane runs beside (or ``DOCKER_HOST``). Others are added
from chat: reached over SSH with the host key pinned in the store, bootstrapped with Fabric
(``bootstrap``, ``manage``) and driven with the docker SDK over ``ssh://`` (``docker_ssh``).
"""
