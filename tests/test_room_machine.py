"""A hypothesis state machine over sessions and the room: random connects,
NICKs, SAYs, TELLs, QUITs, drops and reactor turns, with the room's promises
checked after every step."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatd import wire
from chatd.errors import ChatError
from chatd.outbox import Outbox
from chatd.room import Room
from chatd.session import Session

NICKS = st.sampled_from(["ann", "Ann", "bob", "BOB", "cy", "dee", "bad nick", "9x"])
TEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"),
                min_size=1, max_size=12)


class Peer:
    """A connection as the machine sees it: its session and what it heard."""

    def __init__(self, room: Room) -> None:
        self.data = bytearray()
        self.open = True
        self.session = Session(room, self.data.extend, self._close)

    def _close(self) -> None:
        self.open = False

    def lines(self) -> list[str]:
        return [line for line in self.data.decode().split("\r\n") if line]


class RoomMachine(RuleBasedStateMachine):
    """The model: who is logged in, and the SAY lines each member is owed."""

    def __init__(self) -> None:
        super().__init__()
        self.turn: list[Callable[[], None]] = []
        self.room = Room(Outbox(schedule=self.turn.append), max_line=64)
        self.peers: list[Peer] = []
        self.owed: dict[Peer, list[str]] = {}   # logged-in peer -> SAY lines owed
        self.heard_at_exit: dict[Peer, int] = {}

    def _end_turn(self) -> None:
        while self.turn:
            self.turn.pop(0)()

    def _live(self) -> list[Peer]:
        return [peer for peer in self.peers if peer.open]

    @rule()
    def connect(self) -> None:
        peer = Peer(self.room)
        self.peers.append(peer)
        peer.session.connected()

    @precondition(lambda self: self._live())
    @rule(data=st.data(), nick=NICKS)
    def nick(self, data: st.DataObject, nick: str) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        before = peer.session.nick
        taken = any(other.session.nick is not None
                    and wire.nick_key(other.session.nick) == wire.nick_key(nick)
                    and other is not peer for other in self.owed)
        peer.session.handle_line(f"NICK {nick}".encode())
        if wire.is_valid_nick(nick) and not taken:
            assert peer.session.nick == nick
            if before is None:
                self.owed[peer] = []
        else:
            assert peer.session.nick == before

    @precondition(lambda self: self._live())
    @rule(data=st.data(), text=TEXTS)
    def say(self, data: st.DataObject, text: str) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.session.handle_line(f"SAY {text}".encode())
        try:
            parsed = wire.parse_client_line(f"SAY {text}".encode())
        except ChatError:
            parsed = None
        if peer in self.owed and parsed is not None:
            assert isinstance(parsed, wire.Say)
            line = wire.format_line(wire.Said(peer.session.nick or "", parsed.text))
            for member in self.owed:
                self.owed[member].append(line)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def quit(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.session.handle_line(b"QUIT bye")
        assert not peer.open
        self._leave(peer)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(self._live()))
        peer.open = False
        peer.session.disconnected()
        self._leave(peer)

    def _leave(self, peer: Peer) -> None:
        self.owed.pop(peer, None)
        self.heard_at_exit[peer] = len(peer.data)

    def _said(self, peer: Peer) -> list[str]:
        return [line for line in peer.lines() if line.startswith("SAY ")]

    @rule()
    def end_turn(self) -> None:
        """At the end of a reactor turn every member has heard all it is owed."""
        self._end_turn()
        for peer, owed in self.owed.items():
            assert self._said(peer) == owed

    @invariant()
    def user_list_is_the_logged_in_sessions(self) -> None:
        assert sorted(self.room.nicks) == sorted(p.session.nick for p in self.owed)  # type: ignore[misc]

    @invariant()
    def members_hear_nothing_but_what_they_are_owed_in_order(self) -> None:
        for peer, owed in self.owed.items():
            heard = self._said(peer)
            assert heard == owed[:len(heard)]

    @invariant()
    def nobody_hears_anything_after_leaving(self) -> None:
        for peer, size in self.heard_at_exit.items():
            assert len(peer.data) == size


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                         deadline=None)
TestRoomMachine = RoomMachine.TestCase
