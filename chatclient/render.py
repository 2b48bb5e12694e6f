"""How a transcript line looks: styled fragments for the screen, text for pipes.

Pure: a ``Line`` in, prompt_toolkit style-and-text fragments (or a plain
string) out.  Wrapping is done here, cell by cell with prompt_toolkit's
``get_cwidth``, so wide (CJK, emoji) and combining characters line up, and a
continued line hangs under the text column as in WeeChat.
"""

from __future__ import annotations

import time
import zlib

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.utils import get_cwidth

from chatclient.state import Kind, Line

NICK_COLUMN = 10
PALETTE = 12
SEPARATOR = " │ "

_MARKS = {Kind.JOIN: "-->", Kind.PART: "<--", Kind.RENAME: "--", Kind.INFO: "--",
          Kind.ERROR: "!!", Kind.WALL: "WALL", Kind.TELL_OUT: "→", Kind.HISTORY: "--"}


def clock(line: Line) -> str:
    """The time stamp shown before a line."""
    return time.strftime("%H:%M", time.localtime(line.when))


def nick_style(nick: str, own: bool = False) -> str:
    """A nick's colour: stable for the nick (ignoring case), whatever its order."""
    if own:
        return "class:nick.own"
    return f"class:nick.c{zlib.crc32(nick.casefold().encode()) % PALETTE}"


def row_style(line: Line) -> str:
    """The style of a whole row: banners, highlights and dimmed events.
    A replayed line is dimmed whatever it is; its markers are not."""
    if line.replay is not None and line.kind is not Kind.HISTORY:
        return "class:replay"
    if line.kind is Kind.WALL:
        return "class:wall"
    if line.mention:
        return "class:mention"
    if line.kind in (Kind.JOIN, Kind.PART, Kind.RENAME):
        return "class:quiet"
    return ""


def parts(line: Line) -> tuple[StyleAndTextTuples, StyleAndTextTuples]:
    """The prefix (time and nick column) and the body of a line."""
    if line.kind in (Kind.SAY, Kind.TELL_IN):
        nick = line.nick or "?"
        column = (nick_style(nick, line.own), nick.rjust(NICK_COLUMN))
    else:
        mark = _MARKS.get(line.kind, "--")
        column = (f"class:mark.{line.kind.value}", mark.rjust(NICK_COLUMN))
    prefix: StyleAndTextTuples = [("class:time", clock(line) + " "), column,
                                  ("class:sep", SEPARATOR)]
    return prefix, _body(line)


def _body(line: Line) -> StyleAndTextTuples:
    match line.kind:
        case Kind.SAY:
            return [("class:text.own" if line.own else "class:text", line.text)]
        case Kind.TELL_IN:
            return [("class:private.label", "(private) "), ("class:private", line.text)]
        case Kind.TELL_OUT:
            return [("class:private.label", f"(private to {line.nick}) "),
                    ("class:private", line.text)]
        case Kind.WALL:
            return [("class:wall.from", f"{line.nick or 'server'}: "), ("", line.text)]
        case Kind.HISTORY:
            return [("class:history", f"── {line.text} ──")]
        case _:
            return [(f"class:{line.kind.value}", line.text)]


def rows(line: Line, width: int) -> list[StyleAndTextTuples]:
    """The screen rows of one line at ``width`` cells, wrapped at spaces when
    it can, with the whole-row style applied and banners padded to full width."""
    prefix, body = parts(line)
    style = row_style(line)
    indent = sum(get_cwidth(ch) for _, text, *_ in prefix for ch in text)
    if width - indent < 12:  # too narrow to hang the text: use the whole row
        indent = 0
    wrapped = wrap(prefix, body, width, indent)
    if not style:
        return wrapped
    result = []
    for row in wrapped:
        used = sum(get_cwidth(ch) for _, text, *_ in row for ch in text)
        padded: StyleAndTextTuples = [(f"{s} {style}", t) for s, t, *_ in row]
        if style == "class:wall" and used < width:
            padded.append((style, " " * (width - used)))
        result.append(padded)
    return result


def wrap(prefix: StyleAndTextTuples, body: StyleAndTextTuples, width: int,
         indent: int) -> list[StyleAndTextTuples]:
    """Lay ``prefix`` + ``body`` into rows of at most ``width`` cells.

    A character never splits across rows: a wide one that does not fit moves
    down whole, and a zero-width (combining) one stays with its base.
    """
    width = max(width, 2)
    continuation: StyleAndTextTuples = (
        [("class:sep", " " * (indent - 2) + "│ ")] if indent >= 2 else [("", " " * indent)])
    result: list[StyleAndTextTuples] = []
    row: StyleAndTextTuples = []
    used = 0
    for style, text, *_ in prefix:
        for ch in text:
            row.append((style, ch))
            used += get_cwidth(ch)
    start = len(row)          # body characters begin here in the current row
    space = -1                # index in ``row`` of the last space after ``start``
    for style, text, *_ in body:
        for ch in text:
            cells = get_cwidth(ch)
            if used + cells > width and len(row) > start:
                if 0 <= space:
                    tail = row[space + 1:]
                    del row[space:]
                else:
                    tail = []
                result.append(row)
                row = list(continuation) + tail
                start = len(continuation)
                used = indent + sum(get_cwidth(c) for _, c, *_ in tail)
                space = -1
            if ch == " ":
                space = len(row)
            row.append((style, ch))
            used += cells
    result.append(row)
    return [_merge(r) for r in result]


def _merge(row: StyleAndTextTuples) -> StyleAndTextTuples:
    """Join neighbouring characters of the same style into one fragment."""
    merged: StyleAndTextTuples = []
    for style, text, *_ in row:
        if merged and merged[-1][0] == style:
            merged[-1] = (style, merged[-1][1] + text)
        else:
            merged.append((style, text))
    return merged


def plain(line: Line) -> str:
    """A line as readable text after its time stamp, for plain line mode."""
    return f"{clock(line)} {plain_text(line)}"


def plain_text(line: Line) -> str:
    """A line as readable text, without a time: plain mode and chat logs."""
    match line.kind:
        case Kind.SAY:
            return f"<{line.nick}> {line.text}"
        case Kind.TELL_IN:
            return f"[private] <{line.nick}> {line.text}"
        case Kind.TELL_OUT:
            return f"[private to {line.nick}] {line.text}"
        case Kind.WALL:
            return f"!!! WALL from {line.nick or 'the server'}: {line.text}"
        case Kind.ERROR:
            return f"!! {line.text}"
        case Kind.HISTORY:
            return f"-- {line.text} --"
        case _:
            return f"{_MARKS.get(line.kind, '--')} {line.text}"
