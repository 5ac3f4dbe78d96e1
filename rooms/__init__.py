"""Capabilities as rooms, and the composition root that runs them.

Each room (``rooms/deploy.py``, ``edge``, ``data``, ``servers``, ``watch``, ``pipelines``,
``control``) declares one ``Capability``: its shipbot.yml sections, its tables and
migrations, its chat command family and its periodic work. ``rooms/registry.py`` lists
them, one line each; ``rooms/root.py`` builds the ``Plane`` and runs what they declare on
one scheduler. Adding a capability touches its room and one registry line.
"""
