"""One connection of any transport: framer -> limits -> dialect -> session.

A transport adapter (TCP today; WebSocket and IRC listeners later) gives a
``Link`` and feeds bytes; everything a connection gets by construction lives
here and in the hub: the line limit, flood lag, the receive cap, the send
queue cut, the registration deadline, shutdown.  Pure: time comes from the
node's injected clock, and the transport only through ``Link``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chatd.framing import TOO_LONG, LineFramer
from chatd.limits import DelayedCall, FloodGate
from chatd.room import CONNECTION_LOST

if TYPE_CHECKING:
    from chatd.errors import ChatError
    from chatd.node import Node
    from chatd.session import Session

FLOOD = "flood"
SENDQ_EXCEEDED = "send queue exceeded"


class Link(Protocol):
    """What a transport adapter offers its connection."""

    def write(self, data: bytes) -> None:
        """Bytes to the peer; the adapter applies the send-queue rule."""

    def pause(self) -> None:
        """Stop reading from the peer (its bytes wait in its own buffers)."""

    def resume(self) -> None:
        """Read again."""

    def close(self) -> None:
        """Close once what was written has been sent."""

    def abort(self) -> None:
        """Close now, dropping what is queued."""

    @property
    def peer(self) -> str:
        """Who is at the other end, for the logs."""


class Dialect(Protocol):
    """The words a connection speaks (``dialects.line``, ``dialects.irc``)."""

    @property
    def session(self) -> Session: ...

    def greet(self) -> None:
        """The first words to a new connection."""

    def line_received(self, raw: bytes) -> None:
        """One line, its line end removed."""

    def line_too_long(self) -> None:
        """A line over the limit was dropped."""

    def flooding(self, rate: float) -> None:
        """The peer sends faster than ``rate`` lines a second: its lines wait."""

    def refused(self, error: ChatError) -> None:
        """Tell the peer a request was refused (the transport found it bad)."""

    def connection_lost(self) -> None:
        """The transport is gone."""


class Connection:
    """The transport-neutral life of one connection."""

    # Slots: ten thousand idle connections are the memory target.
    __slots__ = ("node", "link", "door", "cut_reason", "dialect",
                 "_framer", "_flood", "_lag", "_waiting", "_draining", "_pending")

    def __init__(self, node: Node, link: Link, door: str = "tcp") -> None:
        config = node.config
        self.node = node
        self.link = link
        self.door = door  # which transport, for /metrics
        self.cut_reason: str | None = None
        # Made when bytes arrive and dropped once it holds none: an idle
        # connection (most of ten thousand) keeps no framer.
        self._framer: LineFramer | None = None
        self._flood = (FloodGate(config.flood_burst, config.flood_rate, node.clock)
                       if config.flood_rate else None)
        self._lag: DelayedCall | None = None
        self._waiting = False  # reading paused for the session
        self._draining = False
        self._pending: bytes | None = None  # a line taken, waiting for its token
        self.dialect: Dialect = node.make_dialect(self)

    @property
    def peer(self) -> str:
        """Who is at the other end, for the logs."""
        return self.link.peer

    @property
    def session(self) -> Session:
        return self.dialect.session

    @property
    def write(self) -> Callable[[bytes], None]:
        """The link's own write callable (the session keeps it: the fan-out
        writes through it once per member per turn, with nothing between)."""
        return self.link.write

    @property
    def max_line(self) -> int:
        """The longest line this connection's dialect takes."""
        return self.node.max_line(self.door)

    @property
    def buffered(self) -> int:
        """Bytes read from the peer and not yet handled."""
        return self._framer.buffered if self._framer is not None else 0

    @property
    def holding(self) -> bool:
        """Lines wait for a flood token or for the bus to answer a claim."""
        return self._lag is not None or self.session.waiting

    # --- what the dialect and the fan-out call (``line.Peer``) ---

    def send(self, data: bytes) -> None:
        """A reply, after the broadcasts this connection is due."""
        self.node.fanout.send(self.session, data)

    def close(self) -> None:
        self.link.close()

    def speak(self, dialect: str) -> None:
        """Word this connection's room events for ``dialect`` from now on."""
        self.node.fanout.move(self.session, dialect)

    def ready(self) -> None:
        """The session stopped waiting for the bus: go on with held lines.

        Answered at once (``LocalBus``), this comes inside the line loop,
        which simply goes on.  Answered later, it comes while the bus is
        delivering the claim's ``JOIN``: the held lines then wait for the
        next turn, or a reply to one of them (a ``PONG``) would overtake the
        broadcast of an earlier one (its ``SAY``), which the bus is still
        queueing behind that ``JOIN``.
        """
        if self._draining:
            return
        if self._waiting:
            self._waiting = False
            self.link.resume()  # never lagged meanwhile: no line was taken
        self.node.clock.callLater(0, self._drain)

    # --- from the transport ---

    def opened(self, host: str | None) -> None:
        """Greet the peer from ``host``, and admit it or turn it away."""
        log = self.node.log
        refusal = self.node.hub.admit(self, host)
        self.dialect.greet()
        if refusal is not None:
            log.info("refused {peer}: {why}", peer=self.peer, why=refusal)
            self.session.close(refusal)
            return
        log.info("connection from {peer}", peer=self.peer)

    def data_received(self, data: bytes) -> None:
        """Bytes from the peer: frame them, and act on every line allowed now."""
        if self.session.closed:
            return  # after QUIT or a cut, nothing more is read (nor kept)
        framer = self._framer
        if framer is None:
            framer = self._framer = LineFramer(self.max_line)
        framer.feed(data)
        self._drain()
        if framer.buffered > self.node.config.max_recvq and not self.session.closed:
            self.node.log.info("cutting {peer}: backlog of {size} bytes",
                               peer=self.peer, size=framer.buffered)
            framer.clear()
            self.node.stats.cuts[FLOOD] += 1
            self.session.close(FLOOD)

    def _drain(self) -> None:
        """Hand lines to the dialect until there are none, or the flood gate
        or a claim in flight says wait.  Not re-entered: a claim answered
        during a line only lets the loop go on."""
        if self._draining:
            return
        self._draining = True
        try:
            self._drain_lines()
        finally:
            self._draining = False

    def _drain_lines(self) -> None:
        framer, dialect, session, flood = self._framer, self.dialect, self.session, self._flood
        stats = self.node.stats
        if framer is None:
            return
        while not session.closed and self._lag is None and not session.waiting:
            line = self._pending
            if line is None:
                taken = framer.next_line()
                if taken is None:
                    break
                if taken is TOO_LONG:
                    dialect.line_too_long()
                    continue
                assert isinstance(taken, bytes)
                line = taken
            if flood is not None and not self._admit(flood, line):
                break
            self._pending = None
            stats.lines_in += 1
            dialect.line_received(line)
        if session.closed or (framer.idle and self._pending is None):
            self._framer = None  # nothing left to read, or nothing kept
        if session.waiting and not self._waiting and not session.closed:
            self._waiting = True
            self.link.pause()
        if session.nick is not None:
            self.node.hub.registered(self)  # a dict lookup once it has been

    def _admit(self, flood: FloodGate, line: bytes) -> bool:
        """Take a token for ``line``, or keep it and pause reading until one returns."""
        wait, first = flood.admit()
        if not wait:
            return True
        self._pending = line
        if first:
            self.node.stats.flood_episodes += 1
            self.dialect.flooding(flood.rate)
        self.link.pause()
        self._lag = self.node.clock.callLater(wait, self._lag_over)
        return False

    def _lag_over(self) -> None:
        self._lag = None
        if not self.session.closed:
            self.link.resume()
            self._drain()

    def cut(self, reason: str) -> None:
        """Abort the connection for ``reason`` (a limit); PART says why once
        the transport reports the loss."""
        if self.cut_reason is not None:
            return
        self.cut_reason = reason
        self.node.stats.cuts[reason] += 1
        self.node.log.info("cutting {nick}: {why}", nick=self.session.nick or self.peer, why=reason)
        self.link.abort()

    def lost(self) -> None:
        """The transport is gone, for whatever reason."""
        self._framer = None
        self._pending = None
        if self._lag is not None and self._lag.active():
            self._lag.cancel()
        self._lag = None
        nick = self.session.nick
        self.session.disconnected(self.cut_reason or CONNECTION_LOST)
        self.dialect.connection_lost()
        self.node.log.info("connection closed: {who}", who=nick or self.peer)
        self.node.hub.release(self)
