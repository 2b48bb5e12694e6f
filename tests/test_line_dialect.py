"""Protocol v1's words: room events encoded once, the WHO reply cut into
``USERS`` lines, and a dialect's replies to its peer, over a recording peer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import __version__, wire
from chatd.bus import LocalBus
from chatd.dialects import line
from chatd.errors import ChatError, ErrorCode
from chatd.events import Event, Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.nicks import NICK_MAX
from chatd.room import Room
from chatd.session import DEFAULT_QUIT_REASON

NOW = 1764079503.25  # 2025-11-25T14:05:03.250Z: the clock of these dialects

# --- events -------------------------------------------------------------------

ENCODED_EVENTS = [
    (Said("ann", "hi  there"), b"SAY ann hi  there\r\n"),
    (Said("ann", " lead"), b"SAY ann  lead\r\n"),
    (Joined("ann"), b"JOIN ann\r\n"),
    (Parted("bob", "off to lunch"), b"PART bob off to lunch\r\n"),
    (Parted("bob"), b"PART bob\r\n"),
    (Renamed("ann", "Ann"), b"RENAME ann Ann\r\n"),
    (Told("ann", "bob", "meet at  noon"), b"TELL ann meet at  noon\r\n"),
    (Walled("*", "server shutting down"), b"WALL * server shutting down\r\n"),
    (Walled("ann", "fire drill"), b"WALL ann fire drill\r\n"),
]


class TestEncodeEvent:
    """Each room event has one v1 line, whatever its stamp."""

    @pytest.mark.parametrize(("event", "expected"), ENCODED_EVENTS)
    def test_event_encodes_to_its_line(self, event: Event, expected: bytes) -> None:
        """A stamped event encodes to the v1 line that tells a client of it."""
        assert line.encode_event(Stamped(1, 1700000000.0, event)) == expected

    @pytest.mark.parametrize(("event", "expected"), ENCODED_EVENTS)
    def test_event_line_parses_back(self, event: Event, expected: bytes) -> None:
        """A client parses every encoded event as the server message it stands for."""
        message = wire.parse_server_line(line.encode_event(Stamped(1, 0.0, event))[:-2])
        assert message == line.event_message(Stamped(1, 0.0, event))
        assert not isinstance(message, wire.Unknown)

    def test_stamp_is_not_in_the_line(self) -> None:
        """Protocol v1 carries no sequence number or time: two stamps give the same bytes."""
        said = Said("ann", "hi")
        assert line.encode_event(Stamped(1, 0.0, said)) == line.encode_event(
            Stamped(99, 1700000000.5, said))

    def test_tell_names_the_sender_not_the_target(self) -> None:
        """The target of a TELL reads the sender's nick; its own is not repeated."""
        told = Stamped(3, 0.0, Told("ann", "Bob", "psst"))
        assert line.encode_event(told) == b"TELL ann psst\r\n"


# --- USERS chunking -------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Valid nicks, built directly (faster than from_regex).
nicks = st.builds(str.__add__, st.sampled_from(_LETTERS),
                  st.text(_LETTERS + "0123456789_-", max_size=NICK_MAX - 1))


def nicks_from(lines: list[bytes]) -> list[str]:
    """The nicks carried by USERS lines, in order, checking each line's shape."""
    found: list[str] = []
    for raw in lines:
        assert raw.startswith(b"USERS ") and raw.endswith(b"\r\n"), raw
        message = wire.parse_server_line(raw[:-2])
        assert isinstance(message, wire.Users) and message.nicks, raw
        found.extend(message.nicks)
    return found


class TestUsersLines:
    """The WHO reply is cut into lines within the line limit."""

    def test_no_nicks_no_lines(self) -> None:
        """An empty room gives no USERS line."""
        assert line.users_lines([], 1024) == []

    def test_few_nicks_fit_one_line(self) -> None:
        """Nicks that fit share one line, in order."""
        assert line.users_lines(["ann", "bob"], 1024) == [b"USERS ann bob\r\n"]

    def test_line_exactly_at_limit_is_kept_whole(self) -> None:
        """A line whose length with CRLF equals the limit is not cut."""
        names = ["alice", "bobby", "carol", "david"]
        whole = b"USERS alice bobby carol david\r\n"
        assert line.users_lines(names, len(whole)) == [whole]
        assert line.users_lines(names, len(whole) - 1) == [b"USERS alice bobby carol\r\n",
                                                           b"USERS david\r\n"]

    def test_many_nicks_are_chunked_within_limit_in_order(self) -> None:
        """Hundreds of nicks come out over many lines, each within the limit, none lost."""
        names = [f"user{i}" + "x" * (i % 13) for i in range(500)]
        lines = line.users_lines(names, 64)
        assert len(lines) > 50
        assert all(len(raw) <= 64 for raw in lines)
        assert nicks_from(lines) == names

    def test_twenty_char_nick_with_tiny_limit_gets_a_line(self) -> None:
        """With a limit too small for any nick, every nick still goes out whole, one per line."""
        names = ["a" * 20, "b", "c" * 20]
        lines = line.users_lines(names, 10)
        assert lines == [b"USERS " + b"a" * 20 + b"\r\n", b"USERS b\r\n",
                         b"USERS " + b"c" * 20 + b"\r\n"]

    @settings(max_examples=100, deadline=None)
    @given(names=st.lists(nicks, max_size=60), limit=st.integers(min_value=1, max_value=300))
    def test_every_nick_present_and_lines_bounded(self, names: list[str], limit: int) -> None:
        """For any nicks and limit, lines hold all nicks in order and exceed the limit only
        when one 20-character nick could not fit otherwise."""
        lines = line.users_lines(names, limit)
        assert nicks_from(lines) == names
        bound = max(limit, len("USERS ") + NICK_MAX + 2)
        assert all(len(raw) <= bound for raw in lines)


# --- one connection's replies -----------------------------------------------------


class RecordingPeer:
    """A connection as its dialect sees it, recording every call in order."""

    def __init__(self, max_line: int = 1024) -> None:
        self.max_line = max_line
        self.session: Any = None
        self.calls: list[tuple[str, bytes] | tuple[str]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def send(self, data: bytes) -> None:
        self.calls.append(("send", data))

    def close(self) -> None:
        self.calls.append(("close",))

    def ready(self) -> None:
        self.calls.append(("ready",))

    def speak(self, dialect: str) -> None:
        """As the fan-out does: the session's events are worded for ``dialect``."""
        self.calls.append(("speak", dialect.encode()))
        self.session.dialect = dialect

    def take(self) -> list[tuple[str, bytes] | tuple[str]]:
        """The calls since the last take."""
        calls, self.calls = self.calls, []
        return calls


class NoAudience:
    """An audience that hears nothing: these tests look at replies only."""

    def add(self, member: Any) -> None:
        pass

    def remove(self, member: Any) -> None:
        pass

    def broadcast(self, stamped: Stamped, speaker: Any = None) -> None:
        pass

    def tell(self, member: Any, stamped: Stamped) -> None:
        pass

    def wall(self, stamped: Stamped) -> None:
        pass


def make_dialect(**kwargs: Any) -> tuple[line.LineDialect, RecordingPeer]:
    """A line dialect over a recording peer, in a room of its own."""
    peer = RecordingPeer(**kwargs)
    room = Room(LocalBus(lambda: 0.0), NoAudience())
    dialect = line.LineDialect(room, peer, lambda: NOW)
    peer.session = dialect.session
    return dialect, peer


class TestLineDialect:
    """Each answer is one ``send`` to the peer, in v1's words."""

    def test_greet_is_hello(self) -> None:
        """greet sends HELLO chatd/<version> and the greeting."""
        dialect, peer = make_dialect()
        dialect.greet()
        assert peer.take() == [("send", f"HELLO chatd/{__version__} {line.GREETING}\r\n".encode())]

    def test_nick_ok(self) -> None:
        """nick_ok sends OK NICK <nick>."""
        dialect, peer = make_dialect()
        dialect.nick_ok("ann")
        assert peer.take() == [("send", b"OK NICK ann\r\n")]

    def test_refused_is_err_with_code_and_text(self) -> None:
        """refused sends ERR <code> <text>."""
        dialect, peer = make_dialect()
        dialect.refused(ChatError(ErrorCode.NICK_TAKEN, "ann is already taken"))
        assert peer.take() == [("send", b"ERR nick-taken ann is already taken\r\n")]

    def test_welcome_is_one_send_of_users_then_ok_who(self) -> None:
        """welcome sends the USERS lines within max_line and OK WHO <count> in one send."""
        dialect, peer = make_dialect(max_line=30)
        dialect.welcome(["alice", "bobby", "carol", "david"])
        assert peer.take() == [
            ("send", b"USERS alice bobby carol\r\nUSERS david\r\nOK WHO 4\r\n")]

    def test_welcome_to_nobody_is_just_ok_who(self) -> None:
        """An empty roster is OK WHO 0 and no USERS line."""
        dialect, peer = make_dialect()
        dialect.welcome([])
        assert peer.take() == [("send", b"OK WHO 0\r\n")]

    def test_goodbye_is_bye(self) -> None:
        """goodbye sends BYE <reason>."""
        dialect, peer = make_dialect()
        dialect.goodbye("server shutting down")
        assert peer.take() == [("send", b"BYE server shutting down\r\n")]

    def test_ready_reaches_the_peer(self) -> None:
        """ready tells the peer to go on with held lines, and sends nothing."""
        dialect, peer = make_dialect()
        dialect.ready()
        assert peer.take() == [("ready",)]

    def test_line_too_long_names_the_limit(self) -> None:
        """An overlong line is answered ERR line-too-long with the limit in bytes."""
        dialect, peer = make_dialect(max_line=512)
        dialect.line_too_long()
        assert peer.take() == [
            ("send", b"ERR line-too-long lines are limited to 512 bytes; this one was dropped\r\n")]

    def test_flooding_names_the_rate(self) -> None:
        """Flooding is answered ERR flood with the allowed rate, and says nothing is lost."""
        dialect, peer = make_dialect()
        dialect.flooding(2.5)
        assert peer.take() == [
            ("send", b"ERR flood you are sending more than 2.5 lines a second; "
                     b"the rest are delayed, not lost\r\n")]

    def test_help_is_one_send(self) -> None:
        """HELP is every help line then OK HELP, in one send."""
        dialect, peer = make_dialect()
        dialect.line_received(b"HELP")
        expected = b"".join(f"HELP {text}\r\n".encode() for text in line.HELP_TEXT) + b"OK HELP\r\n"
        assert peer.take() == [("send", expected)]

    def test_quit_says_bye_then_closes(self) -> None:
        """QUIT sends BYE with the default reason, then closes the peer; later lines get nothing."""
        dialect, peer = make_dialect()
        dialect.line_received(b"QUIT")
        dialect.line_received(b"PING")
        assert peer.take() == [("send", f"BYE {DEFAULT_QUIT_REASON}\r\n".encode()), ("close",)]

    def test_parse_error_is_refused(self) -> None:
        """A line the grammar refuses is answered ERR and the session stays open."""
        dialect, peer = make_dialect()
        dialect.line_received(b"FROB")
        [(verb, data)] = peer.take()  # type: ignore[misc]
        assert verb == "send" and data.startswith(b"ERR unknown-command ")
        assert not dialect.session.closed


# --- protocol 1.1: TIME, and the @<time> prefix on every reply ---------------------

STAMP = "@2025-11-25T14:05:03.250Z "  # NOW as a prefix


class TickingClock:
    """A clock a millisecond later at every reading, to see how often a reply reads it."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += 0.001
        return self.now


def timed_dialect(clock: Any = None, **kwargs: Any) -> tuple[line.LineDialect, RecordingPeer]:
    """A dialect that has sent TIME ON, with that exchange taken."""
    peer = RecordingPeer(**kwargs)
    room = Room(LocalBus(lambda: 0.0), NoAudience())
    dialect = line.LineDialect(room, peer, clock or (lambda: NOW))
    peer.session = dialect.session
    dialect.line_received(b"TIME ON")
    peer.take()
    return dialect, peer


def sent_lines(calls: list[tuple[str, bytes] | tuple[str]]) -> list[bytes]:
    """Every line the dialect sent, with its CRLF, across its sends."""
    data = b"".join(call[1] for call in calls if call[0] == "send" and len(call) == 2)
    return [part + b"\r\n" for part in data.split(b"\r\n")[:-1]]


# Each reply a connection can get without logging in (the others need a room;
# see test_history_room.py), driven through the dialect.
REPLIES = {
    "pong": lambda d: d.line_received(b"PING x"),
    "err-unknown": lambda d: d.line_received(b"FROB"),
    "err-bad-argument": lambda d: d.line_received(b"TIME maybe"),
    "err-need-nick": lambda d: d.line_received(b"HISTORY"),
    "err-missing": lambda d: d.line_received(b"NICK"),
    "help": lambda d: d.line_received(b"HELP"),
    "who": lambda d: d.line_received(b"WHO"),
    "ok-time": lambda d: d.line_received(b"TIME"),
    "ok-nick": lambda d: d.nick_ok("ann"),
    "welcome": lambda d: d.welcome(["ann", "bob"]),
    "too-long": lambda d: d.line_too_long(),
    "flood": lambda d: d.flooding(5.0),
    "bye": lambda d: d.line_received(b"QUIT"),
    "bye-server": lambda d: d.goodbye("server shutting down"),
}


class TestTime:
    """TIME answers the clock; TIME ON and OFF switch the connection's wording."""

    def test_time_answers_the_clock(self) -> None:
        """TIME is OK TIME with the server's clock, unprefixed for a 1.0 connection."""
        dialect, peer = make_dialect()
        dialect.line_received(b"TIME")
        assert peer.take() == [("send", b"OK TIME 2025-11-25T14:05:03.250Z\r\n")]

    def test_time_on_switches_first_then_answers_prefixed(self) -> None:
        """TIME ON moves the connection to the timed wording, then OK TIME ON is itself
        prefixed."""
        dialect, peer = make_dialect()
        dialect.line_received(b"time on")
        assert peer.take() == [("speak", line.TIMED.encode()),
                               ("send", STAMP.encode() + b"OK TIME ON\r\n")]
        assert dialect.timed

    def test_time_off_switches_back_and_answers_unprefixed(self) -> None:
        """TIME OFF moves the connection back to the 1.0 wording; OK TIME OFF is not
        prefixed."""
        dialect, peer = timed_dialect()
        dialect.line_received(b"TIME OFF")
        assert peer.take() == [("speak", line.NAME.encode()), ("send", b"OK TIME OFF\r\n")]
        assert not dialect.timed

    def test_time_on_twice_answers_again(self) -> None:
        """TIME ON when it is already on just answers again, prefixed."""
        dialect, peer = timed_dialect()
        dialect.line_received(b"TIME ON")
        assert peer.take() == [("speak", line.TIMED.encode()),
                               ("send", STAMP.encode() + b"OK TIME ON\r\n")]

    def test_bad_argument_changes_nothing(self) -> None:
        """TIME with a bad argument is refused and leaves the wording as it was."""
        dialect, peer = make_dialect()
        dialect.line_received(b"TIME maybe")
        assert peer.take() == [("send", b"ERR bad-argument TIME takes ON, OFF or nothing; "
                                        b"not 'maybe'\r\n")]
        assert not dialect.timed

    def test_time_under_time_on_reads_the_clock_once(self) -> None:
        """OK TIME after TIME ON is one reading of the clock: its prefix and its time agree."""
        clock = TickingClock()
        dialect, peer = timed_dialect(clock)
        dialect.line_received(b"TIME")
        [reply] = sent_lines(peer.take())
        when, message = wire.parse_timed_server_line(reply)
        assert message == wire.Ok("TIME", when)


class TestTimePrefixOnReplies:
    """After TIME ON every reply line starts with @<time>; after TIME OFF none does."""

    @pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
    def test_every_reply_line_is_prefixed_after_time_on(self, reply: Any) -> None:
        """Each line of each reply kind is ``@<time> `` and then its 1.0 line."""
        plain, plain_peer = make_dialect()
        reply(plain)
        dialect, peer = timed_dialect()
        reply(dialect)
        expected = [STAMP.encode() + raw for raw in sent_lines(plain_peer.take())]
        assert expected and sent_lines(peer.take()) == expected

    @pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
    def test_no_reply_line_is_prefixed_after_time_off(self, reply: Any) -> None:
        """After TIME OFF every reply is exactly what a 1.0 connection gets."""
        plain, plain_peer = make_dialect()
        reply(plain)
        dialect, peer = timed_dialect()
        dialect.line_received(b"TIME OFF")
        peer.take()
        reply(dialect)
        assert sent_lines(peer.take()) == sent_lines(plain_peer.take())

    def test_greeting_is_never_prefixed(self) -> None:
        """HELLO has no prefix, even from a dialect that is timed."""
        dialect, peer = timed_dialect()
        dialect.greet()
        assert peer.take() == [("send", f"HELLO chatd/{__version__} {line.GREETING}\r\n".encode())]

    @pytest.mark.parametrize("reply", [lambda d: d.line_received(b"HELP"),
                                       lambda d: d.welcome([f"user{i}" for i in range(40)])],
                             ids=["help", "users"])
    def test_all_lines_of_one_reply_bear_one_time(self, reply: Any) -> None:
        """A reply of several lines reads the clock once: every line has the same prefix."""
        dialect, peer = timed_dialect(TickingClock(), max_line=64)
        reply(dialect)
        lines = sent_lines(peer.take())
        assert len(lines) > 1
        assert {raw.split(b" ", 1)[0] for raw in lines} == {lines[0].split(b" ", 1)[0]}

    def test_prefix_time_is_the_clock_at_the_reply(self) -> None:
        """The prefix is the time the reply was made, as the clock says then."""
        clock = TickingClock()
        dialect, peer = timed_dialect(clock)
        dialect.line_received(b"PING a")
        dialect.line_received(b"PING b")
        first, second = (wire.parse_timed_server_line(raw[:-2])[0]
                         for raw in sent_lines(peer.take()))
        assert first is not None and second is not None
        assert wire.parse_time(first) < wire.parse_time(second)  # type: ignore[operator]

    @settings(max_examples=100, deadline=None)
    @given(names=st.lists(nicks, min_size=1, max_size=60),
           max_line=st.integers(min_value=len(STAMP) + len("USERS ") + NICK_MAX + 2,
                                max_value=300))
    def test_prefixed_users_lines_stay_within_max_line(self, names: list[str],
                                                       max_line: int) -> None:
        """With the prefix, every USERS line still fits in max_line bytes, CRLF included,
        and together they list every nick in order."""
        dialect, peer = timed_dialect(max_line=max_line)
        dialect.welcome(names)
        lines = sent_lines(peer.take())
        assert all(raw.startswith(STAMP.encode()) and len(raw) <= max_line for raw in lines)
        assert lines[-1] == STAMP.encode() + f"OK WHO {len(names)}\r\n".encode()
        assert nicks_from([raw[len(STAMP):] for raw in lines[:-1]]) == names


class TestHistLine:
    """One line of a HISTORY reply."""

    def test_hist_line_is_hist_time_and_the_delivered_line(self) -> None:
        """``HIST <time>`` then, byte for byte, the line that was delivered for the event."""
        stamped = Stamped(7, NOW, Said("ann", "  two  spaces\t"))
        assert line.hist_line(stamped) == (b"HIST 2025-11-25T14:05:03.250Z "
                                           + line.encode_event(stamped))
        message = wire.parse_server_line(line.hist_line(stamped)[:-2])
        assert isinstance(message, wire.Hist)
        assert message.message == wire.Said("ann", "  two  spaces\t")

    def test_timed_event_is_prefixed_with_its_own_stamp(self) -> None:
        """After TIME ON a room event bears the time the bus stamped, not the clock's now."""
        stamped = Stamped(7, NOW + 60, Said("ann", "hi"))
        assert line.encode_timed_event(stamped) == b"@2025-11-25T14:06:03.250Z SAY ann hi\r\n"
