"""Protocol 1.1 through a whole node (real ``LocalBus``, ``Room``, ``History``,
fan-out and outboxes, on a ``MemoryReactorClock``), over recording fake
links: what ``HISTORY`` gives back and when, and the ``@<time>`` prefix on
every line after ``TIME ON``, across turns and coalesced broadcasts."""

from __future__ import annotations

from typing import Any

import pytest

from chatd import wire
from chatd.node import Node
from tests.builders import Peer, connect, make_node

START = 1795615503.25  # 2026-11-25T14:05:03.250Z, the spec's example


def node_at(**settings: Any) -> Node:
    """A node whose clock reads ``START`` (and later what the test advances it to)."""
    node = make_node(**settings)
    node.clock.advance(START)  # type: ignore[attr-defined]  # MemoryReactorClock
    return node


@pytest.fixture
def node() -> Node:
    """A node with default history settings (100 lines, 64 KiB) and no flood control."""
    return node_at()


def login(node: Node, nick: str) -> Peer:
    """A connection logged in as ``nick``, everything it was sent so far read."""
    return connect(node).login(nick)


def clear(*peers: Peer) -> None:
    for peer in peers:
        peer.lines()


def history(peer: Peer, *args: str) -> list[str]:
    """The whole reply to ``HISTORY [args]``."""
    peer.send(" ".join(["HISTORY", *args]))
    return peer.lines()


def replayed(reply: list[str]) -> list[str]:
    """The lines a HISTORY reply replays, checking its shape: HIST lines, oldest first
    (their times never go back), then ``OK HISTORY <count>``."""
    *hists, ok = reply
    assert ok == f"OK HISTORY {len(hists)}", reply
    lines, times = [], []
    for raw in hists:
        message = wire.parse_server_line(raw)
        assert isinstance(message, wire.Hist), raw
        when = wire.parse_time(message.time)
        assert when is not None, raw
        times.append(when)
        lines.append(message.line)
    assert times == sorted(times), reply
    return lines


def at(seconds: float) -> str:
    """``@<time> `` for a moment."""
    return f"@{wire.format_time(seconds)} "


def unprefixed(peer_lines: list[str]) -> list[tuple[float, str]]:
    """Each line of a TIME ON reader split into its time and its 1.0 line; every line
    must be prefixed."""
    split = []
    for raw in peer_lines:
        when, rest = wire.split_time(raw)
        assert when is not None, raw
        seconds = wire.parse_time(when)
        assert seconds is not None
        split.append((seconds, rest))
    return split


class TestCutOff:
    """HISTORY gives what was said before this connection logged in, and nothing after."""

    def test_joiner_gets_exactly_the_lines_before_its_join(self, node: Node) -> None:
        """Lines said before bob's JOIN are replayed, oldest first; lines after it are not."""
        ann = login(node, "ann")
        ann.send("SAY one", "SAY two")
        bob = login(node, "bob")
        ann.send("SAY three")
        assert bob.lines() == ["SAY ann three"]
        assert replayed(history(bob)) == ["SAY ann one", "SAY ann two"]

    def test_a_line_heard_live_is_never_replayed(self, node: Node) -> None:
        """Everything said after one's login was heard live, so HISTORY has none of it."""
        ann, bob = login(node, "ann"), login(node, "bob")
        ann.send("SAY hello bob")
        bob.send("SAY hello ann")
        assert bob.lines() == ["SAY ann hello bob", "SAY bob hello ann"]
        assert history(bob) == ["OK HISTORY 0"]
        clear(ann)
        assert history(ann) == ["OK HISTORY 0"]

    def test_cut_off_inside_one_coalesced_turn(self, node: Node) -> None:
        """Lines said in the same reactor turn as a login split exactly at its JOIN,
        though all of them reach the members in one write."""
        ann = login(node, "ann")
        ann.send("SAY before")
        bob = Peer(node)
        bob.send("NICK bob")
        ann.send("SAY after")
        assert bob.lines()[1:] == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2",
                                   "SAY ann after"]
        assert replayed(history(bob)) == ["SAY ann before"]

    def test_rename_keeps_the_cut_off(self, node: Node) -> None:
        """A rename is not a login: what was said between login and rename stays out."""
        ann = login(node, "ann")
        ann.send("SAY before bob")
        bob = login(node, "bob")
        ann.send("SAY while bob")
        bob.send("NICK bobby")
        ann.send("SAY while bobby")
        clear(ann, bob)
        assert replayed(history(bob)) == ["SAY ann before bob"]

    def test_asking_twice_gives_the_same_lines(self, node: Node) -> None:
        """HISTORY is repeatable: chat in between adds nothing to it."""
        ann = login(node, "ann")
        ann.send("SAY old")
        bob = login(node, "bob")
        first = history(bob)
        ann.send("SAY new")
        clear(bob)
        assert history(bob) == first

    def test_a_second_connection_with_the_same_nick_gets_its_own_cut_off(self,
                                                                         node: Node) -> None:
        """The cut-off belongs to the connection, not the nick: who comes back under an old
        nick reads what was said before its new login, including while it was away."""
        ann, bob = login(node, "ann"), login(node, "bob")
        ann.send("SAY while bob is here")
        bob.send("QUIT")
        ann.send("SAY while bob is away")
        again = login(node, "bob")
        assert replayed(history(again)) == ["SAY ann while bob is here",
                                            "SAY ann while bob is away"]


class TestWhatIsKept:
    """Only SAY lines are kept, byte for byte as they were delivered."""

    def test_only_say_is_kept(self, node: Node) -> None:
        """TELL, WALL, JOIN, PART, RENAME and replies never appear in HISTORY."""
        ann, cy = login(node, "ann"), login(node, "cy")
        ann.send("SAY kept", "TELL cy a secret", "TELL ann to myself", "WALL fire drill",
                 "PING hi", "WHO", "NICK anna", "FROB", "SAY kept too")
        cy.send("QUIT gone")
        bob = login(node, "bob")
        assert replayed(history(bob)) == ["SAY ann kept", "SAY anna kept too"]

    def test_hist_line_is_the_delivered_line_byte_for_byte(self, node: Node) -> None:
        """The line inside HIST is the very line the room heard then, spaces, TABs and all."""
        ann, cy = login(node, "ann"), login(node, "cy")
        clear(cy)
        ann.send(" say   two  spaces\t ", "SAY caf\u00e9 \u4e16\u754c", "SAY \x1b[31mred")
        heard = cy.lines()
        bob = login(node, "bob")
        assert replayed(history(bob)) == heard == ["SAY ann   two  spaces\t ",
                                                   "SAY ann caf\u00e9 \u4e16\u754c",
                                                   "SAY ann [31mred"]

    def test_hist_time_is_when_the_room_accepted_the_line(self, node: Node) -> None:
        """Each HIST carries the time its SAY was stamped, not the time of the reply."""
        ann = login(node, "ann")
        ann.send("SAY first")
        node.clock.advance(1.5)  # type: ignore[attr-defined]
        ann.send("SAY second")
        node.clock.advance(60)  # type: ignore[attr-defined]
        bob = login(node, "bob")
        assert history(bob) == [f"HIST {wire.format_time(START)} SAY ann first",
                                f"HIST {wire.format_time(START + 1.5)} SAY ann second",
                                "OK HISTORY 2"]

    def test_old_nick_stays_in_old_lines(self, node: Node) -> None:
        """A line keeps the nick it was said under, even after its speaker renamed."""
        ann = login(node, "ann")
        ann.send("SAY as ann", "NICK anna", "SAY as anna")
        bob = login(node, "bob")
        assert replayed(history(bob)) == ["SAY ann as ann", "SAY anna as anna"]

    def test_the_reply_is_one_write(self, node: Node) -> None:
        """Every HIST line and OK HISTORY go to the transport in one piece."""
        ann = login(node, "ann")
        ann.send(*(f"SAY line {i}" for i in range(5)))
        bob = login(node, "bob")
        bob.end_turn()
        before = len(bob.link.writes)
        bob.send("HISTORY")
        bob.end_turn()
        assert len(bob.link.writes) == before + 1
        assert bob.link.writes[-1].endswith(b"OK HISTORY 5\r\n")


class TestCounts:
    """How many lines: the request's n, the default 20, and the server's bounds."""

    def test_default_is_the_last_twenty(self, node: Node) -> None:
        """A bare HISTORY gives the last 20 lines said before login."""
        ann = login(node, "ann")
        ann.send(*(f"SAY line {i}" for i in range(25)))
        bob = login(node, "bob")
        assert replayed(history(bob)) == [f"SAY ann line {i}" for i in range(5, 25)]

    @pytest.mark.parametrize(("count", "first"), [("3", 22), ("25", 0), ("1000", 0),
                                                  ("99999999999999999999", 0)])
    def test_n_is_clamped_to_what_is_kept(self, node: Node, count: str, first: int) -> None:
        """HISTORY n gives the last n lines, or every kept line when fewer are kept."""
        ann = login(node, "ann")
        ann.send(*(f"SAY line {i}" for i in range(25)))
        bob = login(node, "bob")
        assert replayed(history(bob, count)) == [f"SAY ann line {i}" for i in range(first, 25)]

    def test_zero_is_ok_history_zero(self, node: Node) -> None:
        """HISTORY 0 answers OK HISTORY 0 even when lines are kept."""
        ann = login(node, "ann")
        ann.send("SAY hi")
        assert history(login(node, "bob"), "0") == ["OK HISTORY 0"]

    def test_nothing_said_yet_is_ok_history_zero(self, node: Node) -> None:
        """The first one in an empty room gets OK HISTORY 0."""
        assert history(login(node, "ann")) == ["OK HISTORY 0"]

    def test_history_off(self) -> None:
        """With --history 0 the node keeps no history and every HISTORY is OK HISTORY 0."""
        node = node_at(history=0)
        assert node.history is None and node.room.history is None
        ann = login(node, "ann")
        ann.send("SAY not kept")
        assert history(login(node, "bob"), "50") == ["OK HISTORY 0"]

    def test_count_bound(self) -> None:
        """With --history 3, only the last 3 lines said are there to give."""
        node = node_at(history=3)
        ann = login(node, "ann")
        ann.send(*(f"SAY line {i}" for i in range(6)))
        bob = login(node, "bob")
        assert replayed(history(bob, "10")) == ["SAY ann line 3", "SAY ann line 4",
                                                "SAY ann line 5"]

    def test_byte_bound(self) -> None:
        """With --history-bytes B, the newest lines that fit in B bytes are kept, and a line
        bigger than B is not kept at all."""
        size = len(b"SAY ann line 0\r\n")
        node = node_at(history_bytes=2 * size)
        ann = login(node, "ann")
        ann.send("SAY line 0", "SAY line 1", "SAY " + "x" * 100, "SAY line 2")
        bob = login(node, "bob")
        assert replayed(history(bob)) == ["SAY ann line 1", "SAY ann line 2"]


class TestRefusals:
    """HISTORY's errors."""

    def test_history_needs_a_nick(self, node: Node) -> None:
        """HISTORY before logging in is ERR need-nick."""
        assert history(connect(node)) == ["ERR need-nick log in first with NICK <name>"]

    @pytest.mark.parametrize("argument", ["ten", "-1", "5 6", "1.5"])
    def test_bad_argument_then_a_working_line(self, node: Node, argument: str) -> None:
        """HISTORY with something other than a number is ERR bad-argument; the connection
        goes on."""
        ann = login(node, "ann")
        ann.send(f"HISTORY {argument}", "PING ok")
        assert ann.lines() == [
            f"ERR bad-argument HISTORY takes a number of lines, like HISTORY 20; not {argument!r}",
            "PONG ok"]


class TestTimeOn:
    """After TIME ON every line starts with @<time>; the switch loses and repeats nothing."""

    def test_switch_mid_turn_with_broadcasts_pending(self, node: Node) -> None:
        """TIME ON and TIME OFF between coalesced broadcasts of one turn: every SAY arrives
        once, in order, worded as it was when it was broadcast."""
        ann, bob, cy = login(node, "ann"), login(node, "bob"), login(node, "cy")
        cy.send("TIME ON")
        clear(ann, bob, cy)
        bob.send("SAY 1")
        ann.send("TIME ON")
        bob.send("SAY 2")
        ann.send("TIME OFF")
        bob.send("SAY 3")
        stamp = at(START)
        assert ann.lines() == ["SAY bob 1", stamp + "OK TIME ON", stamp + "SAY bob 2",
                               "OK TIME OFF", "SAY bob 3"]
        assert bob.lines() == ["SAY bob 1", "SAY bob 2", "SAY bob 3"]
        assert cy.lines() == [stamp + "SAY bob 1", stamp + "SAY bob 2", stamp + "SAY bob 3"]

    def test_one_event_has_one_time_for_every_recipient(self, node: Node) -> None:
        """Two TIME ON readers of one SAY read the same time, the time HIST shows later."""
        ann, bob, cy = login(node, "ann"), login(node, "bob"), login(node, "cy")
        ann.send("TIME ON")
        bob.send("TIME ON")
        node.clock.advance(0.123)  # type: ignore[attr-defined]
        clear(ann, bob)
        cy.send("SAY hi")
        said_at = at(START + 0.123)
        assert ann.lines() == bob.lines() == [said_at + "SAY cy hi"]
        dee = login(node, "dee")
        assert history(dee) == [f"HIST {said_at[1:-1]} SAY cy hi", "OK HISTORY 1"]

    def test_event_prefix_is_its_stamp_not_the_flush(self, node: Node) -> None:
        """A broadcast bears the time the room accepted it, even when written later."""
        ann, bob = login(node, "ann"), login(node, "bob")
        ann.send("TIME ON")
        clear(ann)
        bob.send("SAY early")
        node.clock.advance(2)  # type: ignore[attr-defined]  # the turn ends 2 s later
        assert ann.lines() == [at(START) + "SAY bob early"]

    def test_every_kind_of_line_is_prefixed(self) -> None:
        """After TIME ON (sent before logging in), every line ann reads is @<time> and its
        1.0 line: replies, errors, each room event, HIST, WALL, flood and line-too-long
        errors, BYE; and the times never go back."""
        node = node_at(max_line=64, flood_rate=1000.0, flood_burst=8)
        cy = login(node, "cy")
        cy.send("SAY said before ann came")
        ann = connect(node)
        ann.send("TIME ON")
        tick = node.clock.advance  # type: ignore[attr-defined]
        tick(0.001)
        ann.send("NICK ann")
        tick(0.001)
        bob = login(node, "bob")
        tick(0.001)
        bob.send("SAY hi", "NICK bobby", "TELL ann psst", "WALL fire drill")
        tick(0.001)
        ann.send("WHO", "HISTORY", "FROB", "HELP", "SAY " + "x" * 70, "PING")
        tick(0.001)
        cy.send("QUIT gone")
        tick(0.001)
        ann.send(*(f"PING {i}" for i in range(12)))  # over the burst of 8
        for _ in range(20):  # the flood lag passes, one delayed line per call
            tick(0.01)
        ann.send("QUIT bye")
        lines = unprefixed(ann.lines())
        times = [when for when, _ in lines]
        assert times == sorted(times)
        verbs = {rest.split(" ", 1)[0] for _, rest in lines}
        assert verbs >= {"OK", "JOIN", "USERS", "SAY", "RENAME", "TELL", "WALL", "HIST",
                         "ERR", "HELP", "PONG", "PART", "BYE"}
        rests = [rest for _, rest in lines]
        assert rests[0] == "OK TIME ON"
        for expected in ["OK NICK ann", "JOIN ann", "USERS cy ann", "OK WHO 2", "JOIN bob",
                         "SAY bob hi", "RENAME bob bobby", "TELL bobby psst",
                         "WALL bobby fire drill", "USERS cy ann bobby", "OK WHO 3",
                         "OK HISTORY 1", "OK HELP", "PONG", "PART cy gone", "BYE bye"]:
            assert expected in rests, expected
        assert any(rest.startswith("HIST ") and rest.endswith(" SAY cy said before ann came")
                   for rest in rests)
        assert any(rest.startswith("ERR unknown-command ") for rest in rests)
        assert any(rest.startswith("ERR line-too-long ") for rest in rests)
        assert any(rest.startswith("ERR flood ") for rest in rests)
        assert rests[-1] == "BYE bye"

    def test_time_off_unprefixes_every_kind_of_line(self) -> None:
        """After TIME OFF, ann reads exactly what she reads in the same room having never
        sent TIME ON."""
        def session(switch: bool) -> list[str]:
            node = node_at(max_line=64)
            cy = login(node, "cy")
            cy.send("SAY said before ann came")
            ann = connect(node)
            if switch:
                ann.send("TIME ON", "TIME OFF")
            clear(ann)
            ann.send("NICK ann")
            bob = login(node, "bob")
            bob.send("SAY hi", "NICK bobby", "TELL ann psst", "WALL fire drill")
            ann.send("WHO", "HISTORY", "FROB", "HELP", "SAY " + "x" * 70, "TIME", "PING")
            cy.send("QUIT gone")
            ann.send("QUIT bye")
            return ann.lines()

        plain = session(switch=False)
        assert session(switch=True) == plain
        assert not any(raw.startswith("@") for raw in plain)

    def test_wall_reaches_a_timed_connection_not_logged_in(self, node: Node) -> None:
        """A connection that sent TIME ON but never NICK gets WALL with the WALL's time."""
        lurker = connect(node)
        lurker.send("TIME ON")
        clear(lurker)
        ann = login(node, "ann")
        node.clock.advance(0.5)  # type: ignore[attr-defined]
        ann.send("WALL heads up")
        assert lurker.lines() == [at(START + 0.5) + "WALL ann heads up"]

    def test_hist_lines_bear_the_time_of_the_reply(self, node: Node) -> None:
        """After TIME ON, each HIST line and OK HISTORY bear the time of the reply; the
        HIST keeps the time of its SAY inside."""
        ann = login(node, "ann")
        ann.send("SAY old news")
        node.clock.advance(10)  # type: ignore[attr-defined]
        bob = login(node, "bob")
        bob.send("TIME ON")
        clear(bob)
        node.clock.advance(5)  # type: ignore[attr-defined]
        now = at(START + 15)
        assert history(bob) == [f"{now}HIST {wire.format_time(START)} SAY ann old news",
                                f"{now}OK HISTORY 1"]

    def test_shutdown_wall_and_bye_are_prefixed(self, node: Node) -> None:
        """The server's own WALL and BYE at shutdown reach a TIME ON reader prefixed."""
        ann = login(node, "ann")
        ann.send("TIME ON")
        clear(ann)
        node.shutdown(lambda: None)
        stamp = at(START)
        assert ann.lines() == [stamp + "WALL * server shutting down",
                               stamp + "BYE server shutting down"]

    def test_a_timed_neighbour_changes_nothing_for_a_1_0_reader(self, node: Node) -> None:
        """A 1.0 connection in a room with TIME ON readers reads exactly protocol 1.0."""
        ann = login(node, "ann")
        bob = connect(node)
        bob.send("TIME ON", "NICK bob", "SAY hi from bob", "NICK bobby", "TELL ann psst",
                 "WALL drill", "QUIT later")
        assert ann.lines() == ["JOIN bob", "SAY bob hi from bob", "RENAME bob bobby",
                               "TELL bobby psst", "WALL bobby drill", "PART bobby later"]

    def test_prefixed_users_lines_fit_in_max_line(self) -> None:
        """A TIME ON reader's WHO reply is cut so each USERS line, prefix and CRLF included,
        stays within max_line, and lists everyone."""
        node = node_at(max_line=56)
        nicks = [f"user{i:02d}" for i in range(12)]
        for nick in nicks:
            login(node, nick)
        ann = connect(node)
        ann.send("TIME ON")
        clear(ann)
        ann.send("WHO")
        ann.end_turn()
        raw = b"".join(ann.link.writes).split(b"OK TIME ON\r\n", 1)[1]
        lines = [part + b"\r\n" for part in raw.split(b"\r\n")[:-1]]
        assert len(lines) > 2 and all(len(one) <= 56 for one in lines)
        listed = [nick for _, rest in unprefixed([one[:-2].decode() for one in lines[:-1]])
                  for nick in rest.split(" ")[1:]]
        assert listed == nicks
