"""Which part of the transcript the chat pane shows, counted in screen rows.

Pure: a ``ClientState`` and the pane's size in, the pane's rows out.  The
lines are wrapped by ``chatclient.render``; nothing here draws, reads keys
or looks at a terminal, so the scrolling is tested with plain lists.

Theory of operation
-------------------
``anchor`` is None while the pane follows the newest line.  Scrolled back,
it is ``(seq, row)``: the pane's bottom row is row ``row`` (0 is the line's
first wrapped row) of the line with sequence number ``seq``.

* New lines arrive below the anchor, so they do not move the view.
* Old lines fall off the front of the bounded transcript above it, so they
  do not move it either, until the rows above the anchor no longer fill the
  pane: then the view stops at the top (the transcript's first row at the
  top of the pane), exactly as scrolling past the top does.
* Scrolling moves the anchor by rows; a page is the pane's height less one
  row, the row kept as overlap.  Reaching the newest row follows again.
* A width change wraps the lines anew: the same line stays at the bottom,
  its row clamped to the rows it has now.
* ``/clear`` empties the transcript.  An anchored line that is gone while
  the transcript is not full (lines fall off the front only when it is)
  was cleared away, and the view follows again.

Only the lines drawn or scrolled over are wrapped, each once per frame or
scroll: a 10,000-line transcript costs no more to draw than a screenful.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

from prompt_toolkit.formatted_text import StyleAndTextTuples

from chatclient import render
from chatclient.state import ClientState, Line


class _Rows:
    """The wrapped rows of the transcript's lines at one width, wrapped when
    first asked for; it lives for one frame or one scroll."""

    def __init__(self, lines: deque[Line], width: int) -> None:
        self.lines = lines
        self.width = width
        self._wrapped: dict[int, list[StyleAndTextTuples]] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def of(self, index: int) -> list[StyleAndTextTuples]:
        """The rows of the line at ``index`` (one at least)."""
        rows = self._wrapped.get(index)
        if rows is None:
            rows = self._wrapped[index] = render.rows(self.lines[index], self.width)
        return rows

    def count(self, index: int) -> int:
        return len(self.of(index))


def _up(rows: _Rows, index: int, row: int, count: int) -> tuple[int, int]:
    """The position ``count`` rows above (index, row), stopping at the first row."""
    while count > 0:
        if row >= count:
            return index, row - count
        if index == 0:
            return 0, 0
        count -= row + 1
        index -= 1
        row = rows.count(index) - 1
    return index, row


def _down(rows: _Rows, index: int, row: int, count: int) -> tuple[int, int]:
    """The position ``count`` rows below (index, row), stopping at the last row."""
    last = len(rows) - 1
    while count > 0:
        left = rows.count(index) - 1 - row  # rows of this line below ``row``
        if left >= count:
            return index, row + count
        if index == last:
            return index, row + left
        count -= left + 1
        index += 1
        row = 0
    return index, row


def _rows_up_to(rows: _Rows, index: int, row: int, limit: int) -> int:
    """How many rows there are from the first one down to (index, row),
    counted no further than ``limit``."""
    total = row + 1
    while total < limit and index > 0:
        index -= 1
        total += rows.count(index)
    return total


def _text(row: StyleAndTextTuples) -> str:
    return "".join(text for _, text, *_ in row)


class Viewport:
    """The scroll position of the chat pane over ``state``'s transcript.

    ``rows`` draws the pane and remembers its size; the scrolling calls
    move by rows of that size.  ``unseen`` and ``below`` count chat lines,
    for the "new messages below" marker.
    """

    def __init__(self, state: ClientState) -> None:
        self.state = state
        self.anchor: tuple[int, int] | None = None  # (seq, row) of the bottom row
        self.seen = 0             # the newest line there was when scrolled back
        self.width = 80           # the pane's size at the last render
        self.height = 1
        self.shown: list[str] = []  # the rows last drawn, as text (for tests)

    # --- what the status bar and the marker ask ---

    @property
    def scrolled(self) -> bool:
        self._forget_cleared()
        return self.anchor is not None

    def unseen(self) -> int:
        """Lines that arrived while scrolled back."""
        self._forget_cleared()
        if self.anchor is None:
            return 0
        return self.state.last_seq - max(self.seen, self.anchor[0])

    def below(self) -> int:
        """Lines wholly below the view."""
        self._forget_cleared()
        return 0 if self.anchor is None else self.state.last_seq - self.anchor[0]

    # --- drawing ---

    def rows(self, width: int, height: int) -> list[StyleAndTextTuples]:
        """The ``height`` rows of the pane at ``width`` cells: the anchored
        row at the bottom, padded with empty rows above when the transcript
        is shorter than the pane."""
        self._forget_cleared()
        self.width, self.height = width, max(1, height)
        rows = _Rows(self.state.lines, width)
        position = self._position(rows)
        if position is None or height <= 0:
            self.shown = []
            return [[] for _ in range(max(0, height))]
        if self.anchor is not None:
            self._settle(rows, *position)  # a resize or lines gone from the front
            position = self._position(rows)
            assert position is not None
        index, row = position
        chunks = [rows.of(index)[:row + 1]]
        count = row + 1
        while count < height and index > 0:
            index -= 1
            chunks.append(rows.of(index))
            count += len(chunks[-1])
        shown = [drawn for chunk in reversed(chunks) for drawn in chunk][-height:]
        self.shown = [_text(drawn) for drawn in shown]
        return [[] for _ in range(height - len(shown))] + shown

    # --- scrolling ---

    def scroll_up(self, count: int) -> None:
        """Move the view ``count`` rows back, stopping at the first row."""
        self._forget_cleared()
        rows = _Rows(self.state.lines, self.width)
        position = self._position(rows)
        if position is None:
            return
        if self.anchor is None:
            self.seen = self.state.last_seq
        self._settle(rows, *_up(rows, *position, count))

    def scroll_down(self, count: int) -> None:
        """Move the view ``count`` rows on; reaching the newest row follows again."""
        self._forget_cleared()
        if self.anchor is None:
            return
        rows = _Rows(self.state.lines, self.width)
        position = self._position(rows)
        assert position is not None  # anchored, so there are lines
        self._settle(rows, *_down(rows, *position, count))

    def page_up(self) -> None:
        """Back one pane of rows, keeping one row of the old view."""
        self.scroll_up(max(1, self.height - 1))

    def page_down(self) -> None:
        """On one pane of rows, keeping one row of the old view."""
        self.scroll_down(max(1, self.height - 1))

    def to_bottom(self) -> None:
        """Follow the newest line again."""
        self.anchor = None

    # --- the anchor ---

    def _forget_cleared(self) -> None:
        """Follow again if the anchored line was cleared away (``/clear``)."""
        if self.anchor is None:
            return
        lines, seq = self.state.lines, self.anchor[0]
        full = lines.maxlen is not None and len(lines) >= lines.maxlen
        if not lines or seq > lines[-1].seq or (seq < lines[0].seq and not full):
            self.anchor = None

    def _position(self, rows: _Rows) -> tuple[int, int] | None:
        """The bottom row as (index in the transcript, row of that line),
        its row clamped to the line's rows at this width; None if empty."""
        lines = rows.lines
        if not lines:
            return None
        if self.anchor is None:
            last = len(lines) - 1
            return last, rows.count(last) - 1
        seq, row = self.anchor
        index = bisect_right(lines, seq, key=lambda line: line.seq) - 1
        if index < 0:          # fell off the front: the top clamp takes over
            return 0, 0
        return index, min(row, rows.count(index) - 1)

    def _settle(self, rows: _Rows, index: int, row: int) -> None:
        """Anchor the bottom row at (index, row), or at the top when the rows
        above would not fill the pane, or follow when it is the newest row."""
        if _rows_up_to(rows, index, row, self.height) < self.height:
            index, row = _down(rows, 0, 0, self.height - 1)
        last = len(rows) - 1
        if index == last and row == rows.count(last) - 1:
            self.anchor = None
        else:
            self.anchor = (rows.lines[index].seq, row)
