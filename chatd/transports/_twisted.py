"""Every read of Twisted's private internals, in one place.

Twisted has no public way to ask how many bytes a transport still holds, or
to write straight to the kernel.  chatd needs both on its hottest path: the
send-queue cut (``--max-sendq``) reads the queue before each write, and the
eager write skips Twisted's buffer-then-poll round trip when nothing is
queued.  Each read below names the Twisted release it was read from; a
real-socket test (``tests/test_twisted_internals.py``) fails if an upgrade
moves them, and ``queue_reader`` raises rather than quietly answering 0 for
a Twisted transport whose buffers it cannot find.

Read from Twisted 26.10.0: ``twisted/internet/abstract.py``
(``FileDescriptor.dataBuffer``, ``.offset``, ``._tempDataLen``: the bytes
``write`` accepted and the kernel has not) and ``twisted/internet/tcp.py``
(``Connection.socket``, ``Connection.TLS``).  The epoll, poll, select and
asyncio reactors share ``FileDescriptor``.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from twisted.internet import abstract, tcp

from chatd.limits import SendQueue

READ_FROM_TWISTED = "26.10.0"
_BUFFER_FIELDS = ("dataBuffer", "offset", "_tempDataLen")


class SendQueueOwner(Protocol):
    """Who hears that a connection's send queue passed the limit."""

    def send_queue_exceeded(self) -> None: ...


class TwistedInternalsChanged(RuntimeError):
    """Twisted no longer keeps its write buffer where this module reads it."""


def _has_buffer(transport: Any) -> bool:
    return all(hasattr(transport, field) for field in _BUFFER_FIELDS)


def buffered_transport(transport: Any) -> Any | None:
    """The transport that holds the write buffer: the transport itself, or
    the TCP transport under wrappers such as TLS; None for a transport that
    keeps no buffer of its own (an in-memory test transport)."""
    for _ in range(4):
        if isinstance(transport, abstract.FileDescriptor):
            if not _has_buffer(transport):
                raise TwistedInternalsChanged(
                    f"{type(transport).__name__} has no {'/'.join(_BUFFER_FIELDS)} "
                    f"(read from Twisted {READ_FROM_TWISTED}); --max-sendq cannot work")
            return transport
        if _has_buffer(transport):
            return transport  # a test double that models the buffer
        transport = getattr(transport, "transport", None)
        if transport is None:
            break
    return None


def queued_bytes(transport: Any) -> int:
    """Bytes written to ``transport`` that the kernel has not taken yet."""
    holder = buffered_transport(transport)
    if holder is None:
        return 0
    return int(len(holder.dataBuffer) - holder.offset + holder._tempDataLen)


def plain_socket(transport: Any) -> socket.socket | None:
    """The socket under a plain TCP transport (not TLS, which must encrypt
    first), for the eager write."""
    if isinstance(transport, tcp.Connection) and not transport.TLS:
        return transport.socket
    return None


# EagerWriter's states: nothing left with Twisted; something may be; cut.
_EAGER, _BEHIND, _CUT = 0, 1, 2


class EagerWriter:
    """The write of one connection: the send-queue rule, then the eager write.
    Called once per member per turn; a slotted object rather than a closure,
    because ten thousand idle connections each hold one.

    Eager write: with nothing queued, hand the bytes to the kernel now.
    Twisted would buffer them, register the socket for writability, send on
    the next poll and unregister: two epoll_ctl calls and a dispatch per
    member per turn, which profiling showed cost more than the send itself.
    Whatever the kernel does not take goes through Twisted as usual, and
    from then on (``_BEHIND``) the queue is measured before every write,
    until Twisted has sent it all.  While nothing was left with Twisted the
    queue is empty by construction, so the common write reads no Twisted
    field at all.

    The cut tells ``owner.send_queue_exceeded()`` once and writes nothing
    more: a graceful close would wait for the very buffer that is too big.
    (The owner, not a callback: a bound method per connection is memory.)
    """

    __slots__ = ("_transport", "_holder", "_sock", "_rule", "_owner", "_state")

    def __init__(self, transport: Any, rule: SendQueue, owner: SendQueueOwner) -> None:
        self._transport = transport
        self._holder: Any = buffered_transport(transport)  # None: nothing to measure
        self._sock = plain_socket(transport)
        self._rule = rule
        self._owner = owner
        self._state = _EAGER

    def stop_eager(self) -> None:
        """The transport is closing: leave every later write to Twisted."""
        self._sock = None

    def write(self, data: bytes) -> None:
        state = self._state
        if state:
            if state is _CUT:
                return
            holder = self._holder
            queued = len(holder.dataBuffer) - holder.offset + holder._tempDataLen
            if queued:
                if self._rule.over(queued):
                    self._state = _CUT
                    self._owner.send_queue_exceeded()
                    return
                self._transport.write(data)
                return
            self._state = _EAGER
        sock = self._sock
        if sock is not None:
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # EAGAIN, or a dead peer the reactor will report
            if sent == len(data):
                return
            data = data[sent:]
        if self._holder is not None:
            self._state = _BEHIND
        self._transport.write(data)


def behind(writer: EagerWriter) -> None:
    """Bytes may already wait in the transport (an HTTP 101 response): the
    writer must queue behind them rather than write eagerly past them."""
    if writer._holder is not None:
        writer._state = _BEHIND


def take_over_http_channel(channel: Any, protocol: Any, first: bytes) -> None:
    """Hand an HTTP connection to a WebSocket ``protocol``: write ``first``
    (the 101 response), stop twisted.web's request timeout (an idle
    WebSocket must outlive it), and make ``protocol`` the transport's own
    protocol, so the HTTP channel and its request are dropped: kept, they
    were most of an idle WebSocket's memory.

    Read from Twisted 26.10.0: ``HTTPChannel.connectionMade`` registers the
    channel as the transport's producer (``twisted/web/http.py``); a TCP
    transport calls ``self.protocol`` (``twisted/internet/tcp.py``), and TLS
    wraps it as ``TLSMemoryBIOProtocol.wrappedProtocol``
    (``twisted/protocols/tls.py``).
    """
    transport = channel.transport
    channel.setTimeout(None)
    transport.write(first)
    transport.unregisterProducer()  # the channel's; ours reads and pauses the transport
    if hasattr(transport, "wrappedProtocol"):
        transport.wrappedProtocol = protocol
        under = getattr(transport, "transport", None)
    else:
        under = transport
    if under is None or getattr(under, "protocol", None) is None:
        raise TwistedInternalsChanged(
            f"{type(transport).__name__} has no protocol to replace (read from Twisted "
            f"{READ_FROM_TWISTED}); the WebSocket door cannot work")
    if under is transport:
        transport.protocol = protocol
    channel.transport = None
    protocol.makeConnection(transport)
