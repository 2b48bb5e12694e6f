"""WebSocket helpers for the tests of chatd's web door.

* ``client_frame`` builds the frames a client sends (masked, RFC 6455
  section 5.3) byte by byte, including ones wsproto and browsers never send:
  a text frame that is not UTF-8, a binary frame, a piece of a fragmented
  message.
* ``start_web`` runs the real ``chatd`` with ``--web`` and/or ``--metrics``
  on free loopback ports and reads where each listener is.
* ``WSClient`` (the ``websockets`` sync client) and ``RawWS`` (a socket, with
  wsproto for the handshake and for reading) speak protocol v1 in text
  messages; ``http_get`` and ``scrape`` read the HTTP side and ``/metrics``.

Every wait is bounded by a timeout; nothing sleeps.
"""

from __future__ import annotations

import http.client
import os
import re
import selectors
import socket
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.support import ROOT, RunningServer, chatd_command

LOCAL = "tcp:0:interface=127.0.0.1"
_SERVING = re.compile(r"(listening|serving the page|serving /metrics) on (?:https?://)?([\d.]+):(\d+)")

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One masked frame from a client, as its bytes on the wire."""
    mask = os.urandom(4) if mask is None else mask
    size = len(payload)
    head = bytes(((0x80 if fin else 0) | opcode,))
    if size < 126:
        head += bytes((0x80 | size,))
    elif size < 0x10000:
        head += bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + size.to_bytes(8, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + mask + masked


def text(line: str | bytes, *, fin: bool = True) -> bytes:
    """A client's text frame holding ``line`` (bytes are sent as they are)."""
    return client_frame(TEXT, line.encode() if isinstance(line, str) else line, fin=fin)


HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)


def handshake(*headers: str) -> bytes:
    """The opening handshake of RFC 6455 section 1.3, with extra ``Name: value`` headers."""
    return HANDSHAKE + b"".join(header.encode() + b"\r\n" for header in headers) + b"\r\n"


# --- the server -------------------------------------------------------------------


@dataclass
class WebServer:
    """A ``chatd`` with a TCP listener and a ``--web`` and/or ``--metrics`` one."""

    server: RunningServer
    web_port: int | None
    metrics_port: int | None

    @property
    def host(self) -> str:
        """The TCP listener's host."""
        return self.server.host

    @property
    def port(self) -> int:
        """The TCP listener's port."""
        return self.server.port

    @property
    def web(self) -> int:
        """The ``--web`` listener's port."""
        assert self.web_port is not None, "no --web listener"
        return self.web_port

    @property
    def metrics(self) -> int:
        """The ``--metrics`` listener's port."""
        assert self.metrics_port is not None, "no --metrics listener"
        return self.metrics_port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.web}/ws"


def start_web(*args: str, web: bool = True, metrics: bool = False, timeout: float = 20.0) -> WebServer:
    """Start ``chatd --listen`` plus ``--web`` and/or ``--metrics`` on free loopback
    ports, and wait until it says where each one listens."""
    command = [*chatd_command(), "--listen", LOCAL]
    command += ["--web", LOCAL] if web else []
    command += ["--metrics", LOCAL] if metrics else []
    command += list(args)
    log_file = tempfile.NamedTemporaryFile(prefix="chatd-web-", suffix=".log", delete=False)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file,
                               stdin=subprocess.DEVNULL, cwd=ROOT)
    log_file.close()
    assert process.stdout is not None
    found: dict[str, tuple[str, int]] = {}
    expected = 1 + web + metrics
    pending = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while len(found) < expected:
            remaining = deadline - time.monotonic()
            chunk = os.read(process.stdout.fileno(), 4096) if remaining > 0 and selector.select(
                remaining) else b""
            if not chunk:
                process.kill()
                process.wait(5)
                raise RuntimeError(f"chatd did not start: {Path(log_file.name).read_text()}")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                match = _SERVING.search(line.decode())
                if match:
                    found[match.group(1)] = (match.group(2), int(match.group(3)))
    host, port = found["listening"]
    return WebServer(RunningServer(process, host, port, Path(log_file.name)),
                     found["serving the page"][1] if web else None,
                     found["serving /metrics"][1] if metrics else None)


# --- the clients ------------------------------------------------------------------


class Lines:
    """Server lines from text messages: each message must be whole lines, each
    ending CRLF (protocol v1 over WebSocket), none of them empty."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()
        self.messages = 0

    def add(self, message: str) -> None:
        assert message.endswith("\r\n"), message
        parts = message[:-2].split("\r\n")
        assert all(parts), message
        self.lines.extend(parts)
        self.messages += 1


class WSClient:
    """The ``websockets`` sync client, speaking protocol v1 one message at a time."""

    def __init__(self, url: str, *, origin: str | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 5.0) -> None:
        self._stack = ExitStack()  # connect() is a context manager (websockets 17 warns otherwise)
        self.ws: ClientConnection = self._stack.enter_context(connect(
            url, proxy=None, origin=Origin(origin) if origin else None, additional_headers=headers,
            open_timeout=timeout, close_timeout=timeout, ping_interval=None))
        self.timeout = timeout
        self._in = Lines()

    def send(self, *lines: str) -> None:
        """``lines`` as one text message, LF between them and none at the end."""
        self.ws.send("\n".join(lines))

    def read_line(self) -> str:
        while not self._in.lines:
            message = self.ws.recv(timeout=self.timeout)
            assert isinstance(message, str), f"a binary message from the server: {message!r}"
            self._in.add(message)
        return self._in.lines.popleft()

    def read_until(self, prefix: str) -> list[str]:
        lines = []
        while True:
            lines.append(self.read_line())
            if lines[-1].startswith(prefix):
                return lines

    def sync(self, token: str = "sync") -> list[str]:
        """Every line before the ``PONG`` of a ``PING`` (see ``LineClient.sync``)."""
        self.send(f"PING {token}")
        lines = self.read_until(f"PONG {token}")
        assert lines[-1] == f"PONG {token}", lines
        return lines[:-1]

    def login(self, nick: str) -> list[str]:
        hello = self.read_line()
        assert hello.startswith("HELLO chatd/"), hello
        self.send(f"NICK {nick}")
        return self.read_until("OK WHO")

    def closed(self) -> tuple[list[str], int | None, str]:
        """The lines left, then the server's close code and reason."""
        lines = []
        try:
            for _ in range(10_000):
                lines.append(self.read_line())
            raise AssertionError(f"still open after {lines[-3:]}")
        except ConnectionClosed as closed:
            lines += list(self._in.lines)
            frame = closed.rcvd
            return lines, (frame.code if frame else None), (frame.reason if frame else "")

    def close(self) -> None:
        self._stack.close()


class RawWS:
    """A socket with wsproto for the handshake and for reading; frames out are
    whatever the test writes.  Answers pings unless told not to."""

    def __init__(self, host: str, port: int, *headers: tuple[bytes, bytes], answer_pings: bool = True,
                 rcvbuf: int | None = None, timeout: float = 5.0) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.answer_pings = answer_pings
        self.pings = 0
        self.close_event: CloseConnection | None = None
        self.eof = False
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._in = Lines()
        self._text = ""
        self._accepted = False
        self.sock.sendall(self._ws.send(Request(host=f"{host}:{port}", target="/ws",
                                                extra_headers=list(headers))))
        self._pump_until(lambda: self._accepted)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _pump(self) -> None:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                self._accepted = True
            elif isinstance(event, RejectConnection):
                raise AssertionError(f"handshake refused: {event.status_code}")
            elif isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self._in.add(self._text)
                    self._text = ""
            elif isinstance(event, Ping):
                self.pings += 1
                if self.answer_pings:
                    self.sock.sendall(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_event = event

    def _pump_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not condition():
            if self.eof or self.close_event is not None:
                raise EOFError("closed by the server")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nothing within the timeout")
            self.sock.settimeout(remaining)
            self._pump()

    def read_line(self) -> str:
        self._pump_until(lambda: bool(self._in.lines))
        return self._in.lines.popleft()

    def wait_for_pings(self, count: int) -> None:
        self._pump_until(lambda: self.pings >= count)

    def login(self, nick: str) -> None:
        assert self.read_line().startswith("HELLO chatd/")
        self.send(text(f"NICK {nick}"))
        while not self.read_line().startswith("OK WHO"):
            pass

    def sync(self, token: str = "sync") -> list[str]:
        self.send(text(f"PING {token}"))
        lines = []
        while (line := self.read_line()) != f"PONG {token}":
            lines.append(line)
        return lines

    def closed(self) -> tuple[list[str], int | None]:
        """The lines left, then the code of the server's close frame (None: no frame)."""
        deadline = time.monotonic() + self.timeout
        while self.close_event is None and not self.eof and time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self._pump()
        assert self.close_event is not None or self.eof, "still open"
        return list(self._in.lines), (self.close_event.code if self.close_event else None)

    def close(self) -> None:
        self.sock.close()


# --- HTTP and /metrics ------------------------------------------------------------


def http_get(port: int, path: str, *headers: tuple[str, str],
             method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


UPGRADE = (("Upgrade", "websocket"), ("Connection", "Upgrade"),
           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """``/metrics``, parsed as Prometheus does: (sample name, labels) to value."""
    status, headers, body = http_get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def figure(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
