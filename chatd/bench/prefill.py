"""Fill the room's history before a run (``--prefill K``).

One ordinary client logs in, says ``K`` lines, waits until it has heard all
``K`` back (so the server has handled them, and kept them if it keeps
history), then sends ``QUIT`` and waits for the server to close the
connection.  So when the fleet starts, the room holds ``K`` lines said and
none of its members: every client of the run then asks ``HISTORY`` of a
full history, and counts the same ``N`` members it would have without the
prefill.

The lines read ``prefill NNNNNN xxx...``: their second word is not the
14-digit token of a benchmark ``SAY``, so no receiver takes a replayed line
for traffic.  One blocking connection (TCP, or the WebSocket when the run's
clients use it), bounded by one deadline for the whole step: this runs in
the parent, before any worker exists.
"""

from __future__ import annotations

import time

from chatd import wire
from chatd.bench.blocking import TcpStream, connect
from chatd.bench.websocket import WebSocketError, WsAddress


class PrefillFailed(Exception):
    """The prefill did not finish; the message says where it stopped."""


class _Lines:
    """Lines off one blocking connection, every read bounded by one deadline."""

    def __init__(self, stream: TcpStream, deadline: float, what: str) -> None:
        self.stream = stream
        self.deadline = deadline
        self.what = what
        self.pending = b""
        self.eof = False

    def read(self) -> bytes | None:
        """The next line without its line end; ``None`` at end of stream."""
        while b"\n" not in self.pending:
            if self.eof:
                return None
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise PrefillFailed(f"timed out {self.what}")
            try:
                chunk = self.stream.recv(remaining)
            except TimeoutError:
                raise PrefillFailed(f"timed out {self.what}") from None
            if not chunk:
                self.eof = True
                if not self.pending:
                    return None
                chunk = b"\n"  # an unfinished last line is still a line
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.rstrip(b"\r")


def prefill_text(number: int, payload_size: int) -> bytes:
    """The text of prefill line ``number``: at least ``payload_size`` bytes."""
    return (b"prefill %06d " % number).ljust(payload_size, b"x")


def prefill(host: str, port: int, *, lines: int, nick: str, payload_size: int,
            timeout: float, ws: WsAddress | None = None) -> float:
    """Say ``lines`` lines as ``nick`` and leave, over TCP or the WebSocket
    ``ws``; the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    where = ws.url if ws is not None else f"{host}:{port}"
    stream = None
    try:
        stream = connect(host, port, ws, timeout)
        reader = _Lines(stream, deadline, f"logging the prefill client in to {where}")
        hello = reader.read()
        if hello is None or not hello.startswith(b"HELLO "):
            raise PrefillFailed(f"{where} sent no HELLO to the prefill client")
        stream.send(wire.encode(wire.Nick(nick)))
        _read_until(reader, b"OK WHO ", f"the prefill client's login ({nick})")
        stream.send(b"".join(b"SAY " + prefill_text(i, payload_size) + b"\n"
                              for i in range(lines)))
        reader.what = f"for the prefill client to hear its {lines} lines back"
        echo = f"SAY {nick} ".encode("ascii")
        heard = 0
        while heard < lines:
            line = _next(reader, f"the prefill client's {lines} lines ({heard} heard back)")
            heard += line.startswith(echo)
        stream.send(wire.encode(wire.Quit("prefill done")))
        reader.what = "for the server to close the prefill client after QUIT"
        while reader.read() is not None:
            pass
    except ConnectionRefusedError:
        raise PrefillFailed(f"cannot connect to {where}: connection refused") from None
    except TimeoutError:
        raise PrefillFailed(f"no answer from {where} within {timeout:g} s") from None
    except OSError as exc:
        raise PrefillFailed(f"prefill connection to {where}: {exc.strerror or exc}") from None
    except WebSocketError as exc:
        raise PrefillFailed(f"prefill connection to {where}: {exc}") from None
    finally:
        if stream is not None:
            stream.close()
    return time.monotonic() - t0


def _next(reader: _Lines, during: str) -> bytes:
    """The next line; a ``BYE`` or a closed connection fails the prefill.
    ``ERR`` lines pass: a flood limit delays lines, it does not drop them."""
    line = reader.read()
    if line is None:
        raise PrefillFailed(f"the server closed the connection during {during}")
    if line.startswith(b"BYE "):
        raise PrefillFailed(f"the server said {line.decode('utf-8', 'replace')[:80]!r} "
                            f"during {during}")
    return line


def _read_until(reader: _Lines, prefix: bytes, during: str) -> None:
    while not (line := _next(reader, during)).startswith(prefix):
        if line.startswith(b"ERR "):
            raise PrefillFailed(f"the server answered {during} with "
                                f"{line.decode('utf-8', 'replace')[:80]!r}")
