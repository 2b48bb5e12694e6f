"""The room's bus on Redis, pure: no sockets and no Redis.

Each test drives a ``RedisBus`` as ``chatd.transports.redis`` does, with a
recording fake playing Redis: it takes the ops from ``bus.take()``, decides
the replies (``bus.replied``) and writes the stream's entries
(``bus.heard``), shaped as ``chatd/redis_functions.lua`` writes them.  What
the bus delivers, what it answers and which ``done`` it calls go into one
list, and the tests assert the whole ordered list.

The last class joins two buses and two rooms to one tiny model of the Lua
functions, to show that both nodes' rooms hear one order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chatd.errors import ChatError, ErrorCode
from chatd.events import Event, Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.nicks import SERVER_NICK
from chatd.redisbus import MISSED, NODE_DOWN, SPLIT, WHOLE, Entry, Op, RedisBus, entry_seq
from chatd.room import Room
from chatd.session import Session
from tests.test_bus import FakeClock

Record = tuple[object, ...]

NODE = "1000007"  # this bus's node id
OTHER = "1000009"  # another node's
EPOCH = "1699999990000-1000001"
T0 = 1_700_000_000_000  # the snapshot's entry id, in Redis's ms
# The node's own clock, half a second ahead of Redis's: events only this
# node's users hear (the split's WALLs) are stamped with it.
LOCAL_MS = T0 + 500


def stamp(entry_id: str) -> tuple[int, float]:
    """The seq and time an entry's event must be delivered with."""
    seq, millis = entry_seq(entry_id)
    return seq, millis / 1000


class FakeRedis:
    """Plays Redis for one bus: what it was sent, its replies, and stream entries
    with ids that grow by a millisecond each."""

    def __init__(self, bus: RedisBus, ms: int = T0) -> None:
        self.bus = bus
        self.ms = ms

    def sent(self) -> list[tuple[object, ...]]:
        """The ops the edge would send now, as (op number, function, *args)."""
        return [(op.number, op.function, *op.args) for op in self.bus.take()]

    def answer(self, *results: object) -> None:
        """The replies to the oldest ops in flight."""
        self.bus.replied(list(results))

    def entry(self, t: str, *, o: str = OTHER, ms: int | None = None, **fields: object) -> Entry:
        """The next entry of the stream (``ms`` to give its time)."""
        self.ms = self.ms + 1 if ms is None else ms
        return f"{self.ms}-0", {"t": t, "o": o, **{k: str(v) for k, v in fields.items()}}

    def hear(self, *entries: Entry) -> None:
        self.bus.heard(list(entries))


@dataclass
class Rig:
    """A registered bus on a fake clock, recording into ``records`` what it
    delivered (``event``), answered (``answer``) and called (``done``)."""

    roster: Iterable[str] = ()
    records: list[Record] = field(default_factory=list)
    heard: list[Stamped] = field(default_factory=list)
    kicks: int = 0
    clock: FakeClock = field(default_factory=lambda: FakeClock(LOCAL_MS / 1000))
    bus: RedisBus = field(init=False)
    redis: FakeRedis = field(init=False)

    def __post_init__(self) -> None:
        self.bus = RedisBus(maxlen=1000, kick=self._kick, clock=self.clock)
        self.bus.subscribe(self._hear)
        self.redis = FakeRedis(self.bus)
        self.bus.registered(NODE, EPOCH, f"{T0}-0", list(self.roster))
        self.take()

    def _kick(self) -> None:
        self.kicks += 1

    def _hear(self, stamped: Stamped) -> None:
        self.heard.append(stamped)
        self.records.append(("event", stamped.event))

    def claim(self, nick: str) -> None:
        self.bus.claim(nick, lambda ok: self.records.append(("answer", nick, ok)))

    def rename(self, old: str, new: str) -> None:
        self.bus.rename(old, new, lambda ok: self.records.append(("answer", new, ok)))

    def say(self, nick: str, text: str) -> None:
        self.bus.publish(Said(nick, text), lambda: self.records.append(("done", text)))

    def ours(self, nick: str) -> Entry:
        """A user of this node logged in (claimed, answered, its JOIN read);
        the JOIN entry."""
        self.claim(nick)
        (number, *_), = self.redis.sent()
        self.redis.answer("ok")
        joined = self.redis.entry("J", n=nick, o=NODE, c=number)
        self.redis.hear(joined)
        self.take()
        return joined

    def take(self) -> list[Record]:
        """Everything recorded since the last take."""
        taken = list(self.records)
        self.records.clear()
        self.heard.clear()
        return taken


def split() -> Walled:
    return Walled(SERVER_NICK, SPLIT)


class TestRegistration:
    """The snapshot a registration brings: the roster, then what changed."""

    def test_first_registration_delivers_the_roster_as_joins(self) -> None:
        """The first snapshot's nicks are delivered as Joined, in its order, stamped no
        later than the snapshot's entry; the bus is then up."""
        bus = RedisBus(maxlen=1000, clock=FakeClock(LOCAL_MS / 1000))
        heard: list[Stamped] = []
        bus.subscribe(heard.append)
        bus.registered(NODE, EPOCH, f"{T0}-3", ["ann", "Bob"])
        assert [s.event for s in heard] == [Joined("ann"), Joined("Bob")]
        assert all(s.seq <= entry_seq(f"{T0}-3")[0] and s.time == T0 / 1000 for s in heard)
        assert bus.nicks == ["ann", "Bob"] and bus.up and bus.last_id == f"{T0}-3"

    def test_ops_made_before_registering_go_once_registered(self) -> None:
        """A claim made before the first registration waits, and goes with the node's id."""
        kicks: list[None] = []
        bus = RedisBus(maxlen=1000, kick=lambda: kicks.append(None))
        bus.claim("ann", lambda ok: None)
        bus.registered(NODE, EPOCH, "0-0", [])
        (op,) = bus.take()
        assert bus.command(op) == ("1", "chatd:", "1000", NODE, "1", "ann", "ann")
        assert kicks

    def test_later_registration_tells_only_the_differences(self) -> None:
        """A registration after a split delivers PART node down for who is gone and JOIN
        for who is new; our own users are neither parted nor joined."""
        rig = Rig(roster=["ann", "bob"])
        rig.ours("cy")
        rig.bus.went_down()
        assert rig.take() == [("event", split())]
        rig.bus.registered("1000012", EPOCH, f"{T0 + 100}-0", ["bob", "dan"])
        assert rig.take() == [("event", Parted("ann", NODE_DOWN)), ("event", Joined("dan"))]
        assert rig.bus.nicks == ["bob", "cy", "dan"]
        assert not rig.bus.up

    def test_later_registration_hides_another_nodes_user_holding_our_nick(self) -> None:
        """A nick of ours that the new snapshot shows held elsewhere is not joined: the
        burst settles it."""
        rig = Rig(roster=["bob"])
        rig.ours("cy")
        rig.bus.went_down()
        rig.take()
        rig.bus.registered("1000012", EPOCH, f"{T0 + 100}-0", ["bob", "CY"])
        assert rig.take() == []
        assert rig.bus.nicks == ["bob", "cy"]


class TestClaim:
    """Logging in: answered by the stream, not by the function's reply."""

    def test_claim_is_answered_true_when_its_join_is_read(self) -> None:
        """A claim's "ok" tells nobody anything; reading its JOIN answers True and then
        delivers Joined."""
        rig = Rig(roster=["bob"])
        rig.claim("Ann")
        assert rig.redis.sent() == [(1, "chatd_claim", "Ann", "ann")]
        rig.redis.answer("ok")
        assert rig.take() == []
        rig.redis.hear(rig.redis.entry("J", n="Ann", o=NODE, c=1))
        assert rig.take() == [("answer", "Ann", True), ("event", Joined("Ann"))]
        assert rig.bus.nicks == ["bob", "Ann"]

    def test_join_read_before_the_reply_answers_once(self) -> None:
        """The reader may be ahead of the writer: the JOIN answers the claim, the "ok"
        after it adds nothing."""
        rig = Rig()
        rig.claim("ann")
        rig.redis.sent()
        rig.redis.hear(rig.redis.entry("J", n="ann", o=NODE, c=1))
        rig.redis.answer("ok")
        assert rig.take() == [("answer", "ann", True), ("event", Joined("ann"))]

    def test_taken_is_answered_false_at_once(self) -> None:
        """A claim answered "taken" is refused when the reply comes, and nothing is delivered."""
        rig = Rig(roster=["ann"])
        rig.claim("ANN")
        rig.redis.sent()
        rig.redis.answer("taken")
        assert rig.take() == [("answer", "ANN", False)]
        assert rig.bus.nicks == ["ann"]

    def test_rename_is_answered_when_its_rename_is_read(self) -> None:
        """A rename of ours goes as chatd_rename and is answered True just before its
        Renamed is delivered."""
        rig = Rig()
        rig.ours("ann")
        rig.rename("ann", "anna")
        assert rig.redis.sent() == [(2, "chatd_rename", "ann", "ann", "anna", "anna")]
        rig.redis.answer("ok")
        rig.redis.hear(rig.redis.entry("R", n="ann", m="anna", o=NODE, c=2))
        assert rig.take() == [("answer", "anna", True), ("event", Renamed("ann", "anna"))]
        assert rig.bus.nicks == ["anna"]

    def test_release_goes_with_its_reason_and_parts_when_read(self) -> None:
        """A release is chatd_release with the reason, if any; Parted comes from its entry."""
        rig = Rig()
        rig.ours("ann")
        rig.bus.release("ann", "bye")
        rig.bus.release("ann", None)
        assert rig.redis.sent() == [(2, "chatd_release", "ann", "ann", "bye"),
                                    (3, "chatd_release", "ann", "ann")]
        rig.redis.answer("ok", "ok")
        rig.redis.hear(rig.redis.entry("P", n="ann", x="bye", o=NODE, c=2))
        assert rig.take() == [("event", Parted("ann", "bye"))]
        assert rig.bus.nicks == []


class TestSay:
    """Lines: delivered when read back from the stream, then ``done``."""

    def test_a_line_is_delivered_when_read_back_then_done(self) -> None:
        """A SAY is delivered only when its entry is read, and its done is called after."""
        rig = Rig()
        rig.say("ann", "hi")
        assert rig.redis.sent() == [(1, "chatd_say", "S", "ann", "hi")]
        rig.redis.answer("ok")
        assert rig.take() == []
        rig.redis.hear(rig.redis.entry("S", n="ann", x="hi", o=NODE, c=1))
        assert rig.take() == [("event", Said("ann", "hi")), ("done", "hi")]

    def test_wall_and_tell_go_as_chatd_say(self) -> None:
        """WALL and TELL are chatd_say W and T (the target last), delivered from their entries."""
        rig = Rig()
        rig.bus.publish(Walled("ann", "alert"))
        rig.bus.publish(Told("ann", "bob", "psst"))
        assert rig.redis.sent() == [(1, "chatd_say", "W", "ann", "alert"),
                                    (2, "chatd_say", "T", "ann", "psst", "bob")]
        rig.redis.hear(rig.redis.entry("W", n="ann", x="alert", o=NODE, c=1),
                       rig.redis.entry("T", n="ann", m="bob", x="psst", o=NODE, c=2))
        assert rig.take() == [("event", Walled("ann", "alert")),
                              ("event", Told("ann", "bob", "psst"))]

    @pytest.mark.parametrize("event", [Joined("ann"), Parted("ann"), Renamed("ann", "bo")])
    def test_nick_events_are_not_published(self, event: Event) -> None:
        """Joined, Parted and Renamed come only from claims: publishing one is a ValueError."""
        with pytest.raises(ValueError):
            Rig().bus.publish(event)


class TestOrder:
    """Seq and time come from the stream's entry ids."""

    def test_other_nodes_entries_in_stream_order_with_their_time(self) -> None:
        """Entries of other nodes are delivered in stream order, seq strictly increasing
        and time the entry id's milliseconds / 1000."""
        rig = Rig()
        entries = [(f"{T0 + 5}-0", {"t": "J", "n": "bob", "o": OTHER, "c": "4"}),
                   (f"{T0 + 5}-1", {"t": "S", "n": "bob", "x": "hi", "o": OTHER, "c": "5"}),
                   (f"{T0 + 9}-0", {"t": "P", "n": "bob", "x": "bye", "o": OTHER, "c": "6"})]
        rig.bus.heard(entries)
        assert [(s.seq, s.time, s.event) for s in rig.heard] == [
            (*stamp(entries[0][0]), Joined("bob")), (*stamp(entries[1][0]), Said("bob", "hi")),
            (*stamp(entries[2][0]), Parted("bob", "bye"))]
        assert rig.heard[0].seq < rig.heard[1].seq < rig.heard[2].seq
        assert rig.bus.last_id == f"{T0 + 9}-0"

    def test_seq_keeps_increasing_when_ids_go_back(self) -> None:
        """After local events stamped ahead of the stream, and after ids that go back, each
        delivered seq is still greater than the last; an entry's time stays its id's."""
        rig = Rig()
        rig.redis.hear(rig.redis.entry("S", n="bob", x="one", ms=T0 + 10))
        rig.bus.went_down()
        rig.bus.came_up(resumed=True)
        rig.redis.hear(rig.redis.entry("S", n="bob", x="two", ms=T0 + 20),
                       rig.redis.entry("S", n="bob", x="three", ms=T0 + 3))
        assert [s.event for s in rig.heard] == [
            Said("bob", "one"), split(), Walled(SERVER_NICK, WHOLE), Said("bob", "two"),
            Said("bob", "three")]
        seqs = [s.seq for s in rig.heard]
        assert seqs == sorted(set(seqs))
        assert [s.time for s in rig.heard] == [
            (T0 + 10) / 1000, LOCAL_MS / 1000, LOCAL_MS / 1000, (T0 + 20) / 1000, (T0 + 3) / 1000]


class TestLinkDropped:
    """A dropped link shorter than the patience: ops go again, users see nothing."""

    def test_resume_resends_in_flight_ops_first_in_order(self) -> None:
        """After link_dropped and came_up(resumed=True) the ops in flight go again first, in
        order, then the queued ones; nothing is told to users."""
        rig = Rig()
        rig.say("ann", "one")
        rig.say("ann", "two")
        rig.redis.sent()
        rig.claim("dan")
        rig.bus.link_dropped()
        kicks = rig.kicks
        rig.bus.came_up(resumed=True)
        assert rig.take() == []
        assert rig.kicks > kicks
        assert rig.redis.sent() == [(1, "chatd_say", "S", "ann", "one"),
                                    (2, "chatd_say", "S", "ann", "two"),
                                    (3, "chatd_claim", "dan", "dan")]

    def test_resent_ops_are_heard_once(self) -> None:
        """An op applied before the drop is answered "dup" on resend; each entry, read
        once, is delivered once."""
        rig = Rig()
        rig.say("ann", "one")
        rig.say("ann", "two")
        rig.redis.sent()
        rig.bus.link_dropped()
        rig.bus.came_up(resumed=True)
        rig.redis.sent()
        rig.redis.answer("dup", "ok")
        rig.redis.hear(rig.redis.entry("S", n="ann", x="one", o=NODE, c=1),
                       rig.redis.entry("S", n="ann", x="two", o=NODE, c=2))
        assert rig.take() == [("event", Said("ann", "one")), ("done", "one"),
                              ("event", Said("ann", "two")), ("done", "two")]


class TestSplit:
    """A link down past the patience: a room of its own, told once."""

    def test_went_down_settles_waiting_ops_locally(self) -> None:
        """Ops in flight or queued are settled here, in order, after one WALL * SPLIT:
        claims against the roster last seen, lines delivered and their done called."""
        rig = Rig(roster=["bob"])
        rig.claim("ann")
        rig.claim("Bob")
        rig.redis.sent()
        rig.say("ann", "hi")
        rig.bus.went_down()
        assert rig.take() == [("event", split()), ("answer", "ann", True), ("event", Joined("ann")),
                              ("answer", "Bob", False), ("event", Said("ann", "hi")), ("done", "hi")]
        assert not rig.bus.up and rig.bus.nicks == ["bob", "ann"]
        rig.bus.went_down()
        assert rig.take() == [] and rig.redis.sent() == []

    def test_settled_ops_read_back_are_not_delivered_again(self) -> None:
        """When the link is back, the settled lines are resent before the burst, and the
        entries of settled ops, read back, are not delivered twice."""
        rig = Rig()
        rig.claim("ann")
        rig.say("ann", "hi")
        rig.redis.sent()
        rig.bus.went_down()
        rig.take()
        rig.bus.came_up(resumed=True)
        assert rig.take() == [("event", Walled(SERVER_NICK, WHOLE))]
        assert rig.redis.sent() == [(2, "chatd_say", "S", "ann", "hi"),
                                    (3, "chatd_sync", "ann", "ann", str(LOCAL_MS))]
        rig.redis.hear(rig.redis.entry("J", n="ann", o=NODE, c=1),
                       rig.redis.entry("S", n="ann", x="hi", o=NODE, c=2))
        rig.redis.answer("ok", [])
        rig.say("ann", "again")
        rig.redis.sent()
        rig.redis.hear(rig.redis.entry("S", n="ann", x="again", o=NODE, c=4))
        assert rig.take() == [("event", Said("ann", "again")), ("done", "again")]

    def test_ops_already_read_back_are_not_settled_again(self) -> None:
        """An op whose entry was read (its number at most the newest of ours read) is
        neither delivered again nor resent."""
        rig = Rig()
        rig.say("ann", "hi")
        rig.redis.sent()
        rig.redis.hear(rig.redis.entry("S", n="ann", x="hi", o=NODE, c=1))
        rig.take()
        rig.bus.went_down()
        assert rig.take() == [("event", split())]
        rig.bus.came_up(resumed=True)
        assert [op[1] for op in rig.redis.sent()] == ["chatd_sync"]

    def test_refused_claim_before_a_read_op_is_answered(self) -> None:
        """A claim whose reply was lost, older than an op of ours already read back, was
        refused (its JOIN would have come first): went_down answers it False."""
        rig = Rig()
        rig.claim("ann")
        rig.say("cy", "hi")
        rig.redis.sent()
        rig.redis.hear(rig.redis.entry("S", n="cy", x="hi", o=NODE, c=2))
        rig.take()
        rig.bus.went_down()
        assert rig.take() == [("event", split()), ("answer", "ann", False)]

    def test_during_a_split_everything_is_local(self) -> None:
        """While split, claims, renames, lines and releases are settled here at once, with
        nothing sent."""
        rig = Rig(roster=["bob"])
        rig.bus.went_down()
        rig.take()
        rig.claim("cy")
        rig.claim("BOB")
        rig.rename("cy", "Cy")
        rig.say("Cy", "hi")
        rig.bus.release("Cy", "bye")
        assert rig.take() == [
            ("answer", "cy", True), ("event", Joined("cy")), ("answer", "BOB", False),
            ("answer", "Cy", True), ("event", Renamed("cy", "Cy")),
            ("event", Said("Cy", "hi")), ("done", "hi"), ("event", Parted("Cy", "bye"))]
        assert rig.redis.sent() == [] and rig.bus.nicks == ["bob"]

    @pytest.mark.parametrize(("resumed", "gap", "wall"), [
        (True, False, WHOLE), (True, True, MISSED), (False, False, MISSED)])
    def test_came_up_bursts_and_says_so(self, resumed: bool, gap: bool, wall: str) -> None:
        """Back after a split, the bus sends chatd_sync listing our users (nick, key, claim
        time) and walls WHOLE, or MISSED when lines may be lost."""
        rig = Rig()
        joined = rig.ours("Ann")
        rig.bus.went_down()
        rig.claim("cy")
        rig.take()
        rig.bus.came_up(resumed=resumed, gap=gap)
        assert rig.take() == [("event", Walled(SERVER_NICK, wall))]
        assert rig.bus.up
        assert rig.redis.sent() == [
            (3, "chatd_sync", "Ann", "ann", str(entry_seq(joined[0])[1]), "cy", "cy", str(LOCAL_MS))]

    def test_reaped_part_takes_the_bus_down_and_stops_the_batch(self) -> None:
        """A PART of our node with no op (another node reaped us) takes the bus down, settles
        what waited, and the rest of the batch is not delivered."""
        rig = Rig()
        rig.ours("ann")
        rig.say("ann", "hi")
        rig.redis.sent()
        rig.redis.hear(rig.redis.entry("P", n="ann", x=NODE_DOWN, o=NODE),
                       rig.redis.entry("S", n="bob", x="hello"))
        assert not rig.bus.up
        assert rig.take() == [("event", split()), ("event", Said("ann", "hi")), ("done", "hi")]
        assert rig.bus.nicks == ["ann"]


    def test_entries_heard_while_down_wait_for_the_resume(self) -> None:
        """Entries handed over once the bus is down (a read that raced the fencing) are
        left unread: the resume reads them from the same place, and delivers them once."""
        rig = Rig()
        rig.redis.hear(rig.redis.entry("S", n="bob", x="before"))
        position = rig.bus.last_id
        rig.bus.went_down()
        late = [rig.redis.entry("J", n="dan"), rig.redis.entry("S", n="dan", x="hi")]
        rig.bus.heard(late)
        assert rig.bus.last_id == position and rig.bus.nicks == []
        rig.bus.came_up(resumed=True)
        rig.take()
        rig.bus.heard(late)
        assert rig.take() == [("event", Joined("dan")), ("event", Said("dan", "hi"))]


class RecordingReplies:
    """A session's connection, recording what the session told it."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def nick_ok(self, nick: str) -> None:
        self.records.append(("nick_ok", nick))

    def refused(self, error: ChatError) -> None:
        self.records.append(("refused", error.code))

    def welcome(self, nicks: list[str]) -> None:
        self.records.append(("welcome", nicks))

    def goodbye(self, reason: str) -> None:
        self.records.append(("goodbye", reason))

    def hang_up(self) -> None:
        self.records.append(("hang_up",))

    def ready(self) -> None:
        self.records.append(("ready",))


class RecordingAudience:
    """The fan-out, recording what it was given; the stamps of what everyone
    hears (broadcasts and WALLs) are kept apart, in ``stamps``."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.stamps: list[Stamped] = []

    def add(self, member: Any) -> None:
        self.records.append(("add", member))

    def remove(self, member: Any) -> None:
        self.records.append(("remove", member))

    def broadcast(self, stamped: Stamped, speaker: Any = None) -> None:
        self.stamps.append(stamped)
        self.records.append(("broadcast", stamped.event))

    def tell(self, member: Any, stamped: Stamped) -> None:
        self.records.append(("tell", member, stamped.event))

    def wall(self, stamped: Stamped) -> None:
        self.stamps.append(stamped)
        self.records.append(("wall", stamped.event))


@dataclass
class Node:
    """A room on a ``RedisBus`` (registered as ``node_id`` unless told not to), its
    audience and sessions recording into ``records``."""

    roster: Iterable[str] = ()
    node_id: str | None = NODE
    records: list[Record] = field(default_factory=list)
    bus: RedisBus = field(init=False)
    redis: FakeRedis = field(init=False)
    audience: RecordingAudience = field(init=False)
    room: Room = field(init=False)

    def __post_init__(self) -> None:
        self.bus = RedisBus(maxlen=1000, clock=FakeClock(LOCAL_MS / 1000))
        self.redis = FakeRedis(self.bus)
        self.audience = RecordingAudience(self.records)
        self.room = Room(self.bus, self.audience)
        if self.node_id is not None:
            self.bus.registered(self.node_id, EPOCH, f"{T0}-0", list(self.roster))
        self.take()

    def session(self) -> Session:
        return Session(self.room, RecordingReplies(self.records), dialect="line",
                       write=lambda data: None)

    def take(self) -> list[Record]:
        taken = list(self.records)
        self.records.clear()
        return taken


class TestThroughTheRoom:
    """The real Room and Session on the bus: protocol v1's order of replies."""

    def test_ok_nick_comes_before_join(self) -> None:
        """A login waits for its JOIN entry: then OK NICK, the JOIN everyone hears, the roster,
        and only then the connection's next lines."""
        node = Node(roster=["bob"])
        ann = node.session()
        ann.change_nick("ann")
        node.redis.sent()
        node.redis.answer("ok")
        assert node.take() == [] and ann.waiting
        node.redis.hear(node.redis.entry("J", n="ann", o=NODE, c=1))
        assert node.take() == [("add", ann), ("nick_ok", "ann"), ("broadcast", Joined("ann")),
                               ("welcome", ["bob", "ann"]), ("ready",)]
        assert not ann.waiting

    def test_taken_nick_is_refused_at_the_reply(self) -> None:
        """A login answered "taken" is refused when the reply comes."""
        node = Node(roster=["bob"])
        other = node.session()
        other.change_nick("BOB")
        node.redis.sent()
        node.redis.answer("taken")
        assert node.take() == [("refused", ErrorCode.NICK_TAKEN), ("ready",)]
        assert other.nick is None

    def test_a_line_holds_the_connection_until_heard_back(self) -> None:
        """The speaker waits until its line is read back and broadcast; then it is ready."""
        node = Node()
        ann = node.session()
        ann.change_nick("ann")
        node.redis.sent()
        node.redis.hear(node.redis.entry("J", n="ann", o=NODE, c=1))
        node.take()
        ann.say("hi")
        assert ann.waiting and node.take() == []
        node.redis.sent()
        node.redis.hear(node.redis.entry("S", n="ann", x="hi", o=NODE, c=2))
        assert node.take() == [("broadcast", Said("ann", "hi")), ("ready",)]

    @pytest.mark.parametrize("entry_first", [True, False])
    def test_sync_reply_renames_our_later_claim(self, entry_first: bool) -> None:
        """A sync answering [old, new] moves our user to the new nick (Renamed), and the
        other node's user of the old nick is then Joined, whichever comes first."""
        node = Node(roster=["bob"])
        node.bus.went_down()
        carol = node.session()
        carol.change_nick("carol")  # settled here: the room is split
        node.take()
        node.bus.came_up(resumed=True)
        node.take()
        (sync,) = node.redis.sent()
        assert sync == (2, "chatd_sync", "carol", "carol", str(LOCAL_MS))
        theirs = node.redis.entry("J", n="carol", c=4, ms=T0 + 300)  # claimed during the split
        if entry_first:
            node.redis.hear(theirs)
            assert node.take() == []
        node.redis.answer(["carol", "carol-2"])
        if not entry_first:
            node.redis.hear(theirs)
        node.redis.hear(node.redis.entry("J", n="carol-2", o=NODE, c=2, b=1))
        assert node.take() == [("broadcast", Renamed("carol", "carol-2")),
                               ("broadcast", Joined("carol"))]
        assert carol.nick == "carol-2" and node.room.find("carol-2") is carol
        assert node.room.nicks == ["bob", "carol-2", "carol"]

    def test_forced_rename_of_the_other_claim_is_a_join_of_its_new_nick(self) -> None:
        """When ours was the earlier claim, the other node's user is renamed (R, f=1): here it
        is a Joined of the new nick, and our user keeps the nick."""
        node = Node(roster=["bob"])
        carol = node.session()
        carol.change_nick("carol")
        node.redis.sent()
        node.redis.hear(node.redis.entry("J", n="carol", o=NODE, c=1))
        node.bus.went_down()
        node.bus.registered("1000012", EPOCH, f"{T0 + 100}-0", ["bob", "carol"])
        node.bus.came_up(resumed=False)
        node.take()
        (sync,) = node.redis.sent()
        node.redis.answer([])
        node.redis.hear(node.redis.entry("R", n="carol", m="carol-2", f=1, ms=T0 + 101),
                        node.redis.entry("J", n="carol", o="1000012", c=sync[0], b=1))
        assert node.take() == [("broadcast", Joined("carol-2"))]
        assert carol.nick == "carol" and node.room.nicks == ["bob", "carol", "carol-2"]


class TestEntries:
    """What the other kinds of entry mean."""

    def test_our_burst_entries_are_not_delivered_here(self) -> None:
        """The JOIN and PART our burst wrote (b=1) are not delivered on our own node."""
        rig = Rig()
        rig.ours("ann")
        rig.redis.hear(rig.redis.entry("J", n="ann", o=NODE, c=5, b=1),
                       rig.redis.entry("J", n="cy", o=NODE, c=5, b=1),
                       rig.redis.entry("P", n="dan", x="connection lost", o=NODE, c=5, b=1))
        assert rig.take() == []

    def test_another_nodes_burst_is_delivered_once(self) -> None:
        """Another node's burst JOIN of a nick we did not know is delivered, one we knew is
        not; its PART of a nick we knew is delivered, of one we did not know is not."""
        rig = Rig(roster=["bob"])
        rig.redis.hear(rig.redis.entry("J", n="dan", c=5, b=1),
                       rig.redis.entry("J", n="bob", c=5, b=1),
                       rig.redis.entry("P", n="zed", x="connection lost", c=5, b=1),
                       rig.redis.entry("P", n="bob", x="connection lost", c=5, b=1))
        assert rig.take() == [("event", Joined("dan")), ("event", Parted("bob", "connection lost"))]
        assert rig.bus.nicks == ["dan"]

    def test_unknown_entry_kind_is_skipped(self) -> None:
        """An entry of a kind this node does not know is skipped; the next is delivered."""
        rig = Rig()
        rig.redis.hear(rig.redis.entry("Q", n="bob", x="?"), rig.redis.entry("S", n="bob", x="hi"))
        assert rig.take() == [("event", Said("bob", "hi"))]

    def test_fill_keeps_only_lines(self) -> None:
        """fill hands the history only the SAY entries, stamped from their ids; the
        subscribers hear nothing."""
        rig = Rig()
        kept: list[Stamped] = []
        rig.bus.keep = kept.append
        entries = [rig.redis.entry("J", n="bob"), rig.redis.entry("S", n="bob", x="one"),
                   rig.redis.entry("W", n="bob", x="w"), rig.redis.entry("T", n="bob", m="x", x="t"),
                   rig.redis.entry("S", n="bob", x="two"), rig.redis.entry("P", n="bob")]
        rig.bus.fill(entries)
        assert kept == [Stamped(*stamp(entries[1][0]), Said("bob", "one")),
                        Stamped(*stamp(entries[4][0]), Said("bob", "two"))]
        assert rig.take() == []


class ModelRedis:
    """A tiny model of ``redis_functions.lua``: one stream, one nick table, each node's
    ops applied once and in order (no leases, no bursts)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.nicks: dict[str, tuple[str, str]] = {}  # key -> (node, nick), in claim order
        self.applied: dict[str, int] = {}
        self.ms = T0

    def register(self, bus: RedisBus, node: str) -> None:
        last = self.entries[-1][0] if self.entries else "0-0"
        bus.registered(node, EPOCH, last, [nick for _, nick in self.nicks.values()])

    def write(self, bus: RedisBus) -> None:
        """Apply what the bus has to send, and answer it."""
        assert bus.node is not None
        node = bus.node
        bus.replied([self.apply(node, op) for op in bus.take()])

    def read(self, bus: RedisBus) -> None:
        """Hand the bus what it has not read yet."""
        position = entry_seq(bus.last_id)
        bus.heard([entry for entry in self.entries if entry_seq(entry[0]) > position])

    def apply(self, node: str, op: Op) -> str:
        if self.applied.get(node, 0) >= op.number:
            return "dup"
        self.applied[node] = op.number
        mark = {"o": node, "c": str(op.number)}
        if op.function == "chatd_claim":
            nick, key = op.args
            if key in self.nicks:
                return "taken"
            self.nicks[key] = (node, nick)
            self.add(t="J", n=nick, **mark)
        elif op.function == "chatd_rename":
            old, old_key, new, new_key = op.args
            if new_key != old_key and new_key in self.nicks:
                return "taken"
            del self.nicks[old_key]
            self.nicks[new_key] = (node, new)
            self.add(t="R", n=old, m=new, **mark)
        elif op.function == "chatd_release":
            nick, key, *reason = op.args
            if self.nicks.get(key, ("", ""))[0] == node:
                del self.nicks[key]
                self.add(t="P", n=nick, **mark, **({"x": reason[0]} if reason else {}))
        else:
            kind, nick, text, *target = op.args
            self.add(t=kind, n=nick, x=text, **mark, **({"m": target[0]} if target else {}))
        return "ok"

    def add(self, **fields: str) -> None:
        self.ms += 1
        self.entries.append((f"{self.ms}-0", fields))


class TestTwoNodes:
    """Two buses and two rooms on one (modelled) stream hear one order."""

    def test_both_rooms_hear_the_same_order(self) -> None:
        """However the nodes' writes interleave, both rooms broadcast the same events with
        the same stamps in the same order, and a TELL reaches only its target's node."""
        redis = ModelRedis()
        first, second = Node(node_id=None), Node(node_id=None)
        redis.register(first.bus, "11")
        redis.register(second.bus, "12")

        def pump() -> None:
            """Second's writes go first, then first's; then both read, until all is read."""
            while first.bus.pending or second.bus.pending or any(
                    entry_seq(node.bus.last_id) < entry_seq(redis.entries[-1][0])
                    for node in (first, second) if redis.entries):
                redis.write(second.bus)
                redis.write(first.bus)
                redis.read(first.bus)
                redis.read(second.bus)

        ann, bob, late = first.session(), second.session(), second.session()
        ann.change_nick("ann")
        bob.change_nick("bob")
        pump()
        late.change_nick("ANN")
        ann.say("hello")
        bob.say("hi")
        bob.tell("ann", "psst")
        pump()
        bob.change_nick("bobby")
        ann.close("bye")
        pump()
        shared = [(s.seq, s.time, s.event) for s in first.audience.stamps]
        assert shared == [(s.seq, s.time, s.event) for s in second.audience.stamps]
        assert [event for _, _, event in shared] == [
            Joined("bob"), Joined("ann"), Said("bob", "hi"), Said("ann", "hello"),
            Renamed("bob", "bobby"), Parted("ann", "bye")]
        seqs = [seq for seq, _, _ in shared]
        assert seqs == sorted(set(seqs))
        assert ("tell", ann, Told("bob", "ann", "psst")) in first.take()
        second_records = second.take()
        assert ("refused", ErrorCode.NICK_TAKEN) in second_records
        assert not any(record[0] == "tell" for record in second_records)
        assert first.room.nicks == second.room.nicks == ["bobby"]
