"""``/metrics``: the node's counters in the Prometheus text format.

The counting is ``chatd.stats`` (plain integers on the hot paths); this
module only reads them at scrape time, through a prometheus_client
collector, so the format is the library's and no request costs the room
anything until someone asks.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatd.node import Node

DOORS = ("tcp", "websocket", "irc")


class NodeCollector(Collector):
    """Every figure of one node, read when scraped."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        node, stats = self._node, self._node.stats
        open_by_door = node.hub.by_door()
        connections = GaugeMetricFamily("chatd_connections", "Open connections, by transport",
                                        labels=["transport"])
        for door in sorted(set(DOORS) | set(open_by_door)):
            connections.add_metric([door], open_by_door.get(door, 0))
        yield connections
        yield GaugeMetricFamily("chatd_users", "Users logged in to the room",
                                value=len(node.room))
        for name, text, value in (
            ("chatd_logins", "Logins (NICK that succeeded)", stats.logins),
            ("chatd_lines_in", "Lines received from clients", stats.lines_in),
            ("chatd_broadcasts", "Room events sent to everyone", stats.broadcasts),
            ("chatd_deliveries", "Lines written to connections", stats.deliveries),
            ("chatd_bytes_out", "Bytes written to connections", stats.bytes_out),
            ("chatd_flood_episodes", "Times a connection started being delayed by flood "
                                     "control", stats.flood_episodes),
        ):
            yield CounterMetricFamily(name, text, value=value)
        cuts = CounterMetricFamily("chatd_cuts", "Connections cut by a limit, by reason",
                                   labels=["reason"])
        for reason, count in sorted(stats.cuts.items()):
            cuts.add_metric([reason], count)
        yield cuts
        refusals = CounterMetricFamily("chatd_refusals", "Connections turned away or timed "
                                       "out before login, by reason", labels=["reason"])
        for reason, count in sorted(stats.refusals.items()):
            refusals.add_metric([reason], count)
        yield refusals
        yield GaugeMetricFamily("chatd_room_split", "1 while this node is cut off from the "
                                "rest of the room (its Redis unreachable), else 0",
                                value=0 if node.bus.notice is None else 1)
        history = node.history
        yield GaugeMetricFamily("chatd_history_lines", "Lines kept for HISTORY",
                                value=len(history) if history is not None else 0)
        yield GaugeMetricFamily("chatd_history_bytes", "Bytes of the lines kept for HISTORY",
                                value=history.bytes if history is not None else 0)


def registry_for(node: Node) -> CollectorRegistry:
    """A registry of this node alone (not the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
