"""One benchmark connection: log in, then count, check and time SAY lines.

The receive path is the hot loop of the whole tool (at 1,000 clients every
SAY is read 1,000 times), so it works on whole chunks: one regex ``findall``
per chunk pulls the ``<sender><seq>`` token out of every SAY line, and the
only per-line Python is the per-sender order check.  JOIN lines, the O(N^2)
part of a login storm, are only counted, with ``bytes.count``.  The few lines
before ``OK WHO`` are read one by one with prefix checks; ``chatd.wire``
parses only the rare error line.

With ``--history-request N`` a client sends ``HISTORY N`` as soon as it reads
``OK WHO`` and is complete only once it has also read ``OK HISTORY``.  Its
``HIST`` lines are counted with ``bytes.count`` too, in the same chunks as
the JOINs around them, so asking costs the tool one search per chunk until
the answer, not a line-by-line read.

Payload
-------
A SAY text is ``SSSSSQQQQQQQQQ T xxx...``: the sender id (5 digits) and its
sequence number (9 digits) as one fixed-width token, so that comparing the
bytes compares the numbers; then the send time ``T`` from
``time.monotonic_ns()`` (CLOCK_MONOTONIC, the same clock in every process on
the machine); then ``x`` up to ``payload_size`` bytes of text.

WebSocket
---------
``WebSocketBenchClient`` is the same client over chatd's WebSocket door: it
sends the upgrade request on connect, reads the ``101``, and from then on
hands the text of the server's messages, joined, to the same line handling
(it is the TCP byte stream, see ``chatd.bench.websocket``); each of its
writes is one masked text message.  Pings are answered, a close is echoed.

Extras
------
With ``--idle-ws``/``--idle-tcp`` some clients are *extras*: members of the
room that never send, count in the room size every client waits to hear,
and whose SAY lines are counted apart (``Worker.extra_received``), never in
the figures the run checks.
"""

from __future__ import annotations

import asyncio
import re
from time import monotonic_ns
from typing import TYPE_CHECKING, Final

from chatd import wire
from chatd.bench.websocket import (
    CLOSE,
    PING,
    Handshake,
    ServerFrames,
    WebSocketError,
    WsAddress,
    close_code,
    close_frame,
    pong,
    text_message,
)

if TYPE_CHECKING:
    from chatd.bench.worker import Worker

# Senders are numbered 0..99999 and count lines 0..999,999,999.
MIN_PAYLOAD: Final = 40  # 14 + 1 + 19 (a 64-bit ns time) + 1 + at least 5 "x"
_SAY: Final = re.compile(rb"SAY [^ ]+ (\d{14}) ")
_SAY_TIMED: Final = re.compile(rb"SAY [^ ]+ (\d{14}) (\d+)")

CONNECTING, GREETED, LOGGED_IN = 0, 1, 2


def _line_at(data: bytes, prefix: bytes, start: int, end: int) -> int:
    """Where the first line in ``data[start:end]`` that starts with
    ``prefix`` starts, or -1 (``start`` is the start of a line)."""
    if data.startswith(prefix, start):
        return start
    found = data.find(b"\n" + prefix, start, end)
    return found + 1 if found >= 0 else -1


def say_line(sender: int, seq: int, sent_ns: int, payload_size: int) -> bytes:
    """The client line ``SAY <text>\\n`` whose text is ``payload_size`` bytes."""
    return (b"SAY %05d%09d %d " % (sender, seq, sent_ns)).ljust(payload_size + 4, b"x") + b"\n"


class LoginFailed(Exception):
    """The server refused or dropped a login; the message says which."""


class BenchClient(asyncio.Protocol):
    """A connection's state and counters; ``Worker`` owns the aggregates."""

    def __init__(self, worker: Worker, index: int, *, sender: int | None, probe: bool,
                 extra: bool = False) -> None:
        self.worker = worker
        self.index = index
        self.nick = worker.nick(index)
        self.transport: asyncio.Transport | None = None
        self.greeted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.state = CONNECTING
        self.t_begin = monotonic_ns()
        self.t_connected = 0
        self.t_login = 0
        # The room as this client knows it: OK WHO's count, then later JOINs.
        self.who = 0
        self.joins = 0
        self.heard_all = False  # who + joins reached N
        self.complete = False  # heard all N, and its HISTORY was answered if asked
        # HISTORY (--history-request): the reply's HIST lines and OK HISTORY count.
        self.history_pending = False
        self.hist_lines = 0
        self.history_count = 0
        self.t_history_sent = 0
        self.t_history = 0
        # SAY lines: count, newest token per sender, lines out of order.
        self.received = 0
        self.reordered = 0
        self.errors = 0
        self.newest: dict[bytes, bytes] = {}
        self.drained = False
        self.probe = probe
        self.extra = extra  # a member that only fills the room; counted apart
        self.count_only = worker.spec.count_only and not probe and sender is None
        # Sending (senders only).
        self.sender = sender
        self.own = b"%05d" % sender if sender is not None else b""
        self.sent = 0

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream protocol gets a WriteTransport
        self.t_connected = monotonic_ns()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.greeted.done():
            self.greeted.set_exception(LoginFailed(
                f"server closed connection {self.nick} before HELLO" + (f": {exc}" if exc else "")))
        self.worker.client_lost(self, exc)

    def data_received(self, data: bytes) -> None:
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:] if end < len(data) else b""
        if not end:
            return
        start = 0
        if self.state != LOGGED_IN:
            start = self._login_lines(data, end)
            if self.state != LOGGED_IN:
                return
        worker = self.worker
        if not self.complete:
            if not self.heard_all:
                self.joins += data.count(b"\nJOIN ", start, end) + data.startswith(b"JOIN ", start)
                self.heard_all = self.who + self.joins >= worker.n_total
            if self.history_pending and not self._history_reply(data, start, end):
                return
            if self.heard_all and not self.history_pending:
                self.complete = True
                worker.client_complete(self)
        if worker.counting:
            if self.extra:
                worker.extra_received += (data.count(b"\nSAY ", start, end)
                                          + data.startswith(b"SAY ", start))
                return
            # ERR lines (a flood limit, say) are counted, not fatal.
            self.errors += data.count(b"\nERR ", start, end) + data.startswith(b"ERR ", start)
            self._says(data, start, end)

    # --- before OK WHO ---

    def _login_lines(self, data: bytes, end: int) -> int:
        """Read lines one by one up to ``OK WHO``; where the rest begins."""
        start = 0
        while start < end and self.state != LOGGED_IN:
            stop = data.index(b"\n", start) + 1
            line = data[start:stop]
            start = stop
            if self.state == CONNECTING:
                if not line.startswith(b"HELLO "):
                    self._fail(f"expected HELLO, got {line[:80]!r}")
                    return end
                self.state = GREETED
                self.write(wire.encode(wire.Nick(self.nick)))
                self.greeted.set_result(None)
            elif line.startswith(b"OK WHO "):
                try:
                    self.who = int(line[7:].split()[0])
                except (ValueError, IndexError):
                    self._fail(f"bad WHO count in {line[:80]!r}")
                    return end
                self.state = LOGGED_IN
                self.t_login = monotonic_ns()
                self.worker.client_logged_in(self)
                wanted = self.worker.spec.history_request
                if wanted is not None:
                    self.write(wire.encode(wire.History(str(wanted))))
                    self.history_pending = True
                    self.t_history_sent = monotonic_ns()
            elif line.startswith((b"ERR ", b"BYE ")):
                self._fail(f"server answered {self.nick}'s login with: "
                           f"{wire.format_line(wire.parse_server_line(line) or wire.Unknown(''))}")
                return end
            # OK NICK, JOIN (ours), USERS: nothing to learn.
        return start

    def _history_reply(self, data: bytes, start: int, end: int) -> bool:
        """Count ``HIST`` lines up to ``OK HISTORY``; False if the server
        refused the request (the run then fails).

        A HISTORY reply is one write, so every HIST line comes before its
        ``OK HISTORY``; JOIN lines may come before and after it.
        """
        ok = _line_at(data, b"OK HISTORY ", start, end)
        upto = end if ok < 0 else ok
        self.hist_lines += data.count(b"\nHIST ", start, upto) + data.startswith(b"HIST ", start)
        refused = _line_at(data, b"ERR ", start, upto)
        if refused >= 0:
            line = data[refused:data.index(b"\n", refused)].rstrip(b"\r")
            self._fail(f"server answered {self.nick}'s HISTORY with: "
                       f"{line[:80].decode('utf-8', 'replace')}")
            return False
        if ok < 0:
            return True
        line = data[ok:data.index(b"\n", ok)]
        try:
            self.history_count = int(line[len(b"OK HISTORY "):].split()[0])
        except (ValueError, IndexError):
            self._fail(f"bad HISTORY count in {line[:80]!r}")
            return False
        self.history_pending = False
        self.t_history = monotonic_ns()
        return True

    def closed_reason(self, exc: Exception | None) -> str:
        """Why the connection ended, in words, for the report."""
        return str(exc) if exc else "closed by the server"

    def _fail(self, why: str) -> None:
        if not self.greeted.done():
            self.greeted.set_exception(LoginFailed(why))
        self.worker.fail(why)

    # --- logged in: the hot path ---

    def _says(self, data: bytes, start: int, end: int) -> None:
        newest = self.newest
        bad = 0
        if self.probe:
            found = _SAY_TIMED.findall(data, start, end)
            if not found:
                return
            now = monotonic_ns()
            latency = self.worker.latency
            top = 0
            for token, sent in found:
                sender = token[:5]
                if token > newest.get(sender, b""):
                    newest[sender] = token
                else:
                    bad += 1
                us = (now - int(sent)) // 1000
                if us > top:
                    top = us
                shift = us.bit_length() - 10  # stats.bucket, inlined
                if shift > 0:
                    us = (us >> shift) << shift
                latency[us] = latency.get(us, 0) + 1
            if top > self.worker.latency_max:
                self.worker.latency_max = top
        elif self.count_only:
            # --check probes: count lines in C; order is checked by the probes
            # (and by senders, which need their own echoes).
            count = data.count(b"\nSAY ", start, end) + data.startswith(b"SAY ", start)
            if count:
                self.received += count
                self.worker.delivered(self, count)
            return
        else:
            found = _SAY.findall(data, start, end)
            if not found:
                return
            get = newest.get
            for token in found:
                sender = token[:5]
                if token > get(sender, b""):
                    newest[sender] = token
                else:
                    bad += 1
        count = len(found)
        self.received += count
        self.reordered += bad
        self.worker.delivered(self, count)
        if self.sender is not None:
            self.worker.echoed(self)

    # --- sending ---

    def write(self, data: bytes) -> None:
        """Send whole lines (this client is connected)."""
        self.transport.write(data)  # type: ignore[union-attr]  # set once connected

    def unechoed(self) -> int:
        """Own lines sent after the newest own line heard back."""
        newest = self.newest.get(self.own)
        return self.sent - (int(newest[5:]) + 1 if newest else 0)

    def send(self, count: int, sent_ns: int | None = None, step_ns: int = 0) -> None:
        """Send ``count`` lines in one write, stamped now or at planned times."""
        if self.transport is None or count <= 0:
            return
        assert self.sender is not None
        size = self.worker.payload_size
        first = self.sent
        if sent_ns is None:
            now = monotonic_ns()
            lines = [say_line(self.sender, seq, now, size) for seq in range(first, first + count)]
        else:
            lines = [say_line(self.sender, seq, sent_ns + i * step_ns, size)
                     for i, seq in enumerate(range(first, first + count))]
        self.write(b"".join(lines))
        self.sent += count


class WebSocketBenchClient(BenchClient):
    """A ``BenchClient`` over a WebSocket: the handshake first, then the text
    of the server's messages to the line handling, and lines out as masked
    text messages."""

    def __init__(self, worker: Worker, index: int, *, sender: int | None, probe: bool,
                 address: WsAddress, extra: bool = False) -> None:
        super().__init__(worker, index, sender=sender, probe=probe, extra=extra)
        self.address = address
        self.handshake: Handshake | None = Handshake()  # dropped once the 101 is read
        self.frames = ServerFrames()
        self._feed = self.frames.feed  # the hot path, looked up once
        self._controls_due = self.frames.controls
        self.pings = 0
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.handshake is not None
        self.transport.write(self.handshake.request(self.address))  # type: ignore[union-attr]  # just set

    def write(self, data: bytes) -> None:
        self.transport.write(text_message(data))  # type: ignore[union-attr]  # set once connected

    def data_received(self, data: bytes) -> None:
        try:
            if self.handshake is not None:
                rest = self.handshake.receive(data)
                if rest is None:
                    return
                self.handshake = None
                data = rest
            text = self._feed(data)
        except WebSocketError as exc:
            self._fail(f"WebSocket {self.address.url}, client {self.nick}: {exc}")
            if self.transport is not None:
                self.transport.abort()
            return
        if text:
            BenchClient.data_received(self, text)
        if self._controls_due:
            self._controls()

    def closed_reason(self, exc: Exception | None) -> str:
        why = BenchClient.closed_reason(self, exc)
        return why if self.close_code is None else f"{why} (WebSocket close {self.close_code})"

    def _controls(self) -> None:
        transport = self.transport
        for opcode, payload in self.frames.controls:
            if transport is None:
                break
            if opcode == PING:
                self.pings += 1
                transport.write(pong(payload))
            elif opcode == CLOSE:
                self.close_code = close_code(payload)
                transport.write(close_frame(payload))
                transport.close()
                transport = None
        self.frames.controls.clear()
