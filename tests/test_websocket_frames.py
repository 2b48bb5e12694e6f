"""The WebSocket door's own frames (``text_frame``, ``framed``), read back by
wsproto as a client would read them: pure, no sockets."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from chatd.transports.websocket import framed, text_frame


def client_reads(data: bytes, *, piece: int | None = None) -> list[tuple[str, bool]]:
    """What a wsproto client makes of ``data``, fed whole or ``piece`` bytes at a time:
    each message as (text, finished), partial events joined."""
    client = Connection(ConnectionType.CLIENT)
    messages: list[tuple[str, bool]] = []
    text = ""
    step = piece or len(data) or 1
    for start in range(0, max(len(data), 1), step):
        client.receive_data(data[start:start + step])
        for event in client.events():
            assert isinstance(event, TextMessage), event
            text += event.data
            if event.message_finished:
                messages.append((text, True))
                text = ""
    if text:
        messages.append((text, False))
    return messages


class TestTextFrame:
    """One unmasked, final text frame per payload, with the right length form."""

    @pytest.mark.parametrize(("size", "header"), [
        (0, b"\x81\x00"),
        (1, b"\x81\x01"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ])
    def test_length_forms(self, size: int, header: bytes) -> None:
        """7-bit length to 125, 16-bit to 65535, 64-bit beyond (RFC 6455 section 5.2)."""
        payload = b"x" * size
        frame = text_frame(payload)
        assert frame == header + payload

    @pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
    def test_a_client_reads_one_whole_message(self, size: int) -> None:
        """wsproto, as a client, reads each size back as one finished text message."""
        payload = (b"SAY ann " + b"y" * size)[:size]
        assert client_reads(text_frame(payload)) == [(payload.decode(), True)]

    @pytest.mark.parametrize("size", [125, 126, 65536])
    def test_a_client_reads_it_in_pieces(self, size: int) -> None:
        """Delivered a few bytes at a time, it is still the same one message."""
        payload = b"z" * size
        assert client_reads(text_frame(payload), piece=7 if size < 1000 else 4093) == [
            (payload.decode(), True)]

    def test_utf8_lines_pass_as_they_are(self) -> None:
        """The payload is UTF-8 lines already; the frame carries them unchanged."""
        lines = "SAY ann héllo wörld ☃\r\nSAY bob 日本語\r\n".encode()
        frame = text_frame(lines)
        assert frame[2:] == lines
        assert client_reads(frame) == [(lines.decode(), True)]

    def test_frames_back_to_back_are_separate_messages(self) -> None:
        """Two writes are two messages, in order."""
        assert client_reads(text_frame(b"PONG 1\r\n") + text_frame(b"x" * 200)) == [
            ("PONG 1\r\n", True), ("x" * 200, True)]


class TestFramed:
    """One flush writes one bytes object to every member: one frame for all."""

    def test_the_same_bytes_object_gets_the_same_frame_object(self) -> None:
        """Framing the same object again costs nothing: the frame is the very same object."""
        data = b"SAY ann hi\r\n" * 3
        first = framed(data)
        assert first == text_frame(data)
        assert framed(data) is first
        assert framed(data) is first

    def test_equal_bytes_in_another_object_are_framed_afresh(self) -> None:
        """Only identity is checked: an equal object gets an equal frame, made anew,
        and the cache then follows the new object."""
        data = b"SAY ann hi\r\n"
        other = bytes(bytearray(data))
        assert other is not data
        first = framed(data)
        second = framed(other)
        assert second == first
        assert second is not first
        assert framed(other) is second

    def test_a_new_object_replaces_the_last(self) -> None:
        """Alternating objects each get their own correct frame."""
        one, two = b"JOIN ann\r\n", b"PART ann leaving\r\n"
        for _ in range(3):
            assert framed(one) == text_frame(one)
            assert framed(two) == text_frame(two)

    def test_the_empty_payload(self) -> None:
        """Empty bytes frame as an empty text message."""
        assert framed(b"") == b"\x81\x00"
