"""Protocol v1 of chatd: the one grammar shared by the server and every client.

Bytes in, messages out; messages in, bytes out.  Nothing here does I/O, so the
same code parses what a server reads and what ``chat-tui`` reads.

Theory of operation
-------------------
A line is ``VERB [ARG ...] [TEXT]``.  Each message class declares its verb and
the *shape* of what follows as a tuple of field kinds:

* ``WORD``: one token; any run of spaces before it is a separator.  The last
  field of a shape, if a ``WORD``, takes the whole rest of the line (trimmed),
  so that extra words make the token invalid instead of vanishing.
* ``TEXT``: the rest of the line, required, spaces kept.  Exactly one space
  separates it from what comes before, so ``SAY  hi`` says `` hi``.
* ``OPT_TEXT``: like ``TEXT`` but may be absent.
* ``WORDS``: the rest of the line as space-separated tokens.

One table drives both parsing and formatting, so the two cannot drift apart,
and ``parse(format(m)) == m`` for every valid message (tested by hypothesis).

Rule 1: every message is a frozen dataclass that validates itself, so an
invalid message cannot exist.  Client commands are strict (a nick must be a
nick); server messages are checked only for what would break framing, so a
client keeps working against a server with looser rules.

Rule 2: text is cleaned before it is parsed.  Protocol v1: "before any text is
relayed, C0 control characters other than TAB, DEL, C1 controls, the Unicode
bidirectional controls and telnet IAC sequences are removed, so no user can
push terminal escape sequences into another's terminal, or turn its text
around."
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

from chatd.errors import ChatError, ErrorCode
from chatd.nicks import NICK_MAX, NICK_RULES, is_valid_nick

DEFAULT_PORT: Final = 8123  # protocol v1's TCP port: the server's default, and every client's

# Protocol 1.1: a line may start with the server's time, ``@<time> ``, once
# the connection has sent ``TIME ON``.
TIME_PREFIX: Final = "@"

WORD: Final = "word"
TEXT: Final = "text"
OPT_TEXT: Final = "opt-text"
WORDS: Final = "words"

# C0 controls except TAB (0x09), DEL (0x7f) and the C1 block (0x80-0x9f).
# And the Unicode bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), with which one user could reverse or hide
# text in another's terminal ("Trojan Source", CVE-2021-42574).
_CONTROLS: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Telnet: IAC (255) followed by SB ... IAC SE, a 3-byte option negotiation
# (WILL/WONT/DO/DONT = 251-254) or a 2-byte command.  An IAC at the very end
# of a line is dropped too.
_IAC: Final = re.compile(rb"\xff(?:\xfa.*?\xff\xf0|\xfa.*\Z|[\xfb-\xfe].?|.?)", re.DOTALL)


def clean_text(text: str) -> str:
    """Remove what could drive a terminal: C0 (but TAB), DEL and C1 controls,
    and the bidirectional controls that reorder what a terminal shows.

    ESC is a C0 control, so no escape sequence survives; what follows it is
    left as harmless visible text.  Cleaning twice changes nothing.
    """
    return _CONTROLS.sub("", text)


def strip_telnet(raw: bytes) -> bytes:
    """Drop telnet IAC sequences, which telnet clients may send at any time."""
    if b"\xff" not in raw:
        return raw
    return _IAC.sub(b"", raw)


def decode_line(raw: bytes) -> str:
    """Turn one received line (terminator removed) into clean text.

    A trailing CR is dropped, so LF and CRLF lines are equal.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = strip_telnet(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ChatError(ErrorCode.BAD_ENCODING, "lines must be UTF-8") from None
    return clean_text(text)


# --- server time (protocol 1.1) -------------------------------------------------

# ASCII digits only: ``\d`` alone also matches other scripts' digits, which
# ``int()`` and ``strptime`` would read as a time.
_TIME_SHAPE: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z", re.ASCII)


_last_second: list[tuple[int, str]] = [(-1, "")]  # (whole second, its text), last formatted


def format_time(seconds: float) -> str:
    """A moment as the protocol writes it: UTC, ISO 8601, milliseconds, ``Z``
    (``2026-11-25T14:05:03.250Z``).  Truncated, never rounded up, so the
    same float always gives the same text on every node."""
    # The float product can land one millisecond off either way (near 2**31 s,
    # parse_time's "...08.989Z" came back as "...08.988Z"): the millisecond is
    # the last whose float, as parse_time makes it, is not after ``seconds``.
    millis = int(seconds * 1000)
    if (millis + 1) / 1000 <= seconds:
        millis += 1
    elif millis / 1000 > seconds:
        millis -= 1
    whole, millis = divmod(millis, 1000)
    # strftime is most of the cost, and a server stamps many lines in one
    # second: the text of the last second formatted is kept.
    last, text = _last_second[0]
    if whole != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second[0] = (whole, text)
    return f"{text}.{millis:03d}Z"


def parse_time(text: str) -> float | None:
    """Seconds since the epoch for a protocol time; None for anything else."""
    if not _TIME_SHAPE.match(text):
        return None
    try:
        parsed = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    # One rounding, from whole milliseconds: the float format_time reads back.
    return (calendar.timegm(parsed) * 1000 + int(text[20:23])) / 1000


def split_time(text: str) -> tuple[str | None, str]:
    """``@<time> <line>`` as ``(time, line)``; a line without the prefix is
    ``(None, line)``.  A prefix that is not a protocol time is not one, nor
    is a time without the space that ends the prefix."""
    if text.startswith(TIME_PREFIX):
        stamp, space, rest = text.partition(" ")
        if space and parse_time(stamp[1:]) is not None:
            return stamp[1:], rest
    return None, text


# --- message classes ---------------------------------------------------------


def _check_word(value: str, what: str) -> None:
    if not value or " " in value or "\n" in value or "\r" in value:
        raise ValueError(f"{what} must be one non-empty token, got {value!r}")


def _check_text(value: str | None, what: str, *, required: bool) -> None:
    if value is None:
        if required:
            raise ValueError(f"{what} is required")
        return
    if "\n" in value or "\r" in value:
        raise ValueError(f"{what} must not contain line breaks")
    if required and not value.strip():
        raise ValueError(f"{what} must not be blank")


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message: a verb and the shape of its fields."""

    verb: ClassVar[str]
    shape: ClassVar[tuple[str, ...]] = ()
    __match_args__: ClassVar[tuple[str, ...]]  # the field names, in order (dataclass-made)

    def __post_init__(self) -> None:
        # ``__match_args__`` is the dataclass's field names in order, kept on
        # the class: ``dataclasses.fields()`` rebuilt a tuple on every
        # message, the top line of the server's per-message profile.
        for name, kind in zip(self.__match_args__, self.shape, strict=False):
            value = getattr(self, name)
            if kind == WORD:
                _check_word(value, name)
            elif kind == WORDS:
                for word in value:
                    _check_word(word, name)
            elif kind == OPT_TEXT and value is not None and not value.strip():
                # Blank optional text is no text: it would not survive a
                # round trip ("PING " parses as PING), and a blank QUIT
                # reason cannot become the required text of BYE.
                object.__setattr__(self, name, None)
            else:
                _check_text(value, name, required=kind == TEXT)


# Client -> server.  Each validates as strictly as the server would, so a
# client that builds a command from user input learns of an error at once.


def _require(value: str | None, what: str) -> None:
    if value is None or not value.strip():
        raise ChatError(ErrorCode.MISSING_ARGUMENT, f"{what} is missing")


@dataclass(frozen=True, slots=True)
class Nick(Message):
    """Log in with a nick, or change it once logged in."""

    verb = "NICK"
    shape = (WORD,)
    name: str

    def __post_init__(self) -> None:
        _require(self.name, "the nick")
        if not is_valid_nick(self.name):
            # Quote at most a little more than a nick's worth, so the reply
            # to a huge bad nick stays short.
            shown = self.name if len(self.name) <= 2 * NICK_MAX else self.name[:NICK_MAX] + "..."
            raise ChatError(ErrorCode.BAD_NICK, f"{shown!r} is not a valid nick: {NICK_RULES}")


@dataclass(frozen=True, slots=True)
class Say(Message):
    """Speak to everyone in the room."""

    verb = "SAY"
    shape = (TEXT,)
    text: str

    def __post_init__(self) -> None:
        _require(self.text, "the text to say")
        Message.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Wall(Message):
    """Alert every connection, logged in or not."""

    verb = "WALL"
    shape = (TEXT,)
    text: str

    def __post_init__(self) -> None:
        _require(self.text, "the text of the alert")
        Message.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Tell(Message):
    """Speak privately to one user."""

    verb = "TELL"
    shape = (WORD, TEXT)
    nick: str
    text: str

    def __post_init__(self) -> None:
        _require(self.nick, "the nick to tell")
        _require(self.text, "the text to tell")
        Message.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Who(Message):
    """Ask who is in the room."""

    verb = "WHO"


@dataclass(frozen=True, slots=True)
class Oper(Message):
    """Become an operator by giving the server's operator password."""

    verb = "OPER"
    shape = (TEXT,)
    password: str

    def __post_init__(self) -> None:
        _require(self.password, "the operator password")
        Message.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Check the connection; the server echoes the token in ``PONG``."""

    verb = "PING"
    shape = (OPT_TEXT,)
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Quit(Message):
    """Leave; the others are told the reason."""

    verb = "QUIT"
    shape = (OPT_TEXT,)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Help(Message):
    """Ask the server to describe its commands."""

    verb = "HELP"


HISTORY_DEFAULT: Final = 20  # lines a bare HISTORY asks for
_COUNT_DIGITS: Final = 9  # more digits than this is "as many as are kept"


@dataclass(frozen=True, slots=True)
class History(Message):
    """Protocol 1.1: ask for what was said before this connection logged in."""

    verb = "HISTORY"
    shape = (OPT_TEXT,)
    count: str | None = None

    def __post_init__(self) -> None:
        Message.__post_init__(self)
        if self.count is None:
            return
        count = self.count.strip(" ")
        if not (count.isascii() and count.isdigit()):
            shown = count if len(count) <= 20 else count[:20] + "..."
            raise ChatError(ErrorCode.BAD_ARGUMENT,
                            f"HISTORY takes a number of lines, like HISTORY 20; not {shown!r}")
        object.__setattr__(self, "count", count)

    @property
    def lines(self) -> int:
        """How many lines are asked for (before clamping to what is kept)."""
        if self.count is None:
            return HISTORY_DEFAULT
        if len(self.count) > _COUNT_DIGITS:
            return 10**_COUNT_DIGITS
        return int(self.count)


TIME_ON: Final = "ON"
TIME_OFF: Final = "OFF"


@dataclass(frozen=True, slots=True)
class Time(Message):
    """Protocol 1.1: ask the server's clock, or turn ``@<time>`` prefixes on or off."""

    verb = "TIME"
    shape = (OPT_TEXT,)
    mode: str | None = None

    def __post_init__(self) -> None:
        Message.__post_init__(self)
        if self.mode is None:
            return
        given = self.mode.strip(" ")
        mode = given.upper() if given.isascii() else given
        if mode not in (TIME_ON, TIME_OFF):
            shown = given if len(given) <= 20 else given[:20] + "..."
            raise ChatError(ErrorCode.BAD_ARGUMENT,
                            f"TIME takes ON, OFF or nothing; not {shown!r}")
        object.__setattr__(self, "mode", mode)


ClientMessage: TypeAlias = (
    Nick | Say | Wall | Tell | Who | Oper | Ping | Quit | Help | History | Time
)

# Server -> client.


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First line of every connection: who the server is."""

    verb = "HELLO"
    shape = (WORD, OPT_TEXT)
    version: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Ok(Message):
    """A command succeeded: ``OK <VERB> [args]``."""

    verb = "OK"
    shape = (WORD, OPT_TEXT)
    command: str
    args: str | None = None


@dataclass(frozen=True, slots=True)
class Error(Message):
    """A command was refused; the connection stays open."""

    verb = "ERR"
    shape = (WORD, TEXT)
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Joined(Message):
    """Someone logged in."""

    verb = "JOIN"
    shape = (WORD,)
    nick: str


@dataclass(frozen=True, slots=True)
class Parted(Message):
    """Someone left, by ``QUIT``, a dropped connection or a server limit."""

    verb = "PART"
    shape = (WORD, OPT_TEXT)
    nick: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Renamed(Message):
    """Someone changed nick."""

    verb = "RENAME"
    shape = (WORD, WORD)
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Said(Message):
    """Someone spoke to the room."""

    verb = "SAY"
    shape = (WORD, TEXT)
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Walled(Message):
    """A global alert; nick ``*`` is the server itself."""

    verb = "WALL"
    shape = (WORD, TEXT)
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Told(Message):
    """Someone spoke privately to you."""

    verb = "TELL"
    shape = (WORD, TEXT)
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Users(Message):
    """One part of a ``WHO`` reply; ``OK WHO <count>`` ends it."""

    verb = "USERS"
    shape = (WORDS,)
    nicks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pong(Message):
    """The answer to ``PING``."""

    verb = "PONG"
    shape = (OPT_TEXT,)
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Bye(Message):
    """The server is closing this connection, and why."""

    verb = "BYE"
    shape = (TEXT,)
    reason: str


@dataclass(frozen=True, slots=True)
class HelpLine(Message):
    """One line of the ``HELP`` reply; ``OK HELP`` ends it."""

    verb = "HELP"
    shape = (TEXT,)
    text: str


@dataclass(frozen=True, slots=True)
class Hist(Message):
    """Protocol 1.1: one line of a ``HISTORY`` reply, ``OK HISTORY <count>``
    ends it.  ``line`` is the line as it was delivered then (``SAY ann hi``)."""

    verb = "HIST"
    shape = (WORD, TEXT)
    time: str
    line: str

    @property
    def message(self) -> ServerMessage | None:
        """The replayed line, parsed."""
        return parse_server_line(self.line)


@dataclass(frozen=True, slots=True)
class Unknown(Message):
    """A server line this client does not know: kept, not fatal."""

    verb = ""
    line: str


ServerMessage: TypeAlias = (
    Hello | Ok | Error | Joined | Parted | Renamed | Said | Walled | Told | Users | Pong | Bye
    | HelpLine | Hist | Unknown
)

CLIENT_MESSAGES: Final[dict[str, type[Message]]] = {
    cls.verb: cls for cls in (Nick, Say, Wall, Tell, Who, Oper, Ping, Quit, Help, History, Time)
}
SERVER_MESSAGES: Final[dict[str, type[Message]]] = {
    cls.verb: cls
    for cls in (Hello, Ok, Error, Joined, Parted, Renamed, Said, Walled, Told, Users, Pong, Bye,
                HelpLine, Hist)
}

# --- parsing ------------------------------------------------------------------


def _split_fields(rest: str, shape: tuple[str, ...]) -> Iterator[str | tuple[str, ...] | None]:
    """Cut what follows the verb into one value per field of ``shape``."""
    last = len(shape) - 1
    for index, kind in enumerate(shape):
        if kind == WORD and index == last:
            # The final token takes the whole rest, so "NICK ann smith" is
            # refused as a bad nick rather than silently cut to "ann".
            yield rest.strip(" ")
        elif kind == WORD:
            rest = rest.lstrip(" ")
            word, separator, rest = rest.partition(" ")
            rest = separator + rest  # keep the one space that precedes a TEXT
            yield word
        elif kind == WORDS:
            # Split on spaces only, as WORD does: a word may hold a TAB.
            yield tuple(word for word in rest.split(" ") if word)
            rest = ""
        else:
            text = rest[1:] if rest.startswith(" ") else rest
            rest = ""
            yield text if text or kind == TEXT else None


def _parse(text: str, table: dict[str, type[Message]], *, upper: bool) -> Message | None:
    head = text.lstrip(" ")
    if not head.strip():
        return None
    verb = head.partition(" ")[0]
    # ASCII only: str.upper() would make the long s of "ſay" an S.
    key = verb.upper() if upper and verb.isascii() else verb
    cls = table.get(key)
    if cls is None:
        return None if upper else Unknown(text)
    rest = head[len(verb):]
    return cls(*_split_fields(rest, cls.shape))


def parse_client_line(raw: bytes) -> ClientMessage | None:
    """Parse one line a client sent (without its LF); None for a blank line.

    Raises ``ChatError`` with the code the server answers with; raises nothing
    else, whatever the bytes (a hypothesis property checks this).
    """
    text = decode_line(raw)
    if not text.strip(" \t"):
        return None
    try:
        message = _parse(text, CLIENT_MESSAGES, upper=True)
    except ValueError as exc:
        raise ChatError(ErrorCode.MISSING_ARGUMENT, str(exc)) from None
    if message is None:
        verb = text.lstrip(" ").partition(" ")[0]
        raise ChatError(ErrorCode.UNKNOWN_COMMAND, f"unknown command {verb[:32]!r}; try HELP")
    return message  # type: ignore[return-value]  # CLIENT_MESSAGES holds only ClientMessage classes


def parse_server_line(raw: bytes | str) -> ServerMessage | None:
    """Parse one line a server sent; None for a blank line, ``Unknown`` for the
    unexpected, so that a client survives a newer or odd server."""
    if isinstance(raw, bytes):
        try:
            text = decode_line(raw)
        except ChatError:
            return Unknown(clean_text(raw.rstrip(b"\r").decode("utf-8", "replace")))
    else:
        text = clean_text(raw.rstrip("\r\n"))
    if not text.strip():
        return None
    try:
        # SERVER_MESSAGES holds only ServerMessage classes, and Unknown is one.
        return _parse(text, SERVER_MESSAGES, upper=False)  # type: ignore[return-value]
    except (ValueError, ChatError):
        return Unknown(text)


def parse_timed_server_line(raw: bytes | str) -> tuple[str | None, ServerMessage | None]:
    """Like ``parse_server_line``, for a connection that sent ``TIME ON``:
    the ``@<time>`` prefix, if the line has one, and the message."""
    if isinstance(raw, bytes) and raw.startswith(b"@"):
        stamp, space, rest = raw.partition(b" ")
        if space and parse_time(stamp[1:].decode("ascii", "replace")) is not None:
            return stamp[1:].decode("ascii"), parse_server_line(rest)
        return None, parse_server_line(raw)
    if isinstance(raw, str):
        when, text = split_time(raw)
        return when, parse_server_line(text)
    return None, parse_server_line(raw)


# --- formatting ---------------------------------------------------------------


def _format_fields(message: Message) -> Iterator[str]:
    yield message.verb
    for name, kind in zip(message.__match_args__, message.shape, strict=False):
        value = getattr(message, name)
        if kind == WORDS:
            yield from value
        elif value is not None:
            yield value


def format_line(message: Message) -> str:
    """The line for a message, without a terminator."""
    if isinstance(message, Unknown):
        return message.line
    return " ".join(_format_fields(message))


def encode(message: Message) -> bytes:
    """The bytes on the wire for a message: UTF-8, ending in CRLF.

    The server encodes a broadcast once and writes the same bytes to everyone.
    """
    return (format_line(message) + "\r\n").encode("utf-8")
