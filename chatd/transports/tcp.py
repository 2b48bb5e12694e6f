"""The TCP (and TLS) door: a Twisted protocol as thin as it can be.

``ChatProtocol`` tunes the socket, builds the connection's ``Link`` and
forwards bytes and the loss to a ``chatd.connection.Connection``; framing,
limits, the protocol and the room live behind it.  ``ChatFactory`` owns the
node (the room and its hub) for every listener it serves; ``door("irc")``
is a factory for another door of stream sockets into the same node (the
IRC listener), whose connections speak that door's dialect.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.config import Config
from chatd.connection import SENDQ_EXCEEDED, Connection
from chatd.hub import SHUTDOWN
from chatd.limits import SendQueue
from chatd.node import Node
from chatd.room import Room
from chatd.transports import _twisted

log = Logger(namespace="chatd")

# Keepalive probes: a vanished peer is reaped in about idle + interval * count.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 15, 4


class TransportLink(_twisted.EagerWriter):
    """A Twisted transport as a connection's ``Link``."""

    __slots__ = ()

    @property
    def peer(self) -> str:
        """``host:port`` of the other end, for the logs (made when asked:
        idle connections should not each hold one)."""
        return describe_peer(self._transport.getPeer())

    def pause(self) -> None:
        self._transport.pauseProducing()

    def resume(self) -> None:
        self._transport.resumeProducing()

    def close(self) -> None:
        self.stop_eager()
        self._transport.loseConnection()

    def abort(self) -> None:
        self.stop_eager()
        self._transport.abortConnection()


def tune_socket(transport: Any, config: Config) -> None:
    """No Nagle delay (chat lines are small, latency is the product),
    keepalive probes so vanished peers leave the room, and optionally a
    fixed kernel send buffer so a stalled reader holds little there."""
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


def describe_peer(address: Any) -> str:
    """``host:port`` for the logs (or whatever the address says of itself)."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    return f"{host}:{port}" if port is not None else str(address)


class ChatProtocol(Protocol):
    """One TCP connection; lines end in LF, and a CR before it is dropped."""

    factory: ChatFactory | DoorFactory
    connection: Connection

    def connectionMade(self) -> None:
        config, transport = self.factory.config, self.transport
        assert transport is not None
        tune_socket(transport, config)
        link = TransportLink(transport, self.factory.send_queue, self)
        host = getattr(transport.getPeer(), "host", None)
        self.connection = self.factory.node.connect(link, host=host, door=self.factory.door)

    def send_queue_exceeded(self) -> None:
        self.connection.cut(SENDQ_EXCEEDED)

    def dataReceived(self, data: bytes) -> None:
        self.connection.data_received(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.connection.lost()


class ChatFactory(Factory):
    """The node every listener of this process serves."""

    # Twisted types ``protocol`` as building a protocol whose ``factory`` is
    # any Factory; ours names its own factory's type, which mypy calls narrower.
    protocol = ChatProtocol  # type: ignore[assignment]  # see the comment above
    noisy = False  # chatd logs "listening on" itself
    door = "tcp"

    def __init__(self, config: Config | None = None, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.config = config if config is not None else Config()
        self.reactor = reactor
        self.node = Node(self.config, reactor, log=log)
        self.send_queue = SendQueue(self.config.max_sendq)  # one rule for every connection

    def door_factory(self, door: str) -> DoorFactory:
        """A factory for listeners of another door into this node."""
        return DoorFactory(self, door)

    @property
    def room(self) -> Room:
        return self.node.room

    def shutdown(self, reason: str = SHUTDOWN, grace: float = 3.0) -> Deferred[None]:
        """``WALL *`` and ``BYE`` to every connection, close them all, and
        fire once they are closed or ``grace`` seconds have passed."""
        drained: Deferred[None] = Deferred()
        self.node.shutdown(lambda: drained.callback(None), reason=reason, grace=grace)
        return drained


class DoorFactory(Factory):
    """Stream connections of another door (IRC) into a ``ChatFactory``'s node."""

    protocol = ChatProtocol  # type: ignore[assignment]  # as ChatFactory's
    noisy = False

    def __init__(self, owner: ChatFactory, door: str) -> None:
        self.config = owner.config
        self.node = owner.node
        self.send_queue = owner.send_queue
        self.door = door
