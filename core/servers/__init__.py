"""Servers: the swarms shipbot drives, each behind one swarm client.

Today there is one, ``local`` (the engine the control plane runs beside, or ``DOCKER_HOST``).
Remote swarms over SSH plug into ``registry.Servers`` without touching deploy code.
"""
