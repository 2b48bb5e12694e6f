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
from collections.abc import Callable
from typing import Any

from twisted.internet import abstract, tcp

from chatd.limits import SendQueue

READ_FROM_TWISTED = "26.10.0"
_BUFFER_FIELDS = ("dataBuffer", "offset", "_tempDataLen")


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


def writer(transport: Any, rule: SendQueue, over: Callable[[], None]) -> Callable[[bytes], None]:
    """The write callable for one connection: the send-queue rule, then the
    eager write.  Built once per connection, called once per member per turn.

    Eager write: with nothing queued, hand the bytes to the kernel now.
    Twisted would buffer them, register the socket for writability, send on
    the next poll and unregister: two epoll_ctl calls and a dispatch per
    member per turn, which profiling showed cost more than the send itself.
    Whatever the kernel does not take goes through Twisted as usual.

    The cut calls ``over`` once and writes nothing more: a graceful close
    would wait for the very buffer that is too big.
    """
    holder = buffered_transport(transport)
    sock = plain_socket(transport)
    send = sock.send if sock is not None else None
    write_later = transport.write
    exceeded = rule.over
    cut = False

    def write(data: bytes) -> None:
        nonlocal cut
        if cut:
            return
        queued = (len(holder.dataBuffer) - holder.offset + holder._tempDataLen
                  if holder is not None else 0)
        if queued:
            if exceeded(queued):
                cut = True
                over()
                return
        elif send is not None and transport.connected and not transport.disconnecting:
            try:
                sent = send(data)
            except OSError:
                sent = 0  # EAGAIN, or a dead peer the reactor will report
            if sent == len(data):
                return
            data = data[sent:]
        write_later(data)

    return write
