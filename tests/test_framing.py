"""The pure line framer: every case fed whole, byte by byte, and with
trailing data after it (h11's ``tr()``), plus a property over arbitrary splits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatd.framing import TOO_LONG, LineFramer, TooLong

MAX = 16
TRAIL = b"PING trailing"  # an unfinished line, shorter than MAX


def frame_whole(data: bytes, max_line: int = MAX) -> list[bytes | TooLong]:
    framer = LineFramer(max_line)
    framer.feed(data)
    return framer.lines()


def frame_byte_by_byte(data: bytes, max_line: int = MAX) -> list[bytes | TooLong]:
    framer = LineFramer(max_line)
    found: list[bytes | TooLong] = []
    for index in range(len(data)):
        framer.feed(data[index:index + 1])
        found.extend(framer.lines())
    return found


def frames(data: bytes, expected: list[bytes | TooLong], max_line: int = MAX) -> None:
    """Assert ``data`` frames as ``expected`` whole, byte by byte, and with an
    unfinished line after it that waits, whole, until its LF arrives."""
    assert data.endswith(b"\n"), "cases end at a line boundary"
    assert frame_whole(data, max_line) == expected
    assert frame_byte_by_byte(data, max_line) == expected
    framer = LineFramer(max_line)
    framer.feed(data + TRAIL)
    assert framer.lines() == expected
    assert framer.buffered == len(TRAIL)
    framer.feed(b"\n")
    assert framer.lines() == [TRAIL]
    assert framer.buffered == 0


class TestLineEnds:
    """LF, CRLF and empty lines."""

    def test_lf_line(self) -> None:
        """A line ending in LF is returned without it."""
        frames(b"NICK ann\n", [b"NICK ann"])

    def test_crlf_line(self) -> None:
        """A CR just before the LF is dropped too."""
        frames(b"NICK ann\r\n", [b"NICK ann"])

    def test_mixed_endings_in_one_stream(self) -> None:
        """LF and CRLF lines may follow each other in any order."""
        frames(b"a\r\nb\nc\r\nd\n", [b"a", b"b", b"c", b"d"])

    def test_empty_lines(self) -> None:
        """An empty line, with LF or CRLF, is returned as an empty line."""
        frames(b"\n\r\nx\n\n", [b"", b"", b"x", b""])

    def test_only_the_cr_before_the_lf_is_dropped(self) -> None:
        """A CR elsewhere in the line, or a second CR before the LF, is kept."""
        frames(b"a\rb\r\r\n", [b"a\rb\r"])

    def test_nothing_is_returned_before_the_lf(self) -> None:
        """An unfinished line waits in the buffer, including a CR at its end."""
        framer = LineFramer(MAX)
        framer.feed(b"NICK ann\r")
        assert framer.next_line() is None
        assert framer.buffered == len(b"NICK ann\r")
        framer.feed(b"\n")
        assert framer.next_line() == b"NICK ann"
        assert framer.next_line() is None


class TestLimit:
    """Lines at and over ``max_line``."""

    def test_line_of_exactly_max_line_bytes(self) -> None:
        """A line of exactly max_line bytes is accepted with LF."""
        frames(b"z" * MAX + b"\n", [b"z" * MAX])

    def test_line_of_exactly_max_line_bytes_with_crlf(self) -> None:
        """A line of exactly max_line bytes is accepted with CRLF (the CR is not counted)."""
        frames(b"z" * MAX + b"\r\n", [b"z" * MAX])

    def test_one_byte_over_is_too_long(self) -> None:
        """A line of max_line + 1 bytes is refused as TOO_LONG with LF."""
        frames(b"z" * (MAX + 1) + b"\n", [TOO_LONG])

    def test_one_byte_over_with_crlf_is_too_long(self) -> None:
        """A line of max_line + 1 bytes is refused as TOO_LONG with CRLF too."""
        frames(b"z" * (MAX + 1) + b"\r\n", [TOO_LONG])

    def test_max_line_bytes_and_a_kept_cr_is_too_long(self) -> None:
        """max_line bytes plus a CR that is not the one before the LF is over the limit."""
        frames(b"z" * MAX + b"\r\r\n", [TOO_LONG])

    def test_long_line_between_good_lines(self) -> None:
        """The lines before and after an over-long line are intact."""
        frames(b"before\n" + b"x" * 100 + b"\nafter\r\n", [b"before", TOO_LONG, b"after"])

    def test_long_line_tail_is_never_a_line(self) -> None:
        """However the over-long line arrives, its tail is discarded up to the LF."""
        frames(b"x" * 40 + b"yyy\nok\n", [TOO_LONG, b"ok"])

    def test_two_long_lines_in_a_row(self) -> None:
        """Each over-long line is refused once, and the next good line is returned."""
        frames(b"x" * 40 + b"\n" + b"y" * 40 + b"\nok\n", [TOO_LONG, TOO_LONG, b"ok"])

    def test_unfinished_long_line_is_refused_once_in_bounded_memory(self) -> None:
        """Megabytes without an LF give one TOO_LONG, keep at most max_line + 1
        bytes buffered, and the line after the eventual LF is intact."""
        framer = LineFramer(1024)
        found: list[bytes | TooLong] = []
        chunk = b"x" * 4096
        for _ in range(512):  # 2 MiB
            framer.feed(chunk)
            found.extend(framer.lines())
            assert framer.buffered <= 1024 + 1
        framer.feed(b"still the same line\nPING ok\n")
        found.extend(framer.lines())
        assert found == [TOO_LONG, b"PING ok"]

    def test_unfinished_line_is_refused_once_it_passes_max_line_plus_one(self) -> None:
        """Without an LF, max_line + 1 bytes may still be a line with its CR; one more is not."""
        framer = LineFramer(MAX)
        framer.feed(b"z" * (MAX + 1))
        assert framer.next_line() is None
        framer.feed(b"z")
        assert framer.next_line() is TOO_LONG
        assert framer.buffered == 0
        framer.feed(b"zzz\r\nok\n")
        assert framer.lines() == [b"ok"]

    def test_too_long_marker_reads_as_its_name(self) -> None:
        """TOO_LONG shows as TOO_LONG in assertion messages."""
        assert repr(TOO_LONG) == "TOO_LONG"


class TestBufferApi:
    """``next_line`` one at a time, ``lines()`` and ``clear()``."""

    def test_next_line_takes_one_line_at_a_time(self) -> None:
        """next_line hands out one line per call and keeps the rest, in order."""
        framer = LineFramer(MAX)
        framer.feed(b"a\nb\nc")
        assert framer.next_line() == b"a"
        assert framer.buffered == len(b"b\nc")
        framer.feed(b"\n")
        assert framer.next_line() == b"b"
        assert framer.next_line() == b"c"
        assert framer.next_line() is None
        assert framer.buffered == 0

    def test_lines_returns_every_available_line(self) -> None:
        """lines() returns every whole line and keeps the unfinished one."""
        framer = LineFramer(MAX)
        framer.feed(b"a\n" + b"x" * 30 + b"\nb\r\nc")
        assert framer.lines() == [b"a", TOO_LONG, b"b"]
        assert framer.lines() == []
        assert framer.buffered == 1

    def test_idle_once_everything_is_handed_out(self) -> None:
        """A framer is idle when it holds no bytes and skips no refused line."""
        framer = LineFramer(MAX)
        assert framer.idle
        framer.feed(b"a\nb")
        assert not framer.idle
        assert framer.lines() == [b"a"]
        assert not framer.idle
        framer.feed(b"\n")
        assert framer.lines() == [b"b"] and framer.idle
        framer.feed(b"y" * (MAX + 2))
        assert framer.lines() == [TOO_LONG]
        assert not framer.idle  # still throwing the rest of that line away
        framer.feed(b"tail\n")
        assert framer.lines() == [] and framer.idle

    def test_clear_forgets_everything_buffered(self) -> None:
        """clear() drops whole and unfinished lines alike."""
        framer = LineFramer(MAX)
        framer.feed(b"a\nb\nunfinished")
        assert framer.next_line() == b"a"
        framer.clear()
        assert framer.buffered == 0
        assert framer.next_line() is None
        framer.feed(b"new\n")
        assert framer.lines() == [b"new"]


def strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


@given(
    lines=st.lists(st.binary(max_size=20).map(lambda line: line.replace(b"\n", b"")),
                   max_size=20),
    data=st.data(),
)
def test_any_split_gives_back_the_same_lines(lines: list[bytes], data: st.DataObject) -> None:
    """For any short lines and any split of their bytes into chunks, the framer
    returns exactly those lines, each without the CR before its LF."""
    joined = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(joined)), max_size=30)))
    framer = LineFramer(64)
    found: list[bytes | TooLong] = []
    for start, end in zip([0, *cuts], [*cuts, len(joined)], strict=True):
        framer.feed(joined[start:end])
        found.extend(framer.lines())
    assert found == [strip_cr(line) for line in lines]
    assert framer.buffered == 0
