"""The bus: where the room's events get their one order, and where nicks are owned.

The room publishes an event; the bus stamps it once (a sequence number and
the server's time, from an injected clock) and hands the stamped event to
every subscriber, in the order they subscribed.  Nick ownership lives here
too, beside the log, because on more than one node the claim of a nick and
the ``Joined`` it causes must be one atomic step (a Redis script, later):
the nick table and the log can then never disagree.

Claims answer through a callback, not a return value.  ``LocalBus`` answers
at once; a bus on Redis answers when its script returns, and the session
holds that connection's further lines until then.

Rule: a claim that succeeds is answered *before* its ``Joined`` (or
``Renamed``) is published, so the claimer's ``OK NICK`` always precedes the
``JOIN`` everyone hears.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from chatd.events import Event, Joined, Parted, Renamed, Stamped
from chatd.nicks import nick_key

Subscriber = Callable[[Stamped], None]
Answer = Callable[[bool], None]
Done = Callable[[], None]
Clock = Callable[[], float]


class Bus(Protocol):
    """What the room needs from wherever its events and nicks are kept."""

    def subscribe(self, subscriber: Subscriber) -> None:
        """Hear every event published from now on, in the bus's order."""

    @property
    def synchronous(self) -> bool:
        """Whether ``publish`` delivers before it returns (a bus in this process)."""

    @property
    def notice(self) -> str | None:
        """What a user logging in now must be told about the room (a split)."""

    def publish(self, event: Event, done: Done | None = None) -> None:
        """Give ``event`` its stamp and deliver it to every subscriber; then
        call ``done`` (a bus on Redis: once the event came back from the log)."""

    def claim(self, nick: str, answer: Answer) -> None:
        """Take ``nick`` if nobody holds it (ignoring case): answer True, then
        publish ``Joined(nick)``; or answer False."""

    def rename(self, old: str, new: str, answer: Answer) -> None:
        """Move the holder of ``old`` to ``new`` if ``new`` is free (a change of
        case only always is): answer True, then publish ``Renamed``; or False."""

    def release(self, nick: str, reason: str | None) -> None:
        """Free ``nick`` and publish ``Parted(nick, reason)``."""


class Subscribers:
    """A bus's subscribers, each handed every stamped event in order.

    A subscriber that publishes while an event is being delivered (the room
    releasing an orphaned nick) has its event queued, not delivered inside
    the first: every subscriber sees the events in seq order.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._pending: list[Stamped] | None = None

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def deliver(self, stamped: Stamped) -> None:
        if self._pending is not None:
            self._pending.append(stamped)
            return
        self._pending = pending = [stamped]
        try:
            while pending:
                stamped = pending.pop(0)
                for subscriber in self._subscribers:
                    subscriber(stamped)
        finally:
            self._pending = None


class LocalBus:
    """The bus of a single process: a counter, a clock and a dict of nicks."""

    synchronous = True  # publish delivers before it returns: nobody waits
    notice = None  # one process is never split

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._seq = 0
        self._subscribers = Subscribers()
        self._nicks: dict[str, str] = {}

    @property
    def nicks(self) -> list[str]:
        """Every claimed nick, in the order claimed (a rename moves it last)."""
        return list(self._nicks.values())

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def publish(self, event: Event, done: Done | None = None) -> None:
        self._seq += 1
        self._subscribers.deliver(Stamped(self._seq, self._clock(), event))
        if done is not None:
            done()

    def claim(self, nick: str, answer: Answer) -> None:
        key = nick_key(nick)
        if key in self._nicks:
            answer(False)
            return
        self._nicks[key] = nick
        answer(True)
        self.publish(Joined(nick))

    def rename(self, old: str, new: str, answer: Answer) -> None:
        key, old_key = nick_key(new), nick_key(old)
        if key != old_key and key in self._nicks:
            answer(False)
            return
        self._nicks.pop(old_key, None)
        self._nicks[key] = new
        answer(True)
        self.publish(Renamed(old, new))

    def release(self, nick: str, reason: str | None) -> None:
        self._nicks.pop(nick_key(nick), None)
        self.publish(Parted(nick, reason))
