"""Protocol v1, the line dialect: ``docs/protocol.md`` as code.

Parsing a line is ``chatd.wire``'s (the one grammar, shared with clients);
this module decides what each command does to the session, and words every
answer: ``OK``, ``ERR``, the ``USERS`` chunks of a ``WHO`` reply, ``HELP``,
``HIST``, ``BYE``, and each room event once for every v1 connection.  Pure:
it reaches its connection only through ``Peer``, and the time through the
clock it is given.

Protocol 1.1's ``TIME ON`` is a second wording of the same dialect
(``TIMED``): every line starts with ``@<time> ``.  The fan-out keeps one
encoder and one outbox per wording, so a room event is still encoded once
per wording in use, never once per recipient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from chatd import __version__, wire
from chatd.errors import ChatError, ErrorCode
from chatd.events import Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.nicks import NICK_MAX, NICK_RULES
from chatd.room import Room
from chatd.session import DEFAULT_QUIT_REASON, Session

NAME: Final = "line"
TIMED: Final = "line+time"  # protocol 1.1: after TIME ON
HIST_CACHE: Final = 1024  # worded HIST lines kept: ten times the default --history
GREETING: Final = "welcome to chatd; log in with NICK <name>, or send HELP"

HELP_TEXT: Final = (
    "NICK <name>          log in, or change your nick once logged in",
    "SAY <text>           speak to everyone in the room",
    "TELL <nick> <text>   speak privately to one user",
    "WALL <text>          alert every connection (operators only if the server has an operator password)",
    "WHO                  list who is in the room",
    "OPER <password>      become an operator",
    "PING [token]         the server answers PONG [token]",
    "HISTORY [n]          the last n lines (default 20) said before you logged in",
    "TIME [ON|OFF]        the server's time; TIME ON starts every line with @<time>",
    "QUIT [reason]        leave",
    "HELP                 this text",
    f"Nicks: {NICK_RULES.removeprefix('a nick is ')}; unique ignoring case.",
)


class Peer(Protocol):
    """The connection, as its dialect sees it."""

    @property
    def max_line(self) -> int:
        """The longest line this connection accepts, without its line end."""

    @property
    def write(self) -> Callable[[bytes], None]:
        """Raw bytes to the transport (the fan-out's path)."""

    def send(self, data: bytes) -> None:
        """A reply, after the broadcasts this connection is due."""

    def close(self) -> None:
        """Close the transport once what was written has gone."""

    def ready(self) -> None:
        """The session stopped waiting: go on with held lines."""

    def speak(self, dialect: str) -> None:
        """From now on, word this connection's room events for ``dialect``."""


# --- events, once per dialect -------------------------------------------------


def event_message(stamped: Stamped) -> wire.ServerMessage:
    """The v1 message that tells a client of one room event."""
    event = stamped.event
    if type(event) is Said:
        return wire.Said(event.nick, event.text)
    if type(event) is Joined:
        return wire.Joined(event.nick)
    if type(event) is Parted:
        return wire.Parted(event.nick, event.reason)
    if type(event) is Renamed:
        return wire.Renamed(event.old, event.new)
    if type(event) is Told:
        return wire.Told(event.nick, event.text)
    assert type(event) is Walled
    return wire.Walled(event.nick, event.text)


def encode_event(stamped: Stamped) -> bytes:
    """The bytes every v1 recipient of one event gets (the fan-out's encoder)."""
    return wire.encode(event_message(stamped))


def time_prefix(seconds: float) -> bytes:
    """``@<time> ``, which starts every line after ``TIME ON``."""
    return f"@{wire.format_time(seconds)} ".encode("ascii")


def encode_timed_event(stamped: Stamped) -> bytes:
    """The bytes every ``TIME ON`` recipient of one event gets: the time the
    bus stamped, the same for everyone."""
    return time_prefix(stamped.time) + encode_event(stamped)


@functools.lru_cache(maxsize=HIST_CACHE)
def hist_line(stamped: Stamped) -> bytes:
    """One line of a ``HISTORY`` reply: ``HIST <time>``, then the line as it
    was delivered then, byte for byte.

    Every login of a storm may ask for the same lines, so each is worded
    once and kept (a bounded cache keyed by the stamped event: a hash per
    line, not a format).
    """
    return b"HIST " + wire.format_time(stamped.time).encode("ascii") + b" " + encode_event(stamped)


ENCODERS: Final = {NAME: encode_event, TIMED: encode_timed_event}


def users_lines(nicks: Iterable[str], limit: int) -> list[bytes]:
    """The ``USERS`` lines of a WHO reply, each at most ``limit`` bytes with
    its CRLF.

    Every login sends the whole list, so at 10,000 users this runs 10,000
    times over 10,000 nicks: it cuts one joined string with ``rfind`` rather
    than adding nicks one by one.  Nicks are ASCII, so characters are bytes.
    """
    head = "USERS "
    room = max(limit - len(head) - 2, NICK_MAX)
    text = " ".join(nicks)
    lines = []
    start, end = 0, len(text)
    while start < end:
        stop = start + room
        if stop >= end:
            stop = end
        else:
            cut = text.rfind(" ", start, stop + 1)
            stop = cut if cut > start else text.find(" ", stop) % (end + 1)
        lines.append((head + text[start:stop] + "\r\n").encode("ascii"))
        start = stop + 1
    return lines


# --- one connection ---------------------------------------------------------------


class LineDialect:
    """Protocol v1 for one connection: lines in, session commands; answers out."""

    __slots__ = ("session", "_peer", "_clock")

    def __init__(self, room: Room, peer: Peer, clock: Callable[[], float]) -> None:
        self._peer = peer
        self._clock = clock
        self.session = Session(room, self, dialect=NAME, write=peer.write)

    @property
    def timed(self) -> bool:
        """Whether this connection sent ``TIME ON``."""
        return self.session.dialect == TIMED

    def _stamp(self) -> bytes:
        """The ``@<time> `` of a reply made now, or nothing."""
        return time_prefix(self._clock()) if self.timed else b""

    def _send(self, message: wire.Message) -> None:
        self._peer.send(self._stamp() + wire.encode(message))

    def _send_lines(self, lines: Iterable[bytes]) -> None:
        """A reply of several lines, in one send, all with the same time."""
        stamp = self._stamp()
        self._peer.send(b"".join(stamp + line for line in lines))

    # --- from the connection ---

    def greet(self) -> None:
        """The first line of every connection (never time-stamped)."""
        self._peer.send(wire.encode(wire.Hello(f"chatd/{__version__}", GREETING)))

    def line_received(self, raw: bytes) -> None:
        """Act on one line (its line end removed); errors become ``ERR`` lines."""
        if self.session.closed:
            return
        try:
            message = wire.parse_client_line(raw)
            if message is not None:
                self._dispatch(message)
        except ChatError as error:
            self.refused(error)

    def line_too_long(self) -> None:
        self.refused(ChatError(ErrorCode.LINE_TOO_LONG,
                               f"lines are limited to {self._peer.max_line} bytes; this one was dropped"))

    def flooding(self, rate: float) -> None:
        self.refused(ChatError(ErrorCode.FLOOD,
                               f"you are sending more than {rate:g} lines a second; "
                               "the rest are delayed, not lost"))

    def _dispatch(self, message: wire.ClientMessage) -> None:
        session = self.session
        match message:
            case wire.Nick(name=name):
                session.change_nick(name)
            case wire.Say(text=text):
                session.say(text)
            case wire.Tell(nick=nick, text=text):
                self._send(wire.Ok("TELL", session.tell(nick, text)))
            case wire.Wall(text=text):
                session.wall(text)
            case wire.Who():
                self.welcome(session.who())
            case wire.Oper(password=password):
                session.oper(password)
                self._send(wire.Ok("OPER"))
            case wire.Ping(token=token):
                self._send(wire.Pong(token))
            case wire.Quit(reason=reason):
                session.close(reason or DEFAULT_QUIT_REASON)
            case wire.Help():
                self._send_lines([*(wire.encode(wire.HelpLine(line)) for line in HELP_TEXT),
                                  wire.encode(wire.Ok("HELP"))])
            case wire.History() as request:
                self._replay(session.history(request.lines))
            case wire.Time(mode=None):
                # One reading of the clock: after TIME ON, the prefix and the
                # time answered are the same moment.
                now = self._clock()
                stamp = time_prefix(now) if self.timed else b""
                self._peer.send(stamp + wire.encode(wire.Ok("TIME", wire.format_time(now))))
            case wire.Time(mode=mode):
                # Switch first: OK TIME ON is itself stamped, OK TIME OFF not.
                self._peer.speak(TIMED if mode == wire.TIME_ON else NAME)
                self._send(wire.Ok("TIME", mode))

    def _replay(self, said: list[Stamped]) -> None:
        """``HIST`` lines, oldest first, then ``OK HISTORY <count>``, in one
        send.  After ``TIME ON`` every line of it bears the time of the
        reply (each ``HIST`` keeps its own time inside), so the prefixes a
        connection reads never go back in time."""
        lines = [hist_line(stamped) for stamped in said]
        lines.append(wire.encode(wire.Ok("HISTORY", str(len(said)))))
        self._send_lines(lines)

    # --- from the session (``session.Replies``) ---

    def nick_ok(self, nick: str) -> None:
        self._send(wire.Ok("NICK", nick))

    def refused(self, error: ChatError) -> None:
        self._send(wire.Error(error.code, error.text))

    def welcome(self, nicks: list[str]) -> None:
        """``USERS`` lines within the line limit, then ``OK WHO <count>``."""
        stamp = self._stamp()
        lines = users_lines(nicks, self._peer.max_line - len(stamp))
        lines.append(wire.encode(wire.Ok("WHO", str(len(nicks)))))
        self._peer.send(b"".join(stamp + line for line in lines) if stamp else b"".join(lines))

    def goodbye(self, reason: str) -> None:
        self._send(wire.Bye(reason))

    def hang_up(self) -> None:
        self._peer.close()

    def ready(self) -> None:
        self._peer.ready()

    def connection_lost(self) -> None:
        """Nothing of the connection is kept here."""
