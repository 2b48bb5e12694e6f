"""The line framer: bytes in, whole lines (or "too long") out, in bounded memory.

Protocol v1, section 2: lines end in LF; a CR before the LF is dropped, so nc
(LF) and telnet (CRLF) are alike.  A line longer than ``max_line`` bytes
(without its line end) is refused as a whole; the framer then discards
everything up to the next LF, so the tail of an over-long line never comes
back as a line of its own, and a peer that never sends LF costs at most
``max_line + 1`` bytes here.

Pure, like Twisted's ``LineOnlyReceiver`` without the transport: the server
and ``chat-tui`` both frame with it.  It never reads ahead of what it is
asked for, so a caller may stop taking lines (flood lag, a nick claim in
flight) and the rest waits here, in order.
"""

from __future__ import annotations

from typing import Final


class TooLong:
    """The marker ``next_line`` returns for a line over the limit."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TOO_LONG"


TOO_LONG: Final = TooLong()


class LineFramer:
    """Cut a byte stream into lines of at most ``max_line`` bytes."""

    __slots__ = ("max_line", "_buffer", "_start", "_discarding")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buffer = b""
        self._start = 0
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out (or thrown away)."""
        return len(self._buffer) - self._start

    @property
    def idle(self) -> bool:
        """Nothing buffered and no refused line to skip: a fresh framer
        would do the same from here on."""
        return not self._discarding and self._start >= len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Bytes from the peer, as they arrived."""
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return  # still inside the refused line
            data = data[newline + 1:]
            self._discarding = False
        if self._start:
            self._buffer = self._buffer[self._start:] + data
            self._start = 0
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = data

    def next_line(self) -> bytes | TooLong | None:
        """The next whole line without its line end, ``TOO_LONG`` for a line
        over the limit, or None until more bytes arrive."""
        buffer, start = self._buffer, self._start
        newline = buffer.find(b"\n", start)
        if newline < 0:
            if len(buffer) - start > self.max_line + 1:
                # Unfinished and already too long (one byte more is allowed
                # for a CR): refuse it now and drop its rest as it arrives.
                self.clear()
                self._discarding = True
                return TOO_LONG
            return None
        self._start = newline + 1
        end = newline - 1 if newline > start and buffer[newline - 1] == 13 else newline
        if end - start > self.max_line:
            return TOO_LONG
        return buffer[start:end]

    def lines(self) -> list[bytes | TooLong]:
        """Every line available now (for callers that never pause)."""
        found: list[bytes | TooLong] = []
        while (line := self.next_line()) is not None:
            found.append(line)
        return found

    def clear(self) -> None:
        """Forget everything buffered (the connection is going)."""
        self._buffer = b""
        self._start = 0
