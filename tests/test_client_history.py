"""chat-tui and protocol 1.1: server time, the history replay and the
reconnect that shows only what was missed; pure, with plain lists."""

from __future__ import annotations

import pytest

from chatclient.client import Client
from chatclient.state import ClientState, Kind, Line, Replay, speaks_1_1
from chatd import wire

LOCAL = 1000.0  # the local clock of every state here


def at(second: int, millis: int = 0) -> str:
    """A protocol time on one test day: ``2026-11-25T14:05:<second>.<millis>Z``."""
    return f"2026-11-25T14:05:{second:02d}.{millis:03d}Z"


def seconds(stamp: str) -> float:
    value = wire.parse_time(stamp)
    assert value is not None
    return value


class Recorder:
    """The connection's ``send``: records every message."""

    def __init__(self) -> None:
        self.sent: list[wire.ClientMessage] = []

    def __call__(self, message: wire.ClientMessage) -> bool:
        self.sent.append(message)
        return True


class Session:
    """A client with a recording send, and every line it emitted."""

    def __init__(self, version: str = "chatd/1.1.0", history: int = 50) -> None:
        self.version = version
        self.send = Recorder()
        self.shown: list[Line] = []
        self.client = Client(ClientState("h:1", nick="ann", clock=lambda: LOCAL), self.send,
                             self.shown.extend, history=history)

    @property
    def state(self) -> ClientState:
        return self.client.state

    def hear(self, message: wire.ServerMessage, stamp: str | None = None) -> list[Line]:
        """One server line; the lines it showed."""
        before = len(self.shown)
        self.client.message_received(message, stamp)
        return self.shown[before:]

    def log_in(self, time_on: str, *hist: tuple[str, str], others: tuple[str, ...] = ()
               ) -> list[Line]:
        """A connection and a login as the server words them: ``OK NICK``, the
        own JOIN and ``WHO`` unstamped (sent before ``TIME ON`` was read), then
        ``OK TIME ON`` at ``time_on`` and the ``HIST`` lines; what was shown
        from the HIST lines on."""
        self.client.connection_made()
        self.hear(wire.Hello(self.version, "welcome"))
        self.hear(wire.Ok("NICK", "ann"))
        self.hear(wire.Joined("ann"))
        self.hear(wire.Users((*others, "ann")))
        self.hear(wire.Ok("WHO", str(len(others) + 1)))
        if not speaks_1_1(self.version):
            return []
        self.hear(wire.Ok("TIME", wire.TIME_ON), time_on)
        before = len(self.shown)
        for when, line in hist:
            self.hear(wire.Hist(when, line), time_on)
        self.hear(wire.Ok("HISTORY", str(len(hist))), time_on)
        return self.shown[before:]

    def drop(self) -> None:
        self.client.connection_lost("connection reset")
        self.client.reconnecting(0.5, 1, None)


def view(lines: list[Line]) -> list[tuple[Kind, str, Replay | None]]:
    return [(line.kind, line.text, line.replay) for line in lines]


class TestVersion:
    @pytest.mark.parametrize(("version", "new"), [
        ("chatd/1.1.0", True), ("chatd/1.1", True), ("chatd/1.10.2", True), ("chatd/2.0.0", True),
        ("chatd/1.0.0", False), ("chatd/1.0.9", False), ("chatd/1", False),
        ("ircd/1.1.0", False), ("", False),
    ])
    def test_only_chatd_1_1_or_later_counts_as_1_1(self, version: str, new: bool) -> None:
        """HELLO chatd/1.1 or later has TIME and HISTORY; 1.0 and other servers do not."""
        assert speaks_1_1(version) is new


class TestAfterLogin:
    def test_a_1_1_server_is_asked_time_on_then_history_50(self) -> None:
        """After OK NICK from a 1.1 server the client sends TIME ON, then HISTORY 50."""
        session = Session()
        session.log_in(at(1))
        assert session.send.sent == [wire.Nick("ann"), wire.Time("ON"), wire.History("50")]

    def test_a_1_0_server_is_asked_neither(self) -> None:
        """Against chatd/1.0 the client sends only NICK, and times are the local clock's."""
        session = Session("chatd/1.0.0")
        session.log_in(at(1))
        [line] = session.hear(wire.Said("bob", "hi"))
        assert session.send.sent == [wire.Nick("ann")]
        assert line.when == LOCAL and not session.state.replay_pending

    def test_the_relogin_after_a_reconnect_asks_again(self) -> None:
        """The automatic login of a new connection is followed by TIME ON and HISTORY too."""
        session = Session()
        session.log_in(at(1))
        session.drop()
        session.log_in(at(9))
        assert session.send.sent == [wire.Nick("ann"), wire.Time("ON"), wire.History("50")] * 2

    def test_history_zero_asks_only_time_on(self) -> None:
        """With no history wanted (plain mode's default) only TIME ON follows the login."""
        session = Session(history=0)
        session.log_in(at(1))
        assert session.send.sent == [wire.Nick("ann"), wire.Time("ON")]


class TestServerTime:
    def test_a_line_shows_the_server_time_it_came_with(self) -> None:
        """A line's time is its @<time> when it has one, the local clock otherwise."""
        session = Session()
        session.log_in(at(1))
        [live] = session.hear(wire.Said("bob", "hi"), at(7, 250))
        [plain] = session.hear(wire.Said("bob", "again"))
        assert live.when == seconds(at(7, 250)) and plain.when == LOCAL


class TestFirstLoginReplay:
    def test_replayed_lines_are_dimmed_between_markers_with_their_own_times(self) -> None:
        """HIST lines show between "history" and "end of history (2 lines)", each at
        the time inside it (not the reply's prefix), as replays."""
        session = Session()
        shown = session.log_in(at(30), (at(3), "SAY bob hello there"), (at(4), "SAY ann me"))
        assert view(shown) == [
            (Kind.HISTORY, "history", Replay.EARLIER),
            (Kind.SAY, "hello there", Replay.EARLIER),
            (Kind.SAY, "me", Replay.EARLIER),
            (Kind.HISTORY, "end of history (2 lines)", Replay.EARLIER),
        ]
        assert [line.when for line in shown[1:3]] == [seconds(at(3)), seconds(at(4))]
        assert [line.own for line in shown[1:3]] == [False, True]
        assert not session.state.replay_pending

    def test_a_replayed_mention_is_not_a_mention_and_never_rings(self) -> None:
        """A replayed line naming me is neither highlighted nor an alert; live, it would be."""
        session = Session()
        shown = session.log_in(at(30), (at(3), "SAY bob ann: are you there?"))
        replayed = shown[1]
        assert (replayed.mention, replayed.alerts) == (False, False)
        [live] = session.hear(wire.Said("bob", "ann: are you there?"), at(31))
        assert (live.mention, live.alerts) == (True, True)

    def test_a_replayed_join_changes_nobody(self) -> None:
        """A replayed room event is shown only: the member list stays as WHO said."""
        session = Session()
        shown = session.log_in(at(30), (at(3), "JOIN zed"), others=("bob",))
        assert view(shown)[1] == (Kind.JOIN, "zed joined.", Replay.EARLIER)
        assert session.state.sorted_members() == ["ann", "bob"]

    def test_an_empty_replay_shows_nothing(self) -> None:
        """OK HISTORY 0 on the first login adds no line at all, not even a marker."""
        session = Session()
        assert session.log_in(at(30)) == []

    def test_one_line_is_one_line(self) -> None:
        """The closing marker counts in words: "1 line"."""
        session = Session()
        shown = session.log_in(at(30), (at(3), "SAY bob hi"))
        assert shown[-1].text == "end of history (1 line)"

    def test_a_refused_history_ends_the_wait(self) -> None:
        """An ERR instead of the HISTORY reply ends the pending replay (plain mode waits on it)."""
        session = Session()
        session.log_in(at(1))
        session.client.connection_made()
        session.hear(wire.Hello("chatd/1.1.0", "hi"))
        session.hear(wire.Ok("NICK", "ann"))
        assert session.state.replay_pending
        session.hear(wire.Error("unknown-command", "unknown command 'HISTORY'; try HELP"))
        assert not session.state.replay_pending


class TestReconnectReplay:
    """After a reconnect only the lines said while away are shown, once."""

    def seen_then_dropped(self, *live: tuple[str, str]) -> Session:
        """Logged in at second 1, heard ``live`` (time, text of bob's SAYs), dropped."""
        session = Session()
        session.log_in(at(1), (at(0), "SAY bob before I came"))
        for when, text in live:
            session.hear(wire.Said("bob", text), when)
        session.drop()
        return session

    def test_only_the_missed_lines_show_between_missed_markers(self) -> None:
        """HIST lines up to the last line shown are left out; the newer ones are
        shown between "missed while disconnected" and "end of missed lines (2 lines)"."""
        session = self.seen_then_dropped((at(2), "one"), (at(3), "two"))
        shown = session.log_in(at(9), (at(0), "SAY bob before I came"), (at(2), "SAY bob one"),
                               (at(3), "SAY bob two"), (at(5), "SAY bob three"),
                               (at(6), "SAY bob four"))
        assert view(shown) == [
            (Kind.HISTORY, "missed while disconnected", Replay.MISSED),
            (Kind.SAY, "three", Replay.MISSED),
            (Kind.SAY, "four", Replay.MISSED),
            (Kind.HISTORY, "end of missed lines (2 lines)", Replay.MISSED),
        ]

    def test_two_lines_in_one_millisecond_one_seen_one_missed(self) -> None:
        """Of two lines with the newest time shown, the one shown is left out and
        the other, said just before the drop, is shown."""
        session = self.seen_then_dropped((at(3, 120), "seen"))
        shown = session.log_in(at(9), (at(3, 120), "SAY bob seen"),
                               (at(3, 120), "SAY bob missed"))
        assert [line.text for line in shown] == [
            "missed while disconnected", "missed", "end of missed lines (1 line)"]

    def test_the_same_line_twice_in_one_millisecond_is_counted(self) -> None:
        """bob says "hi" twice in one millisecond and only the first arrived: one is missed."""
        session = self.seen_then_dropped((at(3, 120), "hi"))
        shown = session.log_in(at(9), (at(3, 120), "SAY bob hi"), (at(3, 120), "SAY bob hi"))
        assert [line.text for line in shown] == [
            "missed while disconnected", "hi", "end of missed lines (1 line)"]

    def test_nothing_missed_shows_nothing(self) -> None:
        """When every HIST line was shown before the drop, no line and no marker is added."""
        session = self.seen_then_dropped((at(2), "one"), (at(3), "two"))
        assert session.log_in(at(9), (at(2), "SAY bob one"), (at(3), "SAY bob two")) == []

    def test_lines_heard_before_time_on_count_as_seen_at_its_time(self) -> None:
        """A line heard between my JOIN and OK TIME ON has no time of its own; it was
        said before that reply, so after a reconnect it is not shown again."""
        session = Session()
        session.client.connection_made()
        session.hear(wire.Hello("chatd/1.1.0", "welcome"))
        session.hear(wire.Ok("NICK", "ann"))
        session.hear(wire.Joined("ann"))
        session.hear(wire.Said("bob", "quick"))  # unstamped: before TIME ON was read
        session.hear(wire.Ok("TIME", "ON"), at(2, 5))
        session.hear(wire.Ok("HISTORY", "0"), at(2, 5))
        session.drop()
        shown = session.log_in(at(9), (at(2, 1), "SAY bob quick"), (at(4), "SAY bob later"))
        assert [line.text for line in shown][1:-1] == ["later"]

    def test_a_line_said_after_the_newest_shown_other_event_is_missed(self) -> None:
        """A JOIN or PART is a room line too: a SAY older than the newest one shown was seen."""
        session = Session()
        session.log_in(at(1))
        session.hear(wire.Said("bob", "hi"), at(2))
        session.hear(wire.Parted("bob", "bye"), at(4))
        session.drop()
        shown = session.log_in(at(9), (at(2), "SAY bob hi"), (at(5), "SAY eve hello"))
        assert [line.text for line in shown][1:-1] == ["hello"]

    def test_events_heard_during_the_replay_show_after_it(self) -> None:
        """Others joining (and speaking) between my login and the HISTORY reply were
        after the missed lines: they show after the closing marker, in order,
        and the member list has them at once."""
        session = self.seen_then_dropped((at(2), "one"))
        session.client.connection_made()
        session.hear(wire.Hello("chatd/1.1.0", "welcome"))
        session.hear(wire.Ok("NICK", "ann"))
        session.hear(wire.Joined("ann"))
        session.hear(wire.Users(("ann",)))
        session.hear(wire.Ok("WHO", "1"))
        before = len(session.shown)
        assert session.hear(wire.Joined("bob")) == []
        assert session.state.sorted_members() == ["ann", "bob"]
        session.hear(wire.Ok("TIME", "ON"), at(9))
        session.hear(wire.Said("bob", "back too"), at(9, 1))
        session.hear(wire.Hist(at(5), "SAY eve while you were away"), at(9, 1))
        session.hear(wire.Ok("HISTORY", "1"), at(9, 1))
        shown = session.shown[before:]
        assert [line.text for line in shown] == [
            "missed while disconnected", "while you were away", "end of missed lines (1 line)",
            "bob joined.", "back too"]
        assert [line.seq for line in shown] == sorted(line.seq for line in shown)
        assert list(session.state.lines)[-5:] == shown

    def test_a_drop_during_the_replay_shows_what_was_held(self) -> None:
        """Lines held for a replay that never ends are shown when the connection drops."""
        session = Session()
        session.client.connection_made()
        session.hear(wire.Hello("chatd/1.1.0", "welcome"))
        session.hear(wire.Ok("NICK", "ann"))
        session.hear(wire.Said("bob", "quick"), at(3))
        before = len(session.shown)
        session.client.connection_lost("reset")
        assert [line.text for line in session.shown[before:]] == [
            "quick", "Lost the connection to h:1 (reset)."]

    def test_a_reconnect_to_a_1_0_server_behaves_as_before(self) -> None:
        """If the server came back as 1.0, nothing is asked and nothing replayed."""
        session = self.seen_then_dropped((at(2), "one"))
        session.version = "chatd/1.0.0"
        session.send.sent.clear()
        session.log_in(at(9))
        assert session.send.sent == [wire.Nick("ann")]
        assert not session.state.replay_pending
