"""``--reuse-port``: TCP listeners that several chatd processes share.

When every listening socket on an address and port has SO_REUSEPORT set
before ``bind``, Linux (3.9 and later) lets them all bind it, gives each
its own accept queue and spreads new connections over them by a hash of
the client's address and port.  So N chatd processes started alike serve
one port with all of a machine's cores, and a process that does not set
the option (another program, a chatd without ``--reuse-port``) still gets
"address already in use".

Twisted's endpoints cannot set the option (twisted#9101), so this module
binds the socket itself and hands it to the reactor's ``adoptStreamPort``;
from there on it is an ordinary Twisted port.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from zope.interface import implementer

from chatd.config import BACKLOG
from chatd.tcp_endpoint import TCPEndpoint, parse_tcp_endpoint


def bind_reuse_port(endpoint: TCPEndpoint) -> socket.socket:
    """A listening, non-blocking socket on ``endpoint`` with SO_REUSEADDR
    and SO_REUSEPORT set; ``OSError`` (and no socket left open) if not.

    The backlog is the endpoint's, else chatd's ``BACKLOG``: Twisted's 50
    makes a burst of connects wait for SYN retransmits.
    """
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None:  # pragma: no cover - Linux, the BSDs and macOS have it
        raise OSError(errno.ENOPROTOOPT, "this system has no SO_REUSEPORT")
    family = socket.AF_INET6 if endpoint.ipv6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR as Twisted's own ports set it: a restart may bind
        # while the old process's connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
        sock.bind(socket_address(endpoint))
        sock.listen(endpoint.backlog if endpoint.backlog is not None else BACKLOG)
        sock.setblocking(False)  # adoptStreamPort requires it
    except BaseException:
        sock.close()
        raise
    return sock


def socket_address(endpoint: TCPEndpoint) -> tuple[Any, ...]:
    """What ``bind`` takes; an IPv6 interface is resolved numerically, as
    Twisted does, so a ``%scope`` becomes its scope id."""
    if not endpoint.ipv6:
        return (endpoint.interface, endpoint.port)
    found = socket.getaddrinfo(endpoint.interface, endpoint.port, socket.AF_INET6,
                               socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST | socket.AI_PASSIVE)
    return tuple(found[0][4])


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """A ``tcp:``/``tcp6:`` server endpoint whose socket has SO_REUSEPORT.

    A socket that cannot be bound fails ``listen`` with the
    ``CannotListenError`` Twisted's own TCP endpoint gives, so callers say
    "cannot listen" in the same words either way.
    """

    def __init__(self, reactor: Any, endpoint: TCPEndpoint) -> None:
        self._reactor = reactor
        self._endpoint = endpoint

    def listen(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IListeningPort]:
        try:
            sock = bind_reuse_port(self._endpoint)
        except OSError as exc:
            return defer.fail(CannotListenError(self._endpoint.interface, self._endpoint.port, exc))
        try:
            port: IListeningPort = self._reactor.adoptStreamPort(sock.fileno(), sock.family,
                                                                 protocolFactory)
        except Exception:
            return defer.fail()
        finally:
            sock.close()  # the reactor listens on its own duplicate of the descriptor
        return defer.succeed(port)


def reuse_port_endpoint(reactor: Any, description: str) -> ReusePortEndpoint:
    """The SO_REUSEPORT endpoint for a ``tcp:``/``tcp6:`` description;
    ``ValueError`` for any other."""
    return ReusePortEndpoint(reactor, parse_tcp_endpoint(description))
