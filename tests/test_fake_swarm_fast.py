"""The fake swarm keeps all its state on the instance: two fakes share nothing, and an image
carried from one to the other (save, load) carries what its tasks do in its own bytes."""

from __future__ import annotations

from core.swarm.testing import UNHEALTHY, FakeSwarm


def test_an_image_carried_between_two_fakes_keeps_its_behaviour():
    builder, runner = FakeSwarm(), FakeSwarm()
    image_id = builder.add_image("shipbot/api:1", UNHEALTHY)
    runner.load_image(builder.save_image("shipbot/api:1"))
    assert runner.image_id("shipbot/api:1") == image_id
    assert runner.behaviours == {image_id: UNHEALTHY}
    assert builder.calls == ["save_image"] and runner.calls == ["load_image", "image_id"]


def test_two_fakes_share_no_state():
    one, other = FakeSwarm(), FakeSwarm()
    one.add_image("web:1")
    one.ensure_network("shipbot-web-production")
    assert (other.images, other.networks, other.behaviours) == ({}, {}, {})
    assert other.image_id("web:1") is None
