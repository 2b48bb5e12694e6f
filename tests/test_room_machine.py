"""A hypothesis state machine over connections to a node (``tests/builders.py``):
random connects, NICKs, SAYs, QUITs, drops and reactor turns, through the
session, the room, the bus, the fan-out and the coalescing outbox, with the
room's promises checked after every step, mid-turn and at turn ends."""

from __future__ import annotations

from typing import cast

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from twisted.internet.testing import MemoryReactorClock

from chatd import wire
from chatd.errors import ChatError
from chatd.nicks import is_valid_nick, nick_key
from tests.builders import Peer, make_node

NICKS = st.sampled_from(["ann", "Ann", "bob", "BOB", "cy", "dee", "bad nick", "9x"])
TEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"),
                min_size=1, max_size=12)
# Loopback is exempt from the per-address cap, so the machine may open many.
HOST = "127.0.0.1"


def heard(peer: Peer) -> bytes:
    """Everything written to the peer so far, without ending the turn."""
    return b"".join(peer.link.writes)


def said(peer: Peer) -> list[str]:
    """The SAY lines the peer has read so far, mid-turn included."""
    return [line for line in heard(peer).decode().split("\r\n") if line.startswith("SAY ")]


class RoomMachine(RuleBasedStateMachine):
    """The model: who is logged in, and the SAY lines each member is owed."""

    def __init__(self) -> None:
        super().__init__()
        self.node = make_node(max_line=64)
        self.clock = cast(MemoryReactorClock, self.node.clock)
        self.peers: list[Peer] = []
        self.owed: dict[Peer, list[str]] = {}   # logged-in peer -> SAY lines owed
        self.heard_at_exit: dict[Peer, int] = {}

    def _live(self) -> list[Peer]:
        return [peer for peer in self.peers if peer not in self.heard_at_exit]

    @rule()
    def connect(self) -> None:
        self.peers.append(Peer(self.node, HOST))

    @precondition(lambda self: self._live())
    @rule(data=st.data(), nick=NICKS)
    def nick(self, data: st.DataObject, nick: str) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        session = peer.connection.session
        before = session.nick
        taken = any(other.connection.session.nick is not None
                    and nick_key(other.connection.session.nick) == nick_key(nick)
                    and other is not peer for other in self.owed)
        peer.send(f"NICK {nick}")
        if is_valid_nick(nick) and not taken:
            assert session.nick == nick
            if before is None:
                self.owed[peer] = []
        else:
            assert session.nick == before

    @precondition(lambda self: self._live())
    @rule(data=st.data(), text=TEXTS)
    def say(self, data: st.DataObject, text: str) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.send(f"SAY {text}")
        try:
            parsed = wire.parse_client_line(f"SAY {text}".encode())
        except ChatError:
            parsed = None
        if peer in self.owed and parsed is not None:
            assert isinstance(parsed, wire.Say)
            line = wire.format_line(wire.Said(peer.connection.session.nick or "", parsed.text))
            for member in self.owed:
                self.owed[member].append(line)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def quit(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.send("QUIT bye")
        assert peer.connection.session.closed and "close" in peer.link.calls
        self._leave(peer)
        peer.lose()  # the transport reports the close it was asked for

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.lose()
        self._leave(peer)

    def _leave(self, peer: Peer) -> None:
        self.owed.pop(peer, None)
        self.heard_at_exit[peer] = len(heard(peer))

    @rule()
    def end_turn(self) -> None:
        """At the end of a reactor turn every member has heard all it is owed."""
        self.clock.advance(0)
        for peer, owed in self.owed.items():
            assert said(peer) == owed

    @invariant()
    def user_list_is_the_logged_in_sessions(self) -> None:
        assert sorted(self.node.room.nicks) == sorted(
            peer.connection.session.nick or "" for peer in self.owed)

    @invariant()
    def members_hear_nothing_but_what_they_are_owed_in_order(self) -> None:
        for peer, owed in self.owed.items():
            so_far = said(peer)
            assert so_far == owed[:len(so_far)]

    @invariant()
    def nobody_hears_anything_after_leaving(self) -> None:
        for peer, size in self.heard_at_exit.items():
            assert len(heard(peer)) == size

    @invariant()
    def every_write_is_whole_lines(self) -> None:
        for peer in self.peers:
            assert all(data.endswith(b"\r\n") for data in peer.link.writes)


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                         deadline=None)
TestRoomMachine = RoomMachine.TestCase
