"""Per-turn coalescing: each member of one dialect is written once per reactor turn.

A broadcast is encoded once and appended to the turn's log; at the end of the
turn every member gets the whole log in one write.  That turns 10,000 logins
(each a JOIN to everyone, O(N^2) lines) from one ``transport.write`` per line
per member into one per turn per member.

Order is the one thing to get right.  A line sent to one member alone (a reply,
a TELL) must come after the broadcasts that member was due before it, so a
direct send first hands over the member's share of the log and moves the
member's *mark* to the end of it.  A member who joins mid-turn is marked at
the end of the log, so it hears only what was broadcast after it joined.

Without a scheduler every broadcast is written at once: the same order,
without the coalescing, which keeps pure tests free of a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chatd.stats import Stats


class Sink(Protocol):
    """Where a member's bytes go: in the server, its transport."""

    def write(self, data: bytes) -> None: ...


Scheduler = Callable[[Callable[[], None]], object]


class Outbox:
    """The audience of one dialect's broadcasts, and their per-turn log."""

    def __init__(self, schedule: Scheduler | None = None, stats: Stats | None = None) -> None:
        self._schedule = schedule
        self.stats = stats if stats is not None else Stats()
        # Each sink's ``write``, looked up once when it joins: the flush
        # calls it once per member per turn, the server's hottest line.
        self._audience: dict[Sink, Callable[[bytes], None]] = {}
        self._log: list[bytes] = []
        self._marks: dict[Sink, int] = {}
        self._flush_due = False
        # Sends made by a write during ``flush`` wait here until every sink
        # has had its share, so none overtakes a broadcast it was due.
        # An int instead of bytes: skip the log's line at that index.
        self._held: list[tuple[Sink, bytes | int]] | None = None
        # Sinks removed by a write during ``flush``: they get no more.
        self._gone: set[Sink] = set()

    def __len__(self) -> int:
        return len(self._audience)

    def __contains__(self, sink: Sink) -> bool:
        return sink in self._audience

    def add(self, sink: Sink) -> None:
        """Let ``sink`` hear broadcasts from now on."""
        self._audience[sink] = sink.write
        self._gone.discard(sink)
        if self._log:
            self._marks[sink] = len(self._log)

    def remove(self, sink: Sink) -> None:
        """Stop broadcasting to ``sink``; what it was still due is dropped."""
        if self._audience.pop(sink, None) is not None and self._held is not None:
            self._gone.add(sink)
        self._marks.pop(sink, None)

    def broadcast(self, data: bytes, skip: Sink | None = None) -> None:
        """Send the same bytes to the whole audience, this turn; all but
        ``skip``, if given (an IRC client is not sent its own line back)."""
        if skip is not None and skip in self._audience:
            self._broadcast_past(data, skip)
            return
        if self._schedule is None:
            audience = list(self._audience.values())
            self.stats.deliveries += len(audience)
            self.stats.bytes_out += len(data) * len(audience)
            for write in audience:
                write(data)
            return
        self._log.append(data)
        if not self._flush_due:
            self._flush_due = True
            self._schedule(self.flush)

    def _broadcast_past(self, data: bytes, skip: Sink) -> None:
        """``broadcast`` to all but ``skip``: it is handed what it is due
        now, and its mark moves past the new line, so it keeps its order
        and only this one line is left out."""
        if self._schedule is None:
            others = [write for sink, write in self._audience.items() if sink is not skip]
            self.stats.deliveries += len(others)
            self.stats.bytes_out += len(data) * len(others)
            for write in others:
                write(data)
            return
        if self._held is not None:
            # Inside a flush nothing is written until every sink has had
            # its share: ``skip`` passes over this line once the flush is done.
            self.broadcast(data)
            self._held.append((skip, len(self._log) - 1))
            return
        self.catch_up(skip)
        self.broadcast(data)
        self._marks[skip] = len(self._log)

    def _pass_over(self, sink: Sink, index: int) -> None:
        """Write ``sink`` the log up to line ``index``, and move its mark past it."""
        if sink not in self._audience:
            return
        mark = self._marks.get(sink, 0)
        if mark < index:
            share = b"".join(self._log[mark:index])
            self.stats.deliveries += index - mark
            self.stats.bytes_out += len(share)
            sink.write(share)
        self._marks[sink] = max(mark, index + 1)  # never back: nothing twice

    def send(self, sink: Sink, data: bytes) -> None:
        """Send bytes to one sink, after the broadcasts it is due."""
        if self._held is not None:
            self._held.append((sink, data))
            return
        if self._log and sink in self._audience:
            mark = self._marks.get(sink, 0)
            self._marks[sink] = len(self._log)
            if mark < len(self._log):
                self.stats.deliveries += len(self._log) - mark
                data = b"".join(self._log[mark:]) + data
        if data:
            self.stats.bytes_out += len(data)
            sink.write(data)

    def catch_up(self, sink: Sink) -> None:
        """Write ``sink`` the broadcasts it is due now, so it can leave this
        outbox for another without losing or repeating any.  Not called
        from inside a write during ``flush`` (a dialect switch comes from a
        line the peer sent, never from a write)."""
        self.send(sink, b"")

    def flush(self) -> None:
        """Write the turn's log to everyone who has not had it yet."""
        self._flush_due = False
        log, marks = self._log, self._marks
        if not log:
            return
        self._log, self._marks = [], {}
        whole = b"".join(log)
        held: list[tuple[Sink, bytes | int]] = []
        self._held = held
        gone = self._gone
        try:
            if not marks:
                # The common turn: nobody joined or was answered mid-turn, so
                # everyone gets the same bytes and the loop is one call each.
                stats = self.stats
                stats.deliveries += len(log) * len(self._audience)
                stats.bytes_out += len(whole) * len(self._audience)
                for sink, write in list(self._audience.items()):
                    if gone and sink in gone:
                        continue
                    write(whole)
            else:
                self._flush_marked(log, marks, whole, gone)
        finally:
            self._held = None
            gone.clear()
        for sink, data in held:
            if isinstance(data, int):
                self._pass_over(sink, data)
            else:
                self.send(sink, data)

    def _flush_marked(self, log: list[bytes], marks: dict[Sink, int], whole: bytes,
                      gone: set[Sink]) -> None:
        """Each sink gets the log from its mark on; sinks at one mark share bytes."""
        shares = {0: whole}
        end = len(log)
        for sink, write in list(self._audience.items()):
            mark = marks.get(sink, 0)
            if mark < end and not (gone and sink in gone):
                share = shares.get(mark)
                if share is None:
                    share = shares[mark] = b"".join(log[mark:])
                self.stats.deliveries += end - mark
                self.stats.bytes_out += len(share)
                write(share)
