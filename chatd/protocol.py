"""The Twisted edge: bytes from a socket to ``Session``, and back.

``ChatProtocol`` frames lines and forwards them; it adds no rules of its own.
``ChatFactory`` owns the one ``Room`` and the injected reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatd.config import Config
from chatd.errors import ChatError, ErrorCode
from chatd.outbox import Outbox
from chatd.room import Room
from chatd.session import CONNECTION_LOST, Session

log = Logger(namespace="chatd")


class ChatProtocol(LineReceiver):
    """One connection.  Lines end in LF; a CR before it is the session's to
    drop, so nc (LF) and telnet (CRLF) both work."""

    delimiter = b"\n"
    factory: ChatFactory
    session: Session

    def __init__(self) -> None:
        self._discarding = False

    def connectionMade(self) -> None:
        # Chat lines are small and latency is the product: no Nagle delay.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self.MAX_LENGTH = self.factory.config.max_line + 1  # room for the CR of CRLF
        self.session = Session(
            self.factory.room,
            self.transport.write,
            self.transport.loseConnection,
            oper_password=self.factory.config.oper_password,
        )
        self.factory.protocols.add(self)
        peer = self.transport.getPeer()
        log.info("connection from {peer}", peer=getattr(peer, "host", str(peer)))
        self.session.connected()

    def dataReceived(self, data: bytes) -> None:
        """Split lines in one pass over the data.

        Replaces ``LineReceiver.dataReceived``, which re-splits the whole
        buffer for every line (quadratic in a coalesced packet), hands the
        tail of an over-long line back as a fresh line, and stops at an
        over-long line until more data arrives.  The pause contract is kept:
        while ``paused``, lines wait in the buffer.
        """
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return
            data = data[newline + 1:]
            self._discarding = False
        buffer = self._buffer + data if self._buffer else data
        start, limit = 0, self.MAX_LENGTH
        transport = self.transport
        while not self.paused and not transport.disconnecting:
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            line = buffer[start:newline]
            start = newline + 1
            if len(line) > limit:
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)
        rest = buffer[start:] if start else buffer
        if len(rest) > limit and b"\n" not in rest:
            # An unfinished over-long line: refuse it now and throw away the
            # rest of it as it arrives, so memory stays bounded.
            self.lineLengthExceeded(rest)
            self._discarding = True
            rest = b""
        self._buffer = rest

    def lineReceived(self, line: bytes) -> None:
        self.session.handle_line(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        limit = self.factory.config.max_line
        self.session.reject(ChatError(ErrorCode.LINE_TOO_LONG,
                                      f"lines are limited to {limit} bytes; this one was dropped"))

    def connectionLost(self, reason: Failure = Failure(Exception(CONNECTION_LOST))) -> None:
        self._buffer = b""
        self.factory.protocols.discard(self)
        log.info("connection closed: {nick}", nick=self.session.nick or "(not logged in)")
        self.session.disconnected(CONNECTION_LOST)
        self.factory.connection_lost()


class ChatFactory(Factory):
    """The room and the settings every connection shares."""

    protocol = ChatProtocol
    noisy = False

    def __init__(self, config: Config | None = None, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.config = config if config is not None else Config()
        self.reactor: IReactorTime = reactor
        self.room = Room(
            Outbox(schedule=lambda flush: reactor.callLater(0, flush)),
            max_line=self.config.max_line,
            log=log,
            log_messages=self.config.log_messages,
        )

        self.protocols: set[ChatProtocol] = set()
        self._drained: list[Deferred[None]] = []

    def connection_lost(self) -> None:
        """Fire what ``shutdown`` waits on once the last connection is gone."""
        if not self.protocols:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)

    def shutdown(self, reason: str = "server shutting down", grace: float = 3.0) -> Deferred[None]:
        """``WALL *`` and ``BYE`` to every connection, close them all, and
        fire once they are closed or ``grace`` seconds have passed."""
        if not self.protocols:
            return succeed(None)
        self.room.wall("*", reason)
        for protocol in list(self.protocols):
            protocol.session.close(reason)
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drained.append(waiter)
        timer = self.reactor.callLater(grace, self._give_up, waiter)
        waiter.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])
        return waiter

    def _give_up(self, waiter: Deferred[None]) -> None:
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        if not waiter.called:
            self._drained.remove(waiter)
            waiter.callback(None)
