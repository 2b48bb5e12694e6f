"""What the server has done, counted as it happens, for ``/metrics``.

Plain integers on one slotted object that the node owns and the hot paths
add to: an addition per flush or per line costs nothing measurable, where a
Prometheus client counter takes a lock per increment.  ``chatd.metrics``
reads these at scrape time and words them for Prometheus.  Pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    """Counters since the server started; they only grow."""

    logins: int = 0
    lines_in: int = 0        # lines handed to a dialect, from every connection
    broadcasts: int = 0      # room events sent to everyone (once each, whatever the audience)
    deliveries: int = 0      # lines written to connections: an event to N members is N
    bytes_out: int = 0       # bytes written to connections by the fan-out and replies
    flood_episodes: int = 0  # a connection started being delayed by flood control
    cuts: Counter[str] = field(default_factory=Counter)      # connections cut, by reason
    refusals: Counter[str] = field(default_factory=Counter)  # turned away or timed out, by reason
