"""The room: who is in it, and who hears what, with recording fake members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatd import wire
from chatd.errors import ChatError, ErrorCode
from chatd.outbox import Outbox
from chatd.room import Room
from tests.fakes import Recorder


class FakeMember(Recorder):
    """A connection as the room sees it, recording every byte written to it."""

    def __init__(self, name: str = "member") -> None:
        super().__init__()
        self.name = name
        self.nick: str | None = None

    def __repr__(self) -> str:
        return f"FakeMember({self.name!r}, nick={self.nick!r})"


class RecordingLog:
    """The room's logger, recording each event's format and fields."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, format: str, **kwargs: Any) -> None:
        self.events.append((format, kwargs))


class ManualScheduler:
    """``callLater(0, fn)`` stand-in: callbacks run only on ``run_turn``."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, fn: Callable[[], None]) -> None:
        self.pending.append(fn)

    def run_turn(self) -> None:
        while self.pending:
            self.pending.pop(0)()


def make_room(**kwargs: Any) -> Room:
    """A room with an immediate outbox and sane defaults."""
    return Room(**kwargs)


def connect(room: Room, name: str = "conn") -> FakeMember:
    """A new connection in the room, not logged in."""
    member = FakeMember(name)
    room.connect(member)
    return member


def login(room: Room, nick: str) -> FakeMember:
    """A connection logged in as ``nick``, with its login output cleared."""
    member = connect(room, nick)
    room.login(member, nick)
    member.clear()
    return member


def clear(*members: FakeMember) -> None:
    for member in members:
        member.clear()


class TestLogin:
    """NICK for the first time."""

    def test_first_login_order(self) -> None:
        """The first user gets OK NICK, their own JOIN, then USERS and OK WHO."""
        room = make_room()
        ann = connect(room, "ann")
        room.login(ann, "ann")
        assert ann.lines == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]
        assert ann.nick == "ann"

    def test_second_login_is_announced_to_everyone(self) -> None:
        """A later login sends JOIN to everyone already in, and the newcomer sees the whole list."""
        room = make_room()
        ann = login(room, "ann")
        bob = connect(room, "bob")
        room.login(bob, "bob")
        assert bob.lines == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.lines == ["JOIN bob"]

    def test_connection_not_logged_in_does_not_hear_join(self) -> None:
        """A connection that has not logged in hears no JOIN."""
        room = make_room()
        lurker = connect(room, "lurker")
        login(room, "ann")
        assert lurker.lines == []

    def test_login_order_holds_with_coalescing(self) -> None:
        """With a per-turn outbox the login lines come out in the same order."""
        scheduler = ManualScheduler()
        room = make_room(outbox=Outbox(schedule=scheduler))
        ann = connect(room, "ann")
        room.login(ann, "ann")
        bob = connect(room, "bob")
        room.login(bob, "bob")
        scheduler.run_turn()
        assert ann.lines == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1", "JOIN bob"]
        assert bob.lines == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]

    @pytest.mark.parametrize("taken", ["ann", "ANN", "aNn"])
    def test_nick_taken_ignoring_case(self, taken: str) -> None:
        """Logging in with a nick in use, in any case, raises nick-taken and changes nothing."""
        room = make_room()
        ann = login(room, "ann")
        other = connect(room, "other")
        with pytest.raises(ChatError) as info:
            room.login(other, taken)
        assert info.value.code == ErrorCode.NICK_TAKEN
        assert other.nick is None
        assert room.nicks == ["ann"]
        assert room.find("ann") is ann
        assert (ann.lines, other.lines) == ([], [])

    def test_find_ignores_case(self) -> None:
        """find locates a member by nick in any case."""
        room = make_room()
        ann = login(room, "Ann")
        assert room.find("aNN") is ann
        assert room.find("bob") is None


class TestRename:
    """NICK once logged in."""

    def test_rename_tells_everyone(self) -> None:
        """A rename sends OK NICK to the sender, then RENAME to everyone including them."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.rename(ann, "anna")
        assert ann.lines == ["OK NICK anna", "RENAME ann anna"]
        assert bob.lines == ["RENAME ann anna"]
        assert room.find("anna") is ann and room.find("ann") is None
        assert ann.nick == "anna"

    def test_old_nick_is_free_after_rename(self) -> None:
        """After a rename someone else may log in with the old nick."""
        room = make_room()
        ann = login(room, "ann")
        room.rename(ann, "anna")
        cy = connect(room, "cy")
        room.login(cy, "ann")
        assert sorted(room.nicks) == ["ann", "anna"]

    def test_case_only_change_is_a_rename(self) -> None:
        """Changing only the case of one's own nick is announced as a rename."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.rename(ann, "Ann")
        assert ann.lines == ["OK NICK Ann", "RENAME ann Ann"]
        assert bob.lines == ["RENAME ann Ann"]
        assert room.find("ANN") is ann and ann.nick == "Ann"

    def test_same_nick_is_just_ok(self) -> None:
        """Renaming to the very same nick answers OK NICK and tells nobody."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.rename(ann, "ann")
        assert ann.lines == ["OK NICK ann"]
        assert bob.lines == []

    @pytest.mark.parametrize("taken", ["bob", "BOB"])
    def test_rename_to_taken_nick_is_refused(self, taken: str) -> None:
        """Renaming to another member's nick, in any case, raises nick-taken and sends nothing."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        with pytest.raises(ChatError) as info:
            room.rename(ann, taken)
        assert info.value.code == ErrorCode.NICK_TAKEN
        assert ann.nick == "ann" and room.find("bob") is bob
        assert (ann.lines, bob.lines) == ([], [])


class TestSay:
    """SAY reaches everyone logged in."""

    def test_say_reaches_everyone_logged_in_including_sender(self) -> None:
        """Every logged-in member, the sender too, gets SAY <nick> <text>."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.say(bob, "hi  all")
        assert ann.lines == ["SAY bob hi  all"]
        assert bob.lines == ["SAY bob hi  all"]

    def test_say_skips_connections_not_logged_in(self) -> None:
        """A connection that has not logged in does not hear SAY."""
        room = make_room()
        lurker = connect(room, "lurker")
        ann = login(room, "ann")
        room.say(ann, "hi")
        assert lurker.lines == []

    def test_broadcast_bytes_are_encoded_once(self) -> None:
        """All members are written the very same bytes object for one SAY."""
        room = make_room()
        members = [login(room, nick) for nick in ("ann", "bob", "cy")]
        clear(*members)
        room.say(members[0], "hi")
        first = members[0].writes[0]
        assert all(member.writes[0] is first for member in members)


class TestWall:
    """WALL reaches every connection."""

    def test_wall_reaches_connections_not_logged_in(self) -> None:
        """Logged-in members and bare connections all get WALL <nick> <text>."""
        room = make_room()
        lurker = connect(room, "lurker")
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.wall("ann", "fire drill")
        for member in (lurker, ann, bob):
            assert member.lines == ["WALL ann fire drill"]

    def test_wall_comes_after_pending_broadcasts(self) -> None:
        """A WALL in the same turn as a SAY reaches members after that SAY."""
        scheduler = ManualScheduler()
        room = make_room(outbox=Outbox(schedule=scheduler))
        lurker = connect(room, "lurker")
        ann = login(room, "ann")
        scheduler.run_turn()
        clear(ann)
        room.say(ann, "first")
        room.wall("*", "second")
        scheduler.run_turn()
        assert ann.lines == ["SAY ann first", "WALL * second"]
        assert lurker.lines == ["WALL * second"]

    def test_disconnected_connection_gets_no_wall(self) -> None:
        """A connection that has closed is not written a WALL."""
        room = make_room()
        gone = connect(room, "gone")
        room.disconnect(gone, "connection lost")
        room.wall("*", "hello")
        assert gone.lines == []


class TestTell:
    """TELL reaches one user."""

    def test_tell_reaches_target_and_confirms(self) -> None:
        """The target gets TELL <sender> <text>; the sender gets OK TELL <nick>; nobody else hears."""
        room = make_room()
        ann, bob, cy = login(room, "ann"), login(room, "bob"), login(room, "cy")
        clear(ann, bob)
        room.tell(ann, "bob", "psst")
        assert bob.lines == ["TELL ann psst"]
        assert ann.lines == ["OK TELL bob"]
        assert cy.lines == []

    def test_tell_looks_up_nick_ignoring_case(self) -> None:
        """TELL finds its target in any case and confirms with the target's own spelling."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "Bob")
        clear(ann)
        room.tell(ann, "bOB", "psst")
        assert bob.lines == ["TELL ann psst"]
        assert ann.lines == ["OK TELL Bob"]

    def test_tell_to_unknown_user_is_refused(self) -> None:
        """TELL to nobody raises no-such-user and sends nothing."""
        room = make_room()
        ann = login(room, "ann")
        with pytest.raises(ChatError) as info:
            room.tell(ann, "ghost", "boo")
        assert info.value.code == ErrorCode.NO_SUCH_USER
        assert ann.lines == []

    def test_tell_to_user_who_left_is_refused(self) -> None:
        """TELL to a user who has disconnected raises no-such-user."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        room.disconnect(bob, "gone")
        with pytest.raises(ChatError) as info:
            room.tell(ann, "bob", "hi")
        assert info.value.code == ErrorCode.NO_SUCH_USER


class TestWho:
    """The WHO reply."""

    def test_who_in_empty_room_is_just_ok(self) -> None:
        """WHO with nobody logged in answers OK WHO 0 and no USERS line."""
        room = make_room()
        lurker = connect(room)
        room.who(lurker)
        assert lurker.lines == ["OK WHO 0"]

    def test_who_lists_nicks_in_login_order(self) -> None:
        """WHO lists every logged-in nick in one line when they fit."""
        room = make_room()
        for nick in ("ann", "bob", "cy"):
            login(room, nick)
        lurker = connect(room)
        room.who(lurker)
        assert lurker.lines == ["USERS ann bob cy", "OK WHO 3"]

    def test_who_chunks_many_users_within_small_max_line(self) -> None:
        """With many users and a small max_line, every USERS line fits and all nicks are listed."""
        room = make_room(max_line=40)
        nicks = [f"user{i:03d}" for i in range(60)]
        for nick in nicks:
            login(room, nick)
        lurker = connect(room)
        room.who(lurker)
        *users, done = lurker.lines
        assert done == "OK WHO 60"
        assert len(users) > 1
        assert all(line.startswith("USERS ") and len(line) + 2 <= 40 for line in users)
        listed = [nick for line in users for nick in line.split(" ")[1:]]
        assert listed == nicks


class TestDisconnect:
    """Connections closing."""

    def test_disconnect_sends_part_to_others(self) -> None:
        """A logged-in member's disconnect sends PART <nick> <reason> to everyone else."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.disconnect(bob, "connection lost")
        assert ann.lines == ["PART bob connection lost"]
        assert bob.lines == []
        assert room.nicks == ["ann"] and len(room) == 1

    def test_disconnect_is_idempotent(self) -> None:
        """Disconnecting twice sends PART once."""
        room = make_room()
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        room.disconnect(bob, "first")
        room.disconnect(bob, "second")
        assert ann.lines == ["PART bob first"]

    def test_disconnect_not_logged_in_is_silent(self) -> None:
        """A connection that never logged in leaves without a PART."""
        room = make_room()
        ann = login(room, "ann")
        lurker = connect(room)
        room.disconnect(lurker, "connection lost")
        assert ann.lines == []
        assert lurker not in room.connections

    def test_stale_disconnect_does_not_evict_new_holder_of_nick(self) -> None:
        """A late second disconnect of a departed member leaves a newcomer with the same nick in."""
        room = make_room()
        old = login(room, "ann")
        room.disconnect(old, "gone")
        new = login(room, "ann")
        room.disconnect(old, "again")
        assert room.find("ann") is new
        assert new.lines == []

    def test_nick_is_free_after_disconnect(self) -> None:
        """Once a member has left, their nick can be taken again."""
        room = make_room()
        room.disconnect(login(room, "ann"), "gone")
        login(room, "ANN")
        assert room.nicks == ["ANN"]


class TestLogging:
    """What the room logs."""

    def test_messages_are_not_logged_by_default(self) -> None:
        """Without log_messages, what users say and tell is not logged."""
        log = RecordingLog()
        room = make_room(log=log)
        ann, bob = login(room, "ann"), login(room, "bob")
        room.say(ann, "secret plans")
        room.tell(ann, "bob", "more secrets")
        room.wall("ann", "wall secret")
        assert not any("secret" in repr(event) for event in log.events)

    def test_messages_are_logged_when_asked(self) -> None:
        """With log_messages, SAY is logged with its nick and text."""
        log = RecordingLog()
        room = make_room(log=log, log_messages=True)
        ann = login(room, "ann")
        room.say(ann, "hello")
        assert ("<{nick}> {text}", {"nick": "ann", "text": "hello"}) in log.events
