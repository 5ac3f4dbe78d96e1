"""Servers: the swarms shipbot drives, each behind one swarm client (``swarm.servers``).

``local`` is the engine the control plane runs beside (or ``DOCKER_HOST``: a socket or
``tcp://``, never ``ssh://``: core/swarm/docker_host.py). Others are added from chat: reached
over SSH with the host key pinned in the store, bootstrapped with Fabric (``bootstrap``,
``manage``) and driven with the docker SDK over ``ssh://`` with shipbot's own key and that
pin (``docker_ssh``).
"""
