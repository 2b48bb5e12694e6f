"""``/metrics`` read from a node, without sockets."""

from __future__ import annotations

from twisted.internet.task import Clock

from chatd.config import Config
from chatd.metrics import registry_for, render
from chatd.node import Node
from chatd.redisbus import RedisBus


def figure(node: Node, name: str) -> float:
    for line in render(registry_for(node)).decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_a_single_node_is_never_split() -> None:
    assert figure(Node(Config(), Clock()), "chatd_room_split") == 0


def test_a_node_on_redis_says_when_it_is_split_and_when_whole_again() -> None:
    """An operator sees the split (Redis unreachable past the node's patience)."""
    node = Node(Config(redis="redis://127.0.0.1:1/0"), Clock())
    bus = node.bus
    assert isinstance(bus, RedisBus)
    bus.registered("7", "epoch", "0-0", [])
    assert figure(node, "chatd_room_split") == 0
    bus.went_down()
    assert figure(node, "chatd_room_split") == 1
    bus.came_up(resumed=True)
    assert figure(node, "chatd_room_split") == 0
