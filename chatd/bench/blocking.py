"""One blocking connection for the parent process: the probe and the prefill.

These run before any worker exists, one connection at a time, so a plain
socket with a timeout per read is enough.  ``TcpStream`` is the socket
itself; ``WebSocketStream`` does the opening handshake on connect and gives
back the text of the server's messages, answering pings on the way, so the
code above reads the same lines either way.
"""

from __future__ import annotations

import socket
import time

from chatd.bench.websocket import (
    CLOSE,
    PING,
    Handshake,
    HandshakeFailed,
    ServerFrames,
    WsAddress,
    close_frame,
    pong,
    text_message,
)

MESSAGE_BYTES = 32768


class TcpStream:
    """Lines over plain TCP."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def recv(self, timeout: float) -> bytes:
        """What the server sent next; ``b""`` once it closed.  ``TimeoutError``
        after ``timeout`` seconds of nothing."""
        self.sock.settimeout(max(0.001, timeout))
        return self.sock.recv(65536)

    def send(self, lines: bytes) -> None:
        self.sock.sendall(lines)

    def close(self) -> None:
        self.sock.close()


class WebSocketStream(TcpStream):
    """Lines over a WebSocket: the upgrade on connect, then text messages."""

    def __init__(self, address: WsAddress, timeout: float) -> None:
        super().__init__(address.host, address.port, timeout)
        self.frames = ServerFrames()
        self.closed = False
        deadline = time.monotonic() + timeout
        handshake = Handshake()
        try:
            self.sock.sendall(handshake.request(address))
            while True:
                chunk = super().recv(deadline - time.monotonic())
                if not chunk:
                    raise HandshakeFailed("the server closed the connection during the upgrade")
                rest = handshake.receive(chunk)
                if rest is not None:
                    break
            self.first = self.frames.feed(rest)
            self._controls()
        except BaseException:
            self.sock.close()
            raise

    def recv(self, timeout: float) -> bytes:
        """The next text the server sent; ``b""`` once it closed (or sent a
        close frame, which is answered)."""
        if self.first:
            text, self.first = self.first, b""
            return text
        deadline = time.monotonic() + timeout
        while not self.closed:
            chunk = super().recv(deadline - time.monotonic())
            if not chunk:
                return b""
            text = self.frames.feed(chunk)
            self._controls()
            if text:
                return text
        return b""

    def send(self, lines: bytes) -> None:
        """Whole lines, in messages of at most ``MESSAGE_BYTES`` (a server
        bounds a message: chatd closes with 1009 past ``--max-recvq``)."""
        start = 0
        while start < len(lines):
            stop = len(lines)
            if stop - start > MESSAGE_BYTES:
                stop = lines.rfind(b"\n", start, start + MESSAGE_BYTES) + 1 or start + MESSAGE_BYTES
            self.sock.sendall(text_message(lines[start:stop]))
            start = stop

    def _controls(self) -> None:
        for opcode, payload in self.frames.controls:
            if opcode == PING and not self.closed:
                self.sock.sendall(pong(payload))
            elif opcode == CLOSE and not self.closed:
                self.sock.sendall(close_frame(payload))
                self.closed = True
        self.frames.controls.clear()


def connect(host: str, port: int, ws: WsAddress | None, timeout: float) -> TcpStream:
    """A blocking connection to ``ws`` if given, else to ``host:port``."""
    if ws is not None:
        return WebSocketStream(ws, timeout)
    return TcpStream(host, port, timeout)
