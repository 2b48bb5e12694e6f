"""The room's recent ``SAY`` lines, for ``HISTORY`` (protocol 1.1).

A bus subscriber: it keeps each ``Said`` event once, as the bus stamped it,
so a broadcast costs one append here whatever the number of recipients, and
every dialect words the replay from the same stamp (the same time on every
node).  Only what was said to the whole room is kept: never a ``TELL`` (a
nick is not an account, and whoever takes a nick later must not read its
old messages), never a ``WALL``, a join or a part.

Bounded twice: by count and by the bytes of the lines as protocol v1 words
them, oldest first out, so a full reply stays far below any sane send
queue whatever people say.  A connection keeps only its cut-off, the
sequence number of its own ``JOIN``.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque

from chatd.events import Said, Stamped

# What "SAY <nick> <text>\r\n" adds to the nick and the text.
_LINE_OVERHEAD = len("SAY  \r\n")


def line_size(event: Said) -> int:
    """The bytes of ``event`` as a protocol v1 line (nicks are ASCII)."""
    return len(event.nick) + len(event.text.encode("utf-8")) + _LINE_OVERHEAD


class History:
    """The last ``max_lines`` lines said in the room, in at most ``max_bytes``."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._kept: deque[Stamped] = deque()
        self._sizes: deque[int] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    def hear(self, stamped: Stamped) -> None:
        """The bus's subscriber: keep a ``Said``, drop the oldest over the bounds."""
        event = stamped.event
        if type(event) is not Said:
            return
        size = line_size(event)
        if size > self.max_bytes or not self.max_lines:
            return  # could never be kept: it would push out everything else
        self._kept.append(stamped)
        self._sizes.append(size)
        self.bytes += size
        while len(self._kept) > self.max_lines or self.bytes > self.max_bytes:
            self._kept.popleft()
            self.bytes -= self._sizes.popleft()

    def before(self, seq: int, count: int) -> list[Stamped]:
        """The last ``count`` lines stamped before ``seq``, oldest first."""
        if count <= 0:
            return []
        end = bisect.bisect_left(self._kept, seq, key=_seq)
        # islice walks the deque once; indexing each line would walk it per line.
        return list(itertools.islice(self._kept, max(0, end - count), end))


def _seq(stamped: Stamped) -> int:
    return stamped.seq
