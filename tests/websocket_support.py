"""WebSocket helpers for the tests of chatd's web door.

``client_frame`` builds the frames a client sends (masked, RFC 6455 section
5.3) byte by byte, including ones wsproto and browsers never send: a text
frame that is not UTF-8, a binary frame, a frame out of a fragmented message.
"""

from __future__ import annotations

import os

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
