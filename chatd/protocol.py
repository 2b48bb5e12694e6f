"""The Twisted edge: bytes from a socket to ``Session``, and back.

``ChatProtocol`` frames lines and enforces the per-connection limits that
need a transport or a clock (send queue, flood lag, registration timeout);
every rule about what a line means lives in ``Session`` and ``Room``.
``ChatFactory`` owns the one ``Room``, the settings, the injected reactor and
the connection-count limits.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from typing import Any

from twisted.internet import tcp
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chatd import wire
from chatd.config import Config
from chatd.errors import ChatError, ErrorCode
from chatd.flood import TokenBucket
from chatd.outbox import Outbox
from chatd.room import Room
from chatd.session import CONNECTION_LOST, Session

log = Logger(namespace="chatd")

SENDQ_EXCEEDED = "send queue exceeded"
FLOOD = "flood"
SERVER_FULL = "server is full, try again later"
TOO_MANY_FROM_ADDRESS = "too many connections from your address"
REGISTRATION_TIMEOUT = "registration timeout: no NICK"
SHUTDOWN = "server shutting down"

# Keepalive probes: a vanished peer is reaped in about idle + interval * count.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 15, 4


def plain_socket(transport: Any) -> socket.socket | None:
    """The socket under a plain TCP transport (not TLS, which must encrypt
    first), for the eager write."""
    if isinstance(transport, tcp.Connection) and not transport.TLS:
        return transport.socket
    return None


def queued_bytes(transport: Any) -> int:
    """Bytes written to a transport and not yet accepted by the kernel.

    Twisted has no public accessor, so this reads ``FileDescriptor``'s
    buffers (the same in the epoll and asyncio reactors), looking through
    wrappers such as TLS to the TCP transport underneath.
    """
    for _ in range(4):
        data = getattr(transport, "dataBuffer", None)
        if data is not None:
            return len(data) - transport.offset + transport._tempDataLen
        transport = getattr(transport, "transport", None)
        if transport is None:
            break
    return 0


class ChatProtocol(LineReceiver):
    """One connection.  Lines end in LF; a CR before it is the session's to
    drop, so nc (LF) and telnet (CRLF) both work."""

    delimiter = b"\n"
    factory: ChatFactory
    session: Session
    _discarding = False
    _bucket: TokenBucket | None = None
    _timer: IDelayedCall | None = None
    _resume: IDelayedCall | None = None
    _lag_noted = False
    _cut_reason: str | None = None
    _address: str | None = None
    _socket: socket.socket | None = None

    def connectionMade(self) -> None:
        factory, config = self.factory, self.factory.config
        self.session = Session(factory.room, self._write, self.transport.loseConnection,
                               oper_password=config.oper_password)
        refusal = factory.admit(self)
        self._tune_socket(config)
        self._socket = plain_socket(self.transport)
        self.session.connected()
        if refusal is not None:
            log.info("refused {peer}: {why}", peer=self._peer(), why=refusal)
            self.session.close(refusal)
            return
        log.info("connection from {peer}", peer=self._peer())
        if config.flood_rate:
            self._bucket = TokenBucket(config.flood_burst, config.flood_rate,
                                       factory.reactor.seconds())
        self._timer = factory.reactor.callLater(config.register_timeout, self._expire)

    def _peer(self) -> str:
        peer = self.transport.getPeer()
        return f"{peer.host}:{peer.port}" if hasattr(peer, "port") else str(peer)

    def _tune_socket(self, config: Config) -> None:
        """No Nagle delay (chat lines are small, latency is the product),
        keepalive probes so vanished peers leave the room, and optionally a
        fixed kernel send buffer so a stalled reader holds little there."""
        transport = self.transport
        if hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)
        try:
            handle = transport.getHandle()
            if config.socket_sndbuf:
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.socket_sndbuf)
            if config.keepalive:
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
        except (AttributeError, OSError):
            pass  # not a TCP socket underneath, or a platform without the knobs

    # --- output ---

    def _write(self, data: bytes) -> None:
        """Write, and cut a reader that lets ``--max-sendq`` bytes pile up.

        The queue is measured before writing: what Twisted still holds then
        is what the kernel refused in earlier turns, whereas one turn's
        coalesced output may be large for a reader that keeps up.

        The cut is ``abortConnection``: a graceful close would wait for the
        very buffer that is too big.  PART comes when the transport reports
        the loss, a reactor turn later, so it never lands in the middle of a
        broadcast this write is part of.
        """
        if self._cut_reason is not None:
            return
        transport = self.transport
        queued = queued_bytes(transport)
        if queued > self.factory.config.max_sendq:
            self._cut_reason = SENDQ_EXCEEDED
            log.info("cutting {nick}: {why}", nick=self.session.nick, why=SENDQ_EXCEEDED)
            transport.abortConnection()
            return
        sock = self._socket
        if sock is not None and not queued and transport.connected \
                and not transport.disconnecting:
            # Eager write: with nothing queued, hand the bytes to the kernel
            # now.  Twisted would buffer them, register the socket for
            # writability, send on the next poll and unregister: two
            # epoll_ctl calls and a dispatch per member per turn, which
            # profiling showed cost more than the send itself.  Whatever
            # the kernel does not take goes through Twisted as usual.
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # EAGAIN, or a dead peer the reactor will report
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    # --- input ---

    def dataReceived(self, data: bytes) -> None:
        """Split lines in one pass over the data, one token per line.

        Replaces ``LineReceiver.dataReceived``, which re-splits the whole
        buffer for every line (quadratic in a coalesced packet), hands the
        tail of an over-long line back as a fresh line, and stops at an
        over-long line until more data arrives.  The pause contract is kept:
        while ``paused`` (flood lag), lines wait in the buffer.
        """
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return
            data = data[newline + 1:]
            self._discarding = False
        buffer = self._buffer + data if self._buffer else data
        start, limit = 0, self.factory.config.max_line
        transport, bucket = self.transport, self._bucket
        while not self.paused and not transport.disconnecting:
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            if bucket is not None and not self._spend(bucket):
                break
            line = buffer[start:newline]
            start = newline + 1
            if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\r")):
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)
        rest = buffer[start:] if start else buffer
        if len(rest) > limit + 1 and b"\n" not in rest:
            # An unfinished over-long line: refuse it now and throw away the
            # rest of it as it arrives, so memory stays bounded.
            self.lineLengthExceeded(rest)
            self._discarding = True
            rest = b""
        self._buffer = rest
        if len(rest) > self.factory.config.max_recvq and not transport.disconnecting:
            log.info("cutting {peer}: backlog of {size} bytes", peer=self._peer(), size=len(rest))
            self._buffer = b""
            self.session.close(FLOOD)

    def _spend(self, bucket: TokenBucket) -> bool:
        """Take a token for the next line, or pause reading until one returns."""
        reactor = self.factory.reactor
        now = reactor.seconds()
        if self._lag_noted and bucket.full(now):
            self._lag_noted = False
        wait = bucket.take(now)
        if not wait:
            return True
        if not self._lag_noted:
            self._lag_noted = True
            rate = self.factory.config.flood_rate
            self.session.reject(ChatError(
                ErrorCode.FLOOD,
                f"you are sending more than {rate:g} lines a second; "
                "the rest are delayed, not lost"))
        self.pauseProducing()
        self._resume = reactor.callLater(wait, self._resume_reading)
        return False

    def _resume_reading(self) -> None:
        self._resume = None
        if not self.transport.disconnecting:
            self.resumeProducing()

    def lineReceived(self, line: bytes) -> None:
        self.session.handle_line(line)
        if self._timer is not None and self.session.nick is not None:
            self._timer.cancel()
            self._timer = None

    def lineLengthExceeded(self, line: bytes) -> None:
        limit = self.factory.config.max_line
        self.session.reject(ChatError(ErrorCode.LINE_TOO_LONG,
                                      f"lines are limited to {limit} bytes; this one was dropped"))

    def _expire(self) -> None:
        self._timer = None
        if self.session.nick is None:
            log.info("closing {peer}: {why}", peer=self._peer(), why=REGISTRATION_TIMEOUT)
            self.session.close(REGISTRATION_TIMEOUT)

    def connectionLost(self, reason: Failure = Failure(Exception(CONNECTION_LOST))) -> None:
        self._buffer = b""
        for call in (self._timer, self._resume):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._resume = None
        nick = self.session.nick
        self.session.disconnected(self._cut_reason or CONNECTION_LOST)
        log.info("connection closed: {who}", who=nick or self._peer())
        self.factory.release(self)


def _counts_per_address(host: str | None, config: Config) -> bool:
    if host is None:
        return False
    if config.limit_loopback:
        return True
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class ChatFactory(Factory):
    """The room and the settings every connection shares."""

    protocol = ChatProtocol
    noisy = False

    def __init__(self, config: Config | None = None, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.config = config if config is not None else Config()
        self.reactor = reactor
        self.room = Room(
            Outbox(schedule=lambda flush: reactor.callLater(0, flush)),
            max_line=self.config.max_line,
            log=log,
            log_messages=self.config.log_messages,
        )
        self.protocols: set[ChatProtocol] = set()
        self._per_address: Counter[str] = Counter()
        self._drained: list[Deferred[None]] = []

    # --- connection limits ---

    def admit(self, protocol: ChatProtocol) -> str | None:
        """Count a new connection; the reason to refuse it, if any."""
        config = self.config
        if len(self.protocols) >= config.max_clients:
            self.protocols.add(protocol)
            return SERVER_FULL
        self.protocols.add(protocol)
        host = getattr(protocol.transport.getPeer(), "host", None)
        if not _counts_per_address(host, config):
            return None
        assert host is not None
        if self._per_address[host] >= config.max_per_ip:
            return TOO_MANY_FROM_ADDRESS
        self._per_address[host] += 1
        protocol._address = host
        return None

    def release(self, protocol: ChatProtocol) -> None:
        """Forget a closed connection; fire ``shutdown`` waiters at the last."""
        self.protocols.discard(protocol)
        host = protocol._address
        if host is not None:
            self._per_address[host] -= 1
            if not self._per_address[host]:
                del self._per_address[host]
        if not self.protocols:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)

    # --- shutdown ---

    def shutdown(self, reason: str = SHUTDOWN, grace: float = 3.0) -> Deferred[None]:
        """``WALL *`` and ``BYE`` to every connection, close them all, and
        fire once they are closed or ``grace`` seconds have passed."""
        if not self.protocols:
            return succeed(None)
        log.info("shutting down: closing {count} connections", count=len(self.protocols))
        self.room.wall(wire.SERVER_NICK, reason)
        for protocol in list(self.protocols):
            protocol.session.close(reason)
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drained.append(waiter)

        def give_up(result: object, timeout: float) -> None:
            """Grace is over: abort whoever is still sending, and finish."""
            self._drained.remove(waiter)
            for protocol in list(self.protocols):
                protocol.transport.abortConnection()

        return waiter.addTimeout(grace, self.reactor, onTimeoutCancel=give_up)
