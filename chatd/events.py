"""What happens in the room, as data: the events the room publishes to the bus.

The room decides *that* something happened (ann said hello); the bus gives it
its place in the room's one order and the time the server accepted it; each
dialect decides the words.  So an event holds no bytes, no protocol verbs and
no clock readings of its own: one ``Said`` is encoded once per dialect and the
same stamp reaches every recipient (and, later, every node).

Like h11's ``_events``: frozen, slotted, built with keywords where that reads
better, and nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Joined:
    """``nick`` logged in to the room."""

    nick: str


@dataclass(frozen=True, slots=True)
class Parted:
    """``nick`` left, for ``reason`` (a QUIT, a dropped connection, a limit)."""

    nick: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Renamed:
    """``old`` is now called ``new``."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Said:
    """``nick`` spoke to the whole room."""

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Walled:
    """An alert to every connection, logged in or not; nick ``*`` is the server."""

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Told:
    """``nick`` spoke privately to ``target`` (the target's nick as the room knows it)."""

    nick: str
    target: str
    text: str


Event: TypeAlias = Joined | Parted | Renamed | Said | Walled | Told


@dataclass(frozen=True, slots=True)
class Stamped:
    """An event as the bus delivered it: its place in the room's order and the
    server's time when the room accepted it (seconds since the epoch, UTC).

    The room never reads a clock; the bus stamps each event exactly once, so
    every recipient of one event sees the same ``seq`` and ``time``.
    """

    seq: int
    time: float
    event: Event
