"""The room's rules, as the whole ordered list of what happened: a recording
audience (who hears which event) and recording members (what the room
answered them) share one list, over a real ``LocalBus`` on a fake clock.

The bytes each connection reads, and their order across connections, are
the session's and the fan-out's: see ``test_session.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from chatd.bus import LocalBus
from chatd.errors import ChatError, ErrorCode
from chatd.events import Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.history import History
from chatd.room import CONNECTION_LOST, Room
from tests.builders import RecordingLog

Record = tuple[object, ...]


class RecordingAudience:
    """The fan-out as the room sees it, recording who is told what (events, not bytes)."""

    def __init__(self, events: list[Record]) -> None:
        self.events = events

    def add(self, member: Any) -> None:
        self.events.append(("add", member))

    def remove(self, member: Any) -> None:
        self.events.append(("remove", member))

    def broadcast(self, stamped: Stamped, speaker: Any = None) -> None:
        self.events.append(("broadcast", stamped.event))

    def tell(self, member: Any, stamped: Stamped) -> None:
        self.events.append(("tell", member, stamped.event))

    def wall(self, stamped: Stamped) -> None:
        self.events.append(("wall", stamped.event))


@dataclass(eq=False)
class RecordingMember:
    """A session as the room sees it: it takes the nick the room answers with,
    and records each answer."""

    name: str
    events: list[Record]
    nick: str | None = None
    closed: bool = False
    joined: int | None = None  # the seq of its own JOIN, once welcomed

    def logged_in(self, nick: str) -> None:
        self.nick = nick
        self.events.append(("logged_in", self, nick))

    def renamed(self, nick: str) -> None:
        self.nick = nick
        self.events.append(("renamed", self, nick))

    def refused(self, error: ChatError) -> None:
        self.events.append(("refused", self, error.code))

    def moved(self, nick: str) -> None:
        self.nick = nick
        self.events.append(("moved", self, nick))

    def welcome(self, nicks: list[str], seq: int) -> None:
        self.joined = seq
        self.events.append(("welcome", self, nicks))

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass
class Rig:
    """A room on a ``LocalBus``, its audience and members recording into ``events``."""

    log_messages: bool = False
    events: list[Record] = field(default_factory=list)
    log: RecordingLog = field(default_factory=RecordingLog)
    bus: LocalBus = field(init=False)
    room: Room = field(init=False)

    def __post_init__(self) -> None:
        self.bus = LocalBus(lambda: 1700000000.0)
        self.room = Room(self.bus, RecordingAudience(self.events), log=self.log,
                         log_messages=self.log_messages)

    def member(self, name: str = "conn") -> RecordingMember:
        """A connection that has not logged in."""
        return RecordingMember(name, self.events)

    def login(self, nick: str) -> RecordingMember:
        """A member logged in as ``nick``, with what that caused cleared."""
        member = self.member(nick)
        self.room.login(member, nick)
        assert member.nick == nick, self.events
        self.events.clear()
        return member

    def take(self) -> list[Record]:
        """Everything recorded since the last take."""
        taken = list(self.events)
        self.events.clear()
        return taken


class TestLogin:
    """NICK for the first time."""

    def test_first_login_order(self) -> None:
        """The member joins the audience, is told it is logged in, everyone hears JOIN,
        and then it is welcomed with the roster."""
        rig = Rig()
        ann = rig.member("ann")
        rig.room.login(ann, "ann")
        assert rig.take() == [("add", ann), ("logged_in", ann, "ann"),
                              ("broadcast", Joined("ann")), ("welcome", ann, ["ann"])]
        assert ann.nick == "ann" and rig.room.nicks == ["ann"]

    def test_second_login_welcomes_with_the_whole_roster(self) -> None:
        """A later login is broadcast, and the newcomer's roster lists everyone in order."""
        rig = Rig()
        rig.login("ann")
        bob = rig.member("bob")
        rig.room.login(bob, "bob")
        assert rig.take() == [("add", bob), ("logged_in", bob, "bob"),
                              ("broadcast", Joined("bob")), ("welcome", bob, ["ann", "bob"])]

    def test_login_while_the_room_is_split_is_told_so_after_the_roster(self) -> None:
        """A bus with a notice (a room on many nodes, cut off from the rest)
        has the newcomer told, as those already here were, after its WHO."""
        rig = Rig()
        rig.bus.notice = "the link is down"  # type: ignore[assignment]  # LocalBus has none
        ann = rig.member("ann")
        rig.room.login(ann, "ann")
        assert rig.take()[-2:] == [("welcome", ann, ["ann"]),
                                   ("tell", ann, Walled("*", "the link is down"))]

    def test_member_not_logged_in_is_not_in_the_audience(self) -> None:
        """A connection that has not logged in is never added to the audience."""
        rig = Rig()
        lurker = rig.member("lurker")
        ann = rig.member("ann")
        rig.room.login(ann, "ann")
        assert all(lurker not in record for record in rig.take())

    @pytest.mark.parametrize("taken", ["ann", "ANN", "aNn"])
    def test_nick_taken_ignoring_case(self, taken: str) -> None:
        """A nick in use, in any case, is refused nick-taken and changes nothing else."""
        rig = Rig()
        ann = rig.login("ann")
        other = rig.member("other")
        rig.room.login(other, taken)
        assert rig.take() == [("refused", other, ErrorCode.NICK_TAKEN)]
        assert other.nick is None
        assert rig.room.nicks == ["ann"] and rig.room.find("ann") is ann

    def test_find_ignores_case(self) -> None:
        """find locates a member by nick in any case."""
        rig = Rig()
        ann = rig.login("Ann")
        assert rig.room.find("aNN") is ann
        assert rig.room.find("bob") is None

    def test_nick_claimed_on_another_node_is_taken(self) -> None:
        """A nick the bus gave to someone else (another node) is refused here too."""
        rig = Rig()
        rig.bus.claim("zed", lambda ok: None)
        rig.take()
        other = rig.member("other")
        rig.room.login(other, "Zed")
        assert rig.take() == [("refused", other, ErrorCode.NICK_TAKEN)]
        assert rig.room.nicks == ["zed"] and rig.room.find("zed") is None

    def test_member_closed_before_its_claim_answers_gives_the_nick_back(self) -> None:
        """A member closed by the time its claim succeeds is not added; the room hears
        its JOIN and then its PART, and the nick is free again."""
        rig = Rig()
        gone = rig.member("gone")
        gone.closed = True
        rig.room.login(gone, "ann")
        assert rig.take() == [("broadcast", Joined("ann")),
                              ("broadcast", Parted("ann", CONNECTION_LOST))]
        assert rig.room.nicks == [] and rig.bus.nicks == []


class TestRename:
    """NICK once logged in."""

    def test_rename_tells_everyone(self) -> None:
        """A rename answers the member, then everyone hears RENAME; find follows the nick."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.room.rename(ann, "anna")
        assert rig.take() == [("renamed", ann, "anna"), ("broadcast", Renamed("ann", "anna"))]
        assert rig.room.find("anna") is ann and rig.room.find("ann") is None
        assert ann.nick == "anna"

    def test_rename_moves_the_nick_last(self) -> None:
        """After a rename the roster lists the new nick where a new login would be."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.room.rename(ann, "anna")
        assert rig.room.nicks == ["bob", "anna"]

    def test_old_nick_is_free_after_rename(self) -> None:
        """After a rename someone else may log in with the old nick."""
        rig = Rig()
        ann = rig.login("ann")
        rig.room.rename(ann, "anna")
        cy = rig.login("ann")
        assert rig.room.nicks == ["anna", "ann"]
        assert rig.room.find("ann") is cy and rig.room.find("anna") is ann

    def test_case_only_change_is_a_rename(self) -> None:
        """Changing only the case of one's own nick is announced as a rename."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.room.rename(ann, "Ann")
        assert rig.take() == [("renamed", ann, "Ann"), ("broadcast", Renamed("ann", "Ann"))]
        assert rig.room.find("ANN") is ann and ann.nick == "Ann"

    def test_same_nick_is_just_ok(self) -> None:
        """Renaming to the very same nick answers the member and tells nobody."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.room.rename(ann, "ann")
        assert rig.take() == [("renamed", ann, "ann")]

    @pytest.mark.parametrize("taken", ["bob", "BOB"])
    def test_rename_to_taken_nick_is_refused(self, taken: str) -> None:
        """Renaming onto another member's nick, in any case, is refused and tells nobody."""
        rig = Rig()
        ann, bob = rig.login("ann"), rig.login("bob")
        rig.room.rename(ann, taken)
        assert rig.take() == [("refused", ann, ErrorCode.NICK_TAKEN)]
        assert ann.nick == "ann" and rig.room.find("bob") is bob
        assert rig.room.nicks == ["ann", "bob"]


class TestSay:
    """SAY is one broadcast."""

    def test_say_is_broadcast(self) -> None:
        """A SAY is broadcast once, as the sender's nick and text."""
        rig = Rig()
        rig.login("ann")
        rig.login("bob")
        rig.room.say("bob", "hi  all")
        assert rig.take() == [("broadcast", Said("bob", "hi  all"))]


class TestHistoryCutOff:
    """Protocol 1.1: a member's HISTORY cut-off is the seq of its own JOIN."""

    def test_welcome_carries_the_seq_of_the_members_own_join(self) -> None:
        """The room welcomes a member with the seq the bus stamped on its JOIN."""
        rig = Rig()
        stamps: list[Stamped] = []
        rig.bus.subscribe(stamps.append)
        ann = rig.login("ann")
        rig.room.say("ann", "before bob")
        bob = rig.login("bob")
        joins = {s.event.nick: s.seq for s in stamps if isinstance(s.event, Joined)}
        assert ann.joined == joins["ann"] and bob.joined == joins["bob"]
        said_seq = next(s.seq for s in stamps if isinstance(s.event, Said))
        assert ann.joined < said_seq < bob.joined

    def test_rename_does_not_welcome_again(self) -> None:
        """A rename is answered with renamed only: the cut-off does not move."""
        rig = Rig()
        ann = rig.login("ann")
        joined = ann.joined
        rig.room.say("ann", "hi")
        rig.room.rename(ann, "anna")
        assert [record[0] for record in rig.take()] == ["broadcast", "renamed", "broadcast"]
        assert ann.joined == joined

    def test_room_offers_the_history_it_was_given(self) -> None:
        """The room keeps the history it was built with (None: history off) for sessions."""
        history = History(5, 1000)
        room = Room(LocalBus(), RecordingAudience([]), history=history)
        assert room.history is history
        assert Rig().room.history is None


class TestWall:
    """WALL goes to every connection."""

    def test_wall_is_walled(self) -> None:
        """A WALL is handed to the audience as a wall, not a broadcast."""
        rig = Rig()
        rig.login("ann")
        rig.room.wall("ann", "fire drill")
        assert rig.take() == [("wall", Walled("ann", "fire drill"))]

    def test_server_wall_needs_nobody_logged_in(self) -> None:
        """The server's WALL (nick ``*``) goes out in an empty room."""
        rig = Rig()
        rig.room.wall("*", "server shutting down")
        assert rig.take() == [("wall", Walled("*", "server shutting down"))]


class TestTell:
    """TELL reaches one user."""

    def test_tell_reaches_only_the_target(self) -> None:
        """A TELL is told to its target alone, and names the target for OK TELL."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("bob")
        rig.login("cy")
        assert rig.room.tell("ann", "bob", "psst") == "bob"
        assert rig.take() == [("tell", bob, Told("ann", "bob", "psst"))]

    def test_tell_looks_up_nick_ignoring_case(self) -> None:
        """TELL finds its target in any case and names it with the target's own spelling."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("Bob")
        assert rig.room.tell("ann", "bOB", "psst") == "Bob"
        assert rig.take() == [("tell", bob, Told("ann", "Bob", "psst"))]

    def test_tell_to_unknown_user_is_refused(self) -> None:
        """TELL to nobody raises no-such-user and tells nobody."""
        rig = Rig()
        rig.login("ann")
        with pytest.raises(ChatError) as info:
            rig.room.tell("ann", "ghost", "boo")
        assert info.value.code == ErrorCode.NO_SUCH_USER
        assert info.value.text == "nobody called ghost is here"
        assert rig.take() == []

    def test_tell_to_user_who_left_is_refused(self) -> None:
        """TELL to a user who has left raises no-such-user."""
        rig = Rig()
        rig.login("ann")
        rig.room.leave(rig.login("bob"), "gone")
        with pytest.raises(ChatError) as info:
            rig.room.tell("ann", "bob", "hi")
        assert info.value.code == ErrorCode.NO_SUCH_USER

    def test_tell_to_user_on_another_node_is_told_nobody_here(self) -> None:
        """A TELL to a nick the bus knows but no member here holds is accepted and
        handed to no local member."""
        rig = Rig()
        rig.login("ann")
        rig.bus.claim("zed", lambda ok: None)
        rig.take()
        assert rig.room.tell("ann", "ZED", "hi") == "zed"
        assert rig.take() == []


class TestWho:
    """The roster a WHO reply lists."""

    def test_empty_room_lists_nobody(self) -> None:
        """With nobody logged in the roster is empty."""
        rig = Rig()
        rig.member("lurker")
        assert rig.room.nicks == [] and len(rig.room) == 0

    def test_nicks_in_login_order(self) -> None:
        """The roster lists every logged-in nick in the order they logged in."""
        rig = Rig()
        for nick in ("ann", "bob", "cy"):
            rig.login(nick)
        assert rig.room.nicks == ["ann", "bob", "cy"] and len(rig.room) == 3


class TestLeave:
    """Connections closing."""

    def test_leave_tells_the_others(self) -> None:
        """A logged-in member leaves the audience, then everyone left hears PART with the reason."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("bob")
        rig.room.leave(bob, "connection lost")
        assert rig.take() == [("remove", bob), ("broadcast", Parted("bob", "connection lost"))]
        assert rig.room.nicks == ["ann"] and len(rig.room) == 1

    def test_leave_twice_is_harmless(self) -> None:
        """Leaving twice sends PART once, with the first reason."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("bob")
        rig.room.leave(bob, "first")
        rig.room.leave(bob, "second")
        assert rig.take() == [("remove", bob), ("broadcast", Parted("bob", "first"))]

    def test_leave_not_logged_in_is_silent(self) -> None:
        """A connection that never logged in leaves without a PART."""
        rig = Rig()
        rig.login("ann")
        rig.room.leave(rig.member("lurker"), CONNECTION_LOST)
        assert rig.take() == []

    def test_stale_leave_does_not_evict_new_holder_of_nick(self) -> None:
        """A late second leave of a departed member leaves a newcomer with the same nick in."""
        rig = Rig()
        old = rig.login("ann")
        rig.room.leave(old, "gone")
        new = rig.login("ann")
        rig.room.leave(old, "again")
        assert rig.take() == []
        assert rig.room.find("ann") is new and rig.room.nicks == ["ann"]

    def test_nick_is_free_after_leave(self) -> None:
        """Once a member has left, their nick can be taken again, in any case."""
        rig = Rig()
        rig.room.leave(rig.login("ann"), "gone")
        rig.login("ANN")
        assert rig.room.nicks == ["ANN"] and rig.bus.nicks == ["ANN"]


class TestLogging:
    """What the room logs."""

    def test_messages_are_not_logged_by_default(self) -> None:
        """Without log_messages, logins, WALLs and leaves are logged, but no text users wrote."""
        rig = Rig()
        ann = rig.login("ann")
        rig.login("bob")
        rig.room.say("ann", "secret plans")
        rig.room.tell("ann", "bob", "more secrets")
        rig.room.wall("ann", "wall secret")
        rig.room.rename(ann, "anna")
        rig.room.leave(ann, "secret reason")
        assert rig.log.events == [
            ("{nick} logged in", {"nick": "ann"}),
            ("{nick} logged in", {"nick": "bob"}),
            ("WALL from {nick}", {"nick": "ann"}),
            ("{old} is now {new}", {"old": "ann", "new": "anna"}),
            ("{nick} left", {"nick": "anna"}),
        ]

    def test_messages_are_logged_when_asked(self) -> None:
        """With log_messages, SAY, TELL, WALL and a leave's reason are logged with their text."""
        rig = Rig(log_messages=True)
        ann = rig.login("ann")
        rig.login("Bob")
        rig.room.say("ann", "hello")
        rig.room.tell("ann", "bob", "psst")
        rig.room.wall("ann", "fire")
        rig.room.leave(ann, "off to lunch")
        assert rig.log.events == [
            ("{nick} logged in", {"nick": "ann"}),
            ("{nick} logged in", {"nick": "Bob"}),
            ("<{nick}> {text}", {"nick": "ann", "text": "hello"}),
            ("<{nick}> to {to}: {text}", {"nick": "ann", "to": "Bob", "text": "psst"}),
            ("WALL from {nick}: {text}", {"nick": "ann", "text": "fire"}),
            ("{nick} left ({reason})", {"nick": "ann", "reason": "off to lunch"}),
        ]

    def test_refusals_are_not_logged(self) -> None:
        """A refused login or rename logs nothing."""
        rig = Rig()
        ann = rig.login("ann")
        rig.login("bob")
        rig.log.events.clear()
        rig.room.login(rig.member(), "ANN")
        rig.room.rename(ann, "Bob")
        assert rig.log.events == []
