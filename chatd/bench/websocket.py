"""chatd-bench's WebSocket client side, with no I/O: the address, the
opening handshake, the server's frames in and the client's frames out.

Protocol v1 over WebSocket (chatd's ``--web`` door, ``/ws``): a server text
message carries one or more complete CRLF lines, a client text message one
or more lines.  So the text of the server's messages, joined, is exactly the
byte stream a TCP client reads, and ``BenchClient``'s line handling reads it
unchanged.

* **Handshake and client frames: wsproto.**  ``H11Handshake`` writes the
  upgrade request and checks the ``101`` (the ``Sec-WebSocket-Accept``
  token, the headers); a wsproto ``Connection`` masks each client frame with
  a fresh key (RFC 6455 section 5.3).  Both are rare: one handshake per
  client, and a message per line a sender sends.
* **Server frames: ``ServerFrames``, by hand.**  This is the hot path: at
  1000 members each flush of the server is read 1000 times.  wsproto's
  parser costs about 12.7 µs per frame here (a frame object, a message
  object, UTF-8 decoding, and encoding back to bytes for the line code),
  against 0.4 µs for a look at the header and one slice; the server's
  cost is about 1 µs per delivery, so wsproto would make the load
  generator the bottleneck.  Server frames are unmasked (RFC 6455 section
  5.1), so the text is a slice of what was read.  Text needs no UTF-8
  check: the lines are only counted and matched as bytes.  The tests check
  this parser against frames that wsproto's server side makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import ProtocolError

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE: Final = 1000
MAX_RESPONSE_HEAD: Final = 16384  # a 101 is a few hundred bytes
DEFAULT_PATH: Final = "/ws"  # chatd's WebSocket door


class WebSocketError(Exception):
    """The WebSocket did not open, or the server broke the framing."""


class HandshakeFailed(WebSocketError):
    """The server did not accept the upgrade; the message says what it said."""


class FrameError(WebSocketError):
    """The server sent a frame a chatd server never sends."""


# --- where ----------------------------------------------------------------------


@dataclass(frozen=True)
class WsAddress:
    """Where the WebSocket is: ``ws://host:port/path``."""

    host: str
    port: int
    path: str = DEFAULT_PATH

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str, default_host: str) -> WsAddress:
    """``--ws``: a port (``ws://default_host:PORT/ws``) or a ``ws://`` URL (the
    path is ``/ws`` when the URL has none); ``ValueError`` in words otherwise."""
    if text.isdigit():
        port = int(text)
        if not 1 <= port <= 65535:
            raise ValueError(f"{text!r} is not a port to connect to (1-65535)")
        return WsAddress(default_host, port)
    try:
        parts = urlsplit(text)
        given = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if parts.scheme == "wss":
        raise ValueError(f"{text!r}: wss:// (TLS) is not supported; measure ws:// on loopback")
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"{text!r} is neither a port nor a ws://HOST:PORT/PATH URL")
    path = parts.path or DEFAULT_PATH
    if parts.query:
        path += "?" + parts.query
    return WsAddress(parts.hostname, 80 if given is None else given, path)


# --- the opening handshake ------------------------------------------------------


class Handshake:
    """The client's side of the opening handshake (RFC 6455 section 4.1)."""

    __slots__ = ("_h11", "_head")

    def __init__(self) -> None:
        self._h11 = H11Handshake(ConnectionType.CLIENT)
        self._head = b""

    def request(self, address: WsAddress) -> bytes:
        """The upgrade request, with a fresh ``Sec-WebSocket-Key``.  No
        ``Origin``: chatd lets a client that is not a browser omit it."""
        return self._h11.send(Request(host=address.host_header, target=address.path))

    def receive(self, data: bytes) -> bytes | None:
        """Read the server's response: ``None`` while its head is incomplete,
        then what came after it (the first frames); ``HandshakeFailed`` if
        the server did not switch to WebSocket.

        Only the head goes to wsproto, so that no frame is left inside it.
        """
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_RESPONSE_HEAD:
                raise HandshakeFailed(f"no end to the response head in {len(head):,} bytes")
            self._head = head
            return None
        end += 4
        self._head = b""
        try:
            self._h11.receive_data(head[:end])
            events = list(self._h11.events())
        except ProtocolError as exc:
            raise HandshakeFailed(f"bad handshake response ({exc}): "
                                  f"{_first_line(head)!r}") from None
        for event in events:
            if isinstance(event, AcceptConnection):
                return head[end:]
            if isinstance(event, RejectConnection):
                body = head[end:].split(b"\n", 1)[0].strip().decode("utf-8", "replace")
                raise HandshakeFailed(f"the server answered HTTP {event.status_code} instead "
                                      f"of switching to WebSocket" + (f": {body[:100]}" if body
                                                                      else ""))
        raise HandshakeFailed(f"unexpected handshake response: {_first_line(head)!r}")


def _first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0][:100].decode("utf-8", "replace")


# --- client frames out (masked, by wsproto) -------------------------------------

# Sends only messages and pongs, so it stays OPEN and every client of a
# process can share it: each frame gets its own random mask all the same.
_OUT: Final = Connection(ConnectionType.CLIENT)


def text_message(data: bytes) -> bytes:
    """One masked text message holding ``data`` (lines, UTF-8)."""
    return _OUT.send(TextMessage(data=data.decode("utf-8")))


def pong(payload: bytes) -> bytes:
    """The masked answer to a ping (RFC 6455 section 5.5.3: the same payload)."""
    return _OUT.send(Pong(payload=payload))


def close_frame(payload: bytes) -> bytes:
    """The masked answer to the server's close frame: its status code echoed
    (RFC 6455 section 5.5.1), or 1000 if it gave none."""
    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NORMAL_CLOSURE
    return Connection(ConnectionType.CLIENT).send(CloseConnection(code=code))


def close_code(payload: bytes) -> int | None:
    """The status code of a close frame's payload, if it has one."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


# --- server frames in (unmasked, by hand: the hot path) -------------------------


class ServerFrames:
    """Turns the bytes read from the server into the text its messages carry,
    as one stream, and keeps the control frames (ping, pong, close) aside.

    Text is passed on as soon as it arrives, a frame's payload split over
    reads included, so a big frame (a flush full of JOIN lines in a login
    storm) is never gathered whole.  Only a frame header, or a control frame
    (at most 127 bytes), is kept across reads.
    """

    __slots__ = ("_left", "_head", "controls")

    def __init__(self) -> None:
        self._left = 0  # payload bytes still due in the text frame under way
        self._head = b""  # an unfinished header or control frame
        self.controls: list[tuple[int, bytes]] = []  # (opcode, payload), for the caller to act on

    def feed(self, data: bytes) -> bytes:
        """The text in ``data`` (and what came before it); ``FrameError`` for
        a frame the server should not send."""
        left = self._left
        if not left and not self._head and len(data) > 2 and not data[0] & 0x7E:
            # The common read: exactly one whole text (or continuation) frame.
            # (0x7E clear: no reserved bit, opcode 0 or 1; a size byte under
            # 126 has the mask bit clear.)
            size = data[1]
            if size < 126:
                if size + 2 == len(data):
                    return data[2:]
            elif size == 126 and len(data) > 4 and (data[2] << 8 | data[3]) + 4 == len(data):
                return data[4:]
        if left:
            if left >= len(data):  # the common case mid-frame: all of it is text
                self._left = left - len(data)
                return data
            parts = [data[:left]]
            pos = left
            self._left = 0
        else:
            if self._head:
                data = self._head + data
                self._head = b""
            parts = []
            pos = 0
        n = len(data)
        while n - pos >= 2:
            first, second = data[pos], data[pos + 1]
            if second & 0x80:
                raise FrameError("the server masked a frame (RFC 6455 section 5.1 forbids it)")
            if first & 0x70:
                raise FrameError("a frame with reserved bits set (no extension was agreed)")
            size = second & 0x7F
            start = pos + 2
            if size == 126:
                start = pos + 4
                if start > n:
                    break
                size = int.from_bytes(data[pos + 2:start], "big")
            elif size == 127:
                start = pos + 10
                if start > n:
                    break
                size = int.from_bytes(data[pos + 2:start], "big")
            opcode = first & 0x0F
            end = start + size
            if opcode == TEXT or opcode == CONTINUATION:
                if end > n:
                    parts.append(data[start:])
                    self._left = end - n
                    return b"".join(parts)
                parts.append(data[start:end])
            elif opcode in (PING, PONG, CLOSE):
                if size > 125 or not first & 0x80:
                    raise FrameError("a control frame over 125 bytes or fragmented")
                if end > n:
                    break
                self.controls.append((opcode, data[start:end]))
            elif opcode == BINARY:
                raise FrameError("the server sent a binary message; chatd sends lines as text")
            else:
                raise FrameError(f"a frame with the reserved opcode {opcode:#x}")
            pos = end
        if pos < n:
            self._head = data[pos:]
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)
