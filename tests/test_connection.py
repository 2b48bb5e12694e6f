"""A connection whose nick claim is answered later (as a bus on Redis will):
its further lines wait, in order, with reading paused, until the answer."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from chatd.bus import Answer, LocalBus
from chatd.config import Config
from chatd.node import Node
from tests.builders import Peer, connect, make_node


class LateBus(LocalBus):
    """A ``LocalBus`` whose claims wait, queued, until the test answers them."""

    def __init__(self, clock: MemoryReactorClock) -> None:
        super().__init__(clock.seconds)
        self.claims: list[tuple[str, Answer]] = []

    def claim(self, nick: str, answer: Answer) -> None:
        self.claims.append((nick, answer))

    def answer(self) -> None:
        """Let the oldest claim still out reach the bus, and its answer come back."""
        nick, answer = self.claims.pop(0)
        super().claim(nick, answer)


def make_late_node() -> tuple[Node, LateBus]:
    clock = MemoryReactorClock()
    bus = LateBus(clock)
    return Node(Config(flood_rate=0.0), clock, bus=bus), bus


def login(node: Node, bus: LateBus, nick: str) -> Peer:
    """A connection logged in as ``nick`` through the late bus, its lines read."""
    peer = connect(node)
    peer.send(f"NICK {nick}")
    bus.answer()
    assert peer.lines()[0] == f"OK NICK {nick}"
    return peer


class TestLateClaim:
    """Lines behind a NICK whose claim is still out."""

    def test_held_lines_wait_for_the_claim(self) -> None:
        """SAY and PING sent with NICK are not handled, and reading is paused, until the
        claim answers; then reading resumes and the login comes first."""
        node, bus = make_late_node()
        ann = connect(node)
        ann.send("NICK ann", "SAY a", "PING p")
        assert ann.lines() == []
        assert ann.link.calls == ["pause"]
        assert [nick for nick, _ in bus.claims] == ["ann"]
        bus.answer()
        lines = ann.lines()
        assert lines[:4] == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]
        assert sorted(lines[4:]) == ["PONG p", "SAY ann a"]
        assert ann.link.calls == ["pause", "resume"]

    def test_held_lines_are_answered_in_order(self) -> None:
        """Once a late claim answers, the peer reads OK NICK, JOIN, USERS, OK WHO, then its
        own SAY and only then the PONG that was sent after it (PING is a barrier, section 9)."""
        node, bus = make_late_node()
        ann = connect(node)
        ann.send("NICK ann", "SAY a", "PING p")
        bus.answer()
        assert ann.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1",
                               "SAY ann a", "PONG p"]
        assert ann.link.calls == ["pause", "resume"]

    def test_lines_in_later_packets_wait_too(self) -> None:
        """Lines arriving while the claim is out join the held ones, in order."""
        node, bus = make_late_node()
        ann = connect(node)
        ann.send("NICK ann")
        ann.send("PING 1")
        ann.send("PING 2")
        assert ann.lines() == []
        bus.answer()
        assert ann.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1",
                               "PONG 1", "PONG 2"]

    def test_others_hear_join_when_the_claim_answers(self) -> None:
        """Users already in hear the JOIN when the claim answers, not when NICK arrived."""
        node, bus = make_late_node()
        ann = login(node, bus, "ann")
        bob = connect(node)
        bob.send("NICK bob", "SAY hi")
        assert ann.lines() == []
        bus.answer()
        assert ann.lines() == ["JOIN bob", "SAY bob hi"]

    def test_refused_claim_lets_held_lines_go_on(self) -> None:
        """A late refusal answers ERR nick-taken, then the held lines are handled in order."""
        node, bus = make_late_node()
        login(node, bus, "ann")
        bob = connect(node)
        bob.send("NICK ANN", "WHO", "PING p")
        assert bob.lines() == []
        bus.answer()
        assert bob.lines() == ["ERR nick-taken ANN is already taken; choose another nick",
                               "USERS ann", "OK WHO 1", "PONG p"]
        assert bob.link.calls == ["pause", "resume"]
        assert bob.connection.session.nick is None

    def test_held_nick_after_refusal_is_claimed_in_turn(self) -> None:
        """A second NICK held behind a refused one sends its own claim once the first answers."""
        node, bus = make_late_node()
        login(node, bus, "ann")
        bob = connect(node)
        bob.send("NICK ann", "NICK bob", "PING p")
        bus.answer()
        bob.clock.advance(0)  # held lines go on in the turn after the answer
        assert [nick for nick, _ in bus.claims] == ["bob"]
        bus.answer()
        lines = bob.lines()
        assert lines[0].startswith("ERR nick-taken ")
        assert lines[1:] == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2", "PONG p"]

    def test_connection_closed_while_claiming_releases_the_nick(self) -> None:
        """A connection lost while its claim is out gives the nick back: the others
        hear JOIN then PART, and the nick is free."""
        node, bus = make_late_node()
        ann = login(node, bus, "ann")
        bob = connect(node)
        bob.send("NICK bob")
        bob.lose()
        bus.answer()
        assert ann.lines() == ["JOIN bob", "PART bob connection lost"]
        assert node.room.nicks == ["ann"] and bus.nicks == ["ann"]

    def test_nick_of_connection_closed_while_claiming_is_free(self) -> None:
        """Once the claim of a lost connection answers, another may log in with its nick."""
        node, bus = make_late_node()
        login(node, bus, "ann")
        bob = connect(node)
        bob.send("NICK bob")
        bob.lose()
        bus.answer()
        cy = connect(node)
        cy.send("NICK bob")
        bus.answer()
        assert cy.lines()[0] == "OK NICK bob"
        assert bob.lines() == []


class TestIdleMemory:
    """An idle connection keeps no framer."""

    def test_framer_is_dropped_once_every_line_is_handled(self) -> None:
        """After whole lines the connection holds no framer; an unfinished line keeps one."""
        node = make_node()
        ann = connect(node)
        ann.send("NICK ann")
        assert ann.connection._framer is None
        ann.feed(b"SAY unfin")
        assert ann.connection.buffered == len(b"SAY unfin")
        ann.feed(b"ished\n")
        assert ann.lines()[-1] == "SAY ann unfinished"
        assert ann.connection._framer is None and ann.connection.buffered == 0

    def test_bytes_after_quit_are_neither_handled_nor_kept(self) -> None:
        """After QUIT, the rest of the packet (even an unfinished over-long line) and any later
        bytes are dropped: nothing is answered and nothing stays buffered."""
        node = make_node(max_line=64)
        ann = connect(node)
        ann.feed(b"QUIT bye\nPING late\n" + b"x" * 200)
        ann.feed(b"PING later\n")
        assert ann.lines() == ["BYE bye"]
        assert ann.connection.buffered == 0 and ann.connection._framer is None
