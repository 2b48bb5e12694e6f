"""The network edge: one TCP (or TLS) connection to chatd, kept alive.

Bytes are cut into lines by ``chatd.framing.LineFramer`` (the server's own
framer, so both ends agree on what a line is), parsed with
``chatd.wire.parse_timed_server_line`` (protocol 1.1's ``@<time>`` prefix, if
a line has one, and the message) and handed to a ``Listener``; messages go out
as ``chatd.wire.encode`` bytes.  When the
connection drops, ``Connection`` tells the listener, waits with exponential
backoff and connects again, until ``close``.  It makes no decisions about the
chat itself (logging in again is the listener's business).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chatd import wire
from chatd.framing import LineFramer

LINE_LIMIT = 1 << 20  # far above any line chatd sends; only bounds our memory
READ_SIZE = 1 << 16


class ConnectError(Exception):
    """The server could not be reached; the message is one line for the user."""


class Listener(Protocol):
    """What a connection reports to."""

    def connection_made(self) -> None: ...
    def message_received(self, message: wire.ServerMessage, stamp: str | None = None) -> None: ...
    def connection_lost(self, reason: str) -> None: ...
    def reconnecting(self, delay: float, attempt: int, failure: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts: ``initial``, doubling, capped."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 15.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


def describe(error: BaseException, host: str, port: int) -> str:
    """An OS or TLS failure as a short phrase (no traceback, no errno soup)."""
    if isinstance(error, socket.gaierror):
        return f"unknown host {host!r}"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused by {host}:{port} (is chatd running there?)"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {getattr(error, 'reason', None) or error}"
    if isinstance(error, TimeoutError):
        return f"timed out connecting to {host}:{port}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return str(error) or type(error).__name__


def parse(raw: bytes) -> tuple[str | None, wire.ServerMessage | None]:
    """One received line as its ``@<time>`` (None without one) and message;
    a line that is not UTF-8 still shows, with replacement characters, rather
    than as an unknown line."""
    return wire.parse_timed_server_line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))


class Connection:
    """A chatd connection that reconnects until closed."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None = None,
                 backoff: Backoff = Backoff(), timeout: float = 10.0,
                 reconnect: bool = True, max_line: int = LINE_LIMIT) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.backoff = backoff
        self.timeout = timeout
        self.reconnect = reconnect
        self.max_line = max_line
        self.too_long = 0  # over-long lines dropped, over all connections
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self) -> None:
        """Connect once; ``ConnectError`` if the server cannot be reached."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.tls,
                    server_hostname=self.host if self.tls else None),
                self.timeout)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise ConnectError(describe(error, self.host, self.port)) from None

    def start(self, listener: Listener) -> asyncio.Task[None]:
        """Begin reading (after ``open``), reconnecting whenever it drops."""
        self._task = asyncio.ensure_future(self._run(listener))
        return self._task

    def send(self, message: wire.ClientMessage) -> bool:
        """Queue one message; False when there is no connection right now."""
        if not self.connected:
            return False
        assert self._writer is not None
        self._writer.write(wire.encode(message))
        return True

    async def drain(self) -> None:
        """Wait until what was sent is (mostly) handed to the kernel, so a
        fast producer waits for the server instead of buffering without end."""
        writer = self._writer
        if writer is not None and not writer.is_closing():
            try:
                await writer.drain()
            except (OSError, ssl.SSLError):
                pass  # the reader reports the loss

    async def close(self, grace: float = 2.0) -> None:
        """Stop reconnecting; give the server ``grace`` seconds to hang up
        (after our QUIT it sends BYE and closes), then hang up ourselves."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except (TimeoutError, asyncio.CancelledError):
                pass
        self._drop()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- inside ---

    async def _run(self, listener: Listener) -> None:
        while True:
            listener.connection_made()
            reason = await self._read_all(listener)
            self._drop()
            listener.connection_lost(reason)
            if self._closing or not self.reconnect or not await self._reconnect(listener):
                return

    async def _read_all(self, listener: Listener) -> str:
        """Deliver lines until the connection ends; why it ended.

        A line over ``max_line`` is dropped whole, up to its LF, and counted:
        showing its tail as a line of its own would show something the
        server never sent.  An unfinished line at the end is dropped too."""
        reader = self._reader
        assert reader is not None
        framer = LineFramer(self.max_line)  # fresh per connection: no stale half-line
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except (OSError, ssl.SSLError) as error:
                return describe(error, self.host, self.port)
            if not data:
                return "the server closed the connection"
            framer.feed(data)
            for raw in framer.lines():
                if not isinstance(raw, bytes):  # TOO_LONG
                    self.too_long += 1
                    continue
                stamp, message = parse(raw)
                if message is not None:
                    listener.message_received(message, stamp)

    async def _reconnect(self, listener: Listener) -> bool:
        """Try again with backoff; False if closed meanwhile."""
        failure = None
        for attempt, delay in enumerate(self.backoff.delays(), 1):
            listener.reconnecting(delay, attempt, failure)
            if await self._sleep(delay):
                return False
            try:
                await self.open()
            except ConnectError as error:
                failure = str(error)
                continue
            if self._closing:
                self._drop()
                return False
            return True
        return False  # pragma: no cover - the delays never run out

    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; True if ``close`` interrupted the wait."""
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except TimeoutError:
            return False
        return True

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
