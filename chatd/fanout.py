"""Fan-out: each event encoded once per dialect, then handed to that dialect's outbox.

The room says who hears an event (everyone logged in, one member, every
connection); the fan-out turns it into bytes, once per dialect whatever the
number of recipients, and leaves the writing to one ``Outbox`` per dialect,
which keeps the per-turn coalescing and the per-member order.  A dialect with
nobody in its audience costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from chatd.events import Stamped
from chatd.outbox import Outbox, Scheduler
from chatd.stats import Stats

Encoder = Callable[[Stamped], bytes]


class Recipient(Protocol):
    """A session as the fan-out sees it: which dialect it speaks, and where its bytes go."""

    dialect: str

    def write(self, data: bytes) -> None: ...


class Fanout:
    """One outbox and one encoder per dialect; every connection for ``WALL``."""

    def __init__(self, encoders: Mapping[str, Encoder],
                 everyone: Callable[[], Iterable[Recipient]],
                 schedule: Scheduler | None = None, stats: Stats | None = None,
                 *, no_echo: Iterable[str] = ()) -> None:
        self.stats = stats if stats is not None else Stats()
        self._encoders = dict(encoders)
        # Dialects whose speakers are not sent their own lines back (IRC).
        self._no_echo = frozenset(no_echo)
        self._outboxes = {name: Outbox(schedule, self.stats) for name in encoders}
        self._everyone = everyone
        # (encoder, outbox) pairs, so a broadcast does no dict lookups.
        self._pairs = [(self._encoders[name], self._outboxes[name]) for name in encoders]

    def outbox(self, dialect: str) -> Outbox:
        """The outbox of one dialect (for tests and the send path)."""
        return self._outboxes[dialect]

    # --- the room's audience ---

    def add(self, member: Recipient) -> None:
        """``member`` hears broadcasts from now on."""
        self._outboxes[member.dialect].add(member)

    def remove(self, member: Recipient) -> None:
        """``member`` hears no more broadcasts; what it was still due is dropped."""
        self._outboxes[member.dialect].remove(member)

    def move(self, member: Recipient, dialect: str) -> None:
        """From now on, encode ``member``'s events for ``dialect`` (another
        wording of the same protocol, like v1 with ``@time`` prefixes).
        What it was due in the old wording is written first, so nothing is
        lost or heard twice."""
        old = self._outboxes[member.dialect]
        if member in old:
            old.catch_up(member)
            old.remove(member)
            member.dialect = dialect
            self._outboxes[dialect].add(member)
        else:
            member.dialect = dialect

    def broadcast(self, stamped: Stamped, speaker: Recipient | None = None) -> None:
        """One event to everyone logged in: encoded once per dialect.  A
        ``speaker`` whose dialect does not echo (IRC) does not hear it."""
        self.stats.broadcasts += 1
        if speaker is not None and speaker.dialect not in self._no_echo:
            speaker = None
        for encode, outbox in self._pairs:
            if len(outbox):
                outbox.broadcast(encode(stamped), speaker)

    def tell(self, member: Recipient, stamped: Stamped) -> None:
        """One event to one member, after the broadcasts it is due."""
        self._outboxes[member.dialect].send(member, self._encoders[member.dialect](stamped))

    def wall(self, stamped: Stamped) -> None:
        """One event to every connection, logged in or not.  Pending broadcasts
        go first, so nobody sees them reordered."""
        self.flush()
        encoded: dict[str, bytes] = {}
        stats = self.stats
        for recipient in list(self._everyone()):
            dialect = recipient.dialect
            data = encoded.get(dialect)
            if data is None:
                data = encoded[dialect] = self._encoders[dialect](stamped)
            stats.deliveries += 1
            stats.bytes_out += len(data)
            recipient.write(data)

    # --- replies ---

    def send(self, member: Recipient, data: bytes) -> None:
        """Bytes to one member (a reply), after the broadcasts it is due."""
        self._outboxes[member.dialect].send(member, data)

    def flush(self) -> None:
        """Write every outbox's pending broadcasts now."""
        for outbox in self._outboxes.values():
            outbox.flush()
