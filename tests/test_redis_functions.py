"""The room's Redis functions (``chatd/redis_functions.lua``) against a real redis-server.

Each test loads the library into a fresh redis-server (``redis_server``) and
calls the functions through redis-py, synchronously, with the arguments
``RedisBus.command`` builds: ``KEYS[1]`` the prefix, then the stream's
MAXLEN, the node, the op number and the op's own arguments.  A lease ends
without waiting for it: a heartbeat with a lease of 1 ms, then a bounded
poll of Redis's own clock (``TIME``) until the deadline has passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from chatd.nicks import nick_key
from chatd.redisbus import NODE_DOWN
from chatd.transports.redis import FUNCTIONS
from tests.redis_support import RedisServer

pytestmark = [pytest.mark.e2e]

PREFIX = "chatd:"
MAXLEN = "1000"
LEASE = "10000"

Fields = dict[str, str]


class Room:
    """One room's keys on a redis-server, and calls of its functions."""

    def __init__(self, client: Any) -> None:
        # Any: redis-py types each reply as a union of sync and async results.
        self.r: Any = client

    def register(self, lease: str = LEASE) -> Node:
        node, epoch, last, *nicks = self.r.fcall("chatd_register", 1, PREFIX, MAXLEN, lease)
        return Node(self, str(node), str(epoch))

    def snapshot(self) -> list[str]:
        """A registration's reply without its node id: epoch, last entry id, nicks."""
        _, *rest = self.r.fcall("chatd_register", 1, PREFIX, MAXLEN, LEASE)
        return [str(item) for item in rest]

    def entries(self) -> list[Fields]:
        """Every entry's fields, oldest first."""
        return [fields for _, fields in self.r.xrange(PREFIX + "events")]

    def last_id(self) -> str:
        return str(self.r.xrevrange(PREFIX + "events", count=1)[0][0])

    def holder(self, nick: str) -> str | None:
        """The node holding ``nick`` (any case), or None."""
        value = self.r.hget(PREFIX + "nicks", nick_key(nick))
        return None if value is None else str(value).split(" ", 1)[0]

    def now_ms(self) -> int:
        seconds, micros = self.r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def wait_past(self, deadline: float) -> None:
        """Until Redis's clock is past ``deadline`` (ms); a few ms at most."""
        for _ in range(100_000):
            if self.now_ms() > deadline:
                return
        raise AssertionError(f"Redis's clock never passed {deadline}")


class Node:
    """One registration: its id, the epoch it saw, and its op counter."""

    def __init__(self, room: Room, node: str, epoch: str) -> None:
        self.room = room
        self.id = node
        self.epoch = epoch
        self.op = 0

    def call(self, function: str, *args: str, op: int | None = None) -> Any:
        """``function`` as RedisBus.command builds it; ``op`` to resend an old one."""
        if op is None:
            self.op += 1
            op = self.op
        return self.room.r.fcall(function, 1, PREFIX, MAXLEN, self.id, str(op), *args)

    def claim(self, nick: str, *, op: int | None = None) -> Any:
        return self.call("chatd_claim", nick, nick_key(nick), op=op)

    def rename(self, old: str, new: str) -> Any:
        return self.call("chatd_rename", old, nick_key(old), new, nick_key(new))

    def release(self, nick: str, *reason: str) -> Any:
        return self.call("chatd_release", nick, nick_key(nick), *reason)

    def say(self, kind: str, nick: str, text: str, *target: str, op: int | None = None) -> Any:
        return self.call("chatd_say", kind, nick, text, *target, op=op)

    def beat(self, lease: str = LEASE, epoch: str | None = None) -> Any:
        return self.call("chatd_beat", lease, self.epoch if epoch is None else epoch)

    def sync(self, *users: tuple[str, int], op: int | None = None) -> Any:
        """The burst: each user as (nick, claim time in ms)."""
        args = [word for nick, since in users for word in (nick, nick_key(nick), str(since))]
        return self.call("chatd_sync", *args, op=op)

    def leave(self, reason: str) -> Any:
        return self.call("chatd_leave", reason)

    def expire(self) -> None:
        """End this node's lease now: a 1 ms lease, then wait it out."""
        assert self.beat(lease="1") == "ok"
        self.room.wait_past(float(self.room.r.zscore(PREFIX + "nodes", self.id)))


@pytest.fixture
def room(redis_server: RedisServer) -> Iterator[Room]:
    """A fresh redis-server with the functions loaded."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.function_load(FUNCTIONS, replace=True)
    yield Room(client)
    client.close()


def join(node: Node, op: int, nick: str, **extra: str) -> Fields:
    return {"t": "J", "n": nick, "o": node.id, "c": str(op), **extra}


class TestKeys:
    """What lives under the prefix."""

    def test_key_layout(self, room: Room) -> None:
        """A node that claimed a nick leaves the stream, the nick table, the leases, the
        counter, the epoch, its last op and its nicks, each of its Redis type."""
        before = room.now_ms()
        ann = room.register()
        assert ann.claim("Ann") == "ok"
        assert ann.say("S", "Ann", "hi") == "ok"
        r = room.r
        assert {key: r.type(key) for key in r.keys("*")} == {
            "chatd:events": "stream", "chatd:nicks": "hash", "chatd:nodes": "zset",
            "chatd:node_seq": "string", "chatd:epoch": "string", f"chatd:node:{ann.id}": "hash",
            f"chatd:node:{ann.id}:nicks": "set"}
        node, op, since, nick = r.hget("chatd:nicks", "ann").split(" ", 3)
        assert (node, op, nick) == (ann.id, "1", "Ann") and int(since) >= before
        assert r.hgetall(f"chatd:node:{ann.id}") == {"op": "2"}
        assert r.smembers(f"chatd:node:{ann.id}:nicks") == {"ann"}
        assert before + 10000 <= r.zscore("chatd:nodes", ann.id) <= room.now_ms() + 10000
        assert r.get("chatd:epoch") == ann.epoch and r.get("chatd:node_seq") == ann.id


class TestRegister:
    """chatd_register: a new node id and the room's snapshot."""

    def test_node_ids_increase_under_one_epoch(self, room: Room) -> None:
        """Each registration is a new, larger node id; the first one, seeded from Redis's
        clock, also sets the one epoch every later registration sees."""
        before = room.now_ms()
        nodes = [room.register() for _ in range(3)]
        ids = [int(node.id) for node in nodes]
        assert ids == sorted(set(ids)) and ids[0] > before
        assert {node.epoch for node in nodes} == {f"{ids[0] - 1}-{ids[0]}"}

    def test_empty_room_snapshot(self, room: Room) -> None:
        """A new room's snapshot has no entries (last id 0-0) and no nicks."""
        epoch, last = room.snapshot()
        assert last == "0-0" and epoch == room.r.get("chatd:epoch")

    def test_snapshot_lists_nicks_oldest_claim_first_with_the_last_entry(self, room: Room) -> None:
        """The snapshot lists the held nicks oldest claim first (a rename is a new claim)
        and the id of the last entry, taken in one step."""
        ann, bob = room.register(), room.register()
        assert ann.claim("zed") == bob.claim("Amy") == ann.claim("kim") == "ok"
        assert ann.rename("zed", "zora") == "ok"
        assert bob.say("S", "Amy", "hi") == "ok"
        epoch, last, *nicks = room.snapshot()
        assert nicks == ["Amy", "kim", "zora"] and last == room.last_id()


class TestClaim:
    """chatd_claim: a nick and its JOIN in one step."""

    def test_free_nick_is_taken_with_its_join(self, room: Room) -> None:
        """A free nick answers ok, is held by the node and appends its JOIN with the op."""
        ann = room.register()
        assert ann.claim("Ann") == "ok"
        assert room.entries() == [join(ann, 1, "Ann")]
        assert room.holder("ann") == ann.id

    def test_held_nick_is_taken_ignoring_case(self, room: Room) -> None:
        """A nick held by another node, in any case, answers taken and appends nothing."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        assert bob.claim("ANN") == bob.claim("aNn") == "taken"
        assert len(room.entries()) == 1 and room.holder("ann") == ann.id

    def test_resend_answers_the_real_ownership(self, room: Room) -> None:
        """An op sent again answers whether it holds the nick now (ok or taken), never
        applying it twice."""
        ann, bob = room.register(), room.register()
        assert ann.claim("ann") == "ok"
        assert bob.claim("bob") == "ok"
        assert ann.claim("bob") == "taken"
        assert ann.claim("ann", op=1) == "ok"
        assert ann.claim("bob", op=2) == "taken"
        assert len(room.entries()) == 2
        assert ann.rename("ann", "anna") == "ok"
        assert ann.claim("ann", op=1) == "taken"

    def test_node_without_a_lease_is_lost(self, room: Room) -> None:
        """A node Redis does not know (never registered, or reaped) answers lost."""
        room.register()
        stranger = Node(room, "42", "")
        assert stranger.claim("ann") == "lost"
        assert room.entries() == [] and room.holder("ann") is None

    def test_dead_holder_is_reaped_and_the_nick_taken(self, room: Room) -> None:
        """A claim of a nick whose holder's lease has passed reaps that node (PART node down
        for each of its nicks, no op) and takes the nick."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        ann.claim("amy")
        ann.expire()
        assert bob.claim("ANN") == "ok"
        *parts, joined = room.entries()[2:]
        assert sorted(parts, key=lambda f: f["n"]) == [
            {"t": "P", "n": "amy", "x": NODE_DOWN, "o": ann.id},
            {"t": "P", "n": "ann", "x": NODE_DOWN, "o": ann.id}]
        assert joined == join(bob, 1, "ANN")
        assert room.holder("amy") is None and room.r.zscore("chatd:nodes", ann.id) is None
        assert not room.r.exists(f"chatd:node:{ann.id}", f"chatd:node:{ann.id}:nicks")
        assert ann.claim("zoe") == "lost"


class TestRename:
    """chatd_rename: moving a nick and its RENAME in one step."""

    def test_rename_moves_ownership_with_its_entry(self, room: Room) -> None:
        """A rename to a free nick answers ok, appends R with the op, and frees the old nick."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        assert ann.rename("ann", "anna") == "ok"
        assert room.entries()[-1] == {"t": "R", "n": "ann", "m": "anna", "o": ann.id, "c": "2"}
        assert room.holder("anna") == ann.id and room.holder("ann") is None
        assert room.r.smembers(f"chatd:node:{ann.id}:nicks") == {"anna"}
        assert bob.claim("ann") == "ok"

    def test_case_only_rename_is_always_ok(self, room: Room) -> None:
        """Changing only the case of one's own nick answers ok and keeps the key."""
        ann = room.register()
        ann.claim("ann")
        assert ann.rename("ann", "ANN") == "ok"
        assert room.r.hget("chatd:nicks", "ann").endswith(" ANN")

    def test_rename_to_a_held_nick_is_taken(self, room: Room) -> None:
        """A rename onto another node's nick, in any case, answers taken and changes nothing."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        bob.claim("bob")
        assert ann.rename("ann", "BOB") == "taken"
        assert room.holder("ann") == ann.id and room.holder("bob") == bob.id
        assert len(room.entries()) == 2

    def test_rename_of_a_nick_held_elsewhere_takes_nothing(self, room: Room) -> None:
        """A rename of a nick this node does not hold leaves the holder its nick."""
        ann, bob = room.register(), room.register()
        bob.claim("carol")
        assert ann.rename("carol", "carolyn") == "taken"
        assert room.holder("carol") == bob.id and room.holder("carolyn") is None


class TestRelease:
    """chatd_release: freeing a nick and its PART in one step."""

    def test_release_parts_with_the_reason(self, room: Room) -> None:
        """A release of a held nick frees it and appends P with the op and the reason."""
        ann = room.register()
        ann.claim("ann")
        assert ann.release("ann", "bye") == "ok"
        assert room.entries()[-1] == {"t": "P", "n": "ann", "o": ann.id, "c": "2", "x": "bye"}
        assert room.holder("ann") is None and room.r.smembers(f"chatd:node:{ann.id}:nicks") == set()

    def test_reason_is_optional(self, room: Room) -> None:
        """A release without a reason appends a PART without x."""
        ann = room.register()
        ann.claim("ann")
        ann.release("ann")
        assert room.entries()[-1] == {"t": "P", "n": "ann", "o": ann.id, "c": "2"}

    def test_release_of_a_nick_held_elsewhere_parts_nothing(self, room: Room) -> None:
        """Only the holder's release frees a nick: another node's answers ok, appends nothing."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        assert bob.release("ann", "gone") == "ok"
        assert len(room.entries()) == 1 and room.holder("ann") == ann.id

    def test_resent_release_is_dup(self, room: Room) -> None:
        """A release sent again answers dup and appends nothing more."""
        ann = room.register()
        ann.claim("ann")
        ann.release("ann")
        assert ann.call("chatd_release", "ann", "ann", op=2) == "dup"
        assert len(room.entries()) == 2


class TestSay:
    """chatd_say: SAY, WALL and TELL entries."""

    def test_say_wall_and_tell_entries(self, room: Room) -> None:
        """Each kind appends its entry with the op; a TELL names its target in m."""
        ann = room.register()
        assert ann.say("S", "ann", "hello all") == "ok"
        assert ann.say("W", "ann", "alert") == "ok"
        assert ann.say("T", "ann", "psst", "bob") == "ok"
        assert room.entries() == [
            {"t": "S", "n": "ann", "x": "hello all", "o": ann.id, "c": "1"},
            {"t": "W", "n": "ann", "x": "alert", "o": ann.id, "c": "2"},
            {"t": "T", "n": "ann", "x": "psst", "o": ann.id, "c": "3", "m": "bob"}]

    def test_resent_line_is_dup_and_lost_node_is_lost(self, room: Room) -> None:
        """A line sent again answers dup; a node without a lease answers lost; neither appends."""
        ann = room.register()
        ann.say("S", "ann", "once")
        assert ann.say("S", "ann", "once", op=1) == "dup"
        assert Node(room, "42", "").say("S", "x", "y") == "lost"
        assert len(room.entries()) == 1


class TestBeat:
    """chatd_beat: the lease, the epoch and the reaping of dead nodes."""

    def test_beat_renews_the_lease(self, room: Room) -> None:
        """A beat answers ok and moves the deadline to now + lease."""
        ann = room.register(lease="1000")
        before = room.r.zscore("chatd:nodes", ann.id)
        assert ann.beat(lease="60000") == "ok"
        assert room.r.zscore("chatd:nodes", ann.id) >= before + 59000

    def test_changed_epoch_is_epoch(self, room: Room) -> None:
        """A beat with another epoch than Redis's (Redis lost the room) answers epoch."""
        ann = room.register()
        assert ann.beat(epoch="1-1") == "epoch"

    def test_past_lease_is_lost(self, room: Room) -> None:
        """A node beating after its lease passed answers lost, and its nicks are PARTed."""
        ann = room.register()
        ann.claim("ann")
        ann.expire()
        assert ann.beat() == "lost"
        assert room.entries()[-1] == {"t": "P", "n": "ann", "x": NODE_DOWN, "o": ann.id}
        assert room.holder("ann") is None

    def test_beat_reaps_nodes_past_their_deadline(self, room: Room) -> None:
        """A live node's beat reaps every node whose lease passed (PART node down each)."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        ann.expire()
        assert bob.beat() == "ok"
        assert room.entries()[-1] == {"t": "P", "n": "ann", "x": NODE_DOWN, "o": ann.id}
        assert room.r.zrange("chatd:nodes", 0, -1) == [bob.id]


class TestSync:
    """chatd_sync, the burst: the nick table holds exactly the node's users."""

    def test_free_nicks_are_claimed_with_burst_joins(self, room: Room) -> None:
        """Each listed free nick is taken with its own claim time and a JOIN marked b=1."""
        ann = room.register()
        assert ann.sync(("ann", 1234), ("Cy", 1235)) == []
        assert room.entries() == [join(ann, 1, "ann", b="1"), join(ann, 1, "Cy", b="1")]
        assert room.r.hget("chatd:nicks", "cy") == f"{ann.id} 1 1235 Cy"

    def test_held_nicks_not_listed_are_released(self, room: Room) -> None:
        """A nick the node holds but no longer lists gets PART connection lost (b=1); the
        listed one it holds appends nothing."""
        ann = room.register()
        ann.claim("ann")
        ann.claim("amy")
        assert ann.sync(("ann", 1)) == []
        assert room.entries()[2:] == [
            {"t": "P", "n": "amy", "x": "connection lost", "o": ann.id, "c": "3", "b": "1"}]
        assert room.holder("ann") == ann.id and room.holder("amy") is None

    def test_our_later_claim_is_renamed_and_answered(self, room: Room) -> None:
        """A listed nick held by a live node since earlier: ours takes nick-2, answered
        [old, new], with a burst JOIN of the new nick."""
        ann, bob = room.register(), room.register()
        bob.claim("carol")
        assert ann.sync(("Carol", room.now_ms() + 1000)) == ["Carol", "Carol-2"]
        assert room.entries()[-1] == join(ann, 1, "Carol-2", b="1")
        assert room.holder("carol") == bob.id and room.holder("carol-2") == ann.id

    def test_their_later_claim_is_renamed_with_a_forced_rename(self, room: Room) -> None:
        """A listed nick held by a live node since later: that user takes nick-2 (R, f=1, the
        other node's, no op) and ours takes the nick with a burst JOIN."""
        ann, bob = room.register(), room.register()
        bob.claim("carol")
        assert ann.sync(("carol", 1)) == []
        assert room.entries()[1:] == [
            {"t": "R", "n": "carol", "m": "carol-2", "o": bob.id, "f": "1"},
            join(ann, 1, "carol", b="1")]
        assert room.holder("carol") == ann.id and room.holder("carol-2") == bob.id
        assert room.r.smembers(f"chatd:node:{bob.id}:nicks") == {"carol-2"}

    def test_variants_count_up_and_fit_twenty_characters(self, room: Room) -> None:
        """The variant is the first free of nick-2, nick-3...; a 20-character nick is cut to
        make room for the suffix."""
        ann, bob = room.register(), room.register()
        long = "abcdefghijklmnopqrst"
        for nick in ("carol", "carol-2", long):
            bob.claim(nick)
        later = room.now_ms() + 1000
        assert ann.sync(("carol", later), (long, later)) == [
            "carol", "carol-3", long, "abcdefghijklmnopqr-2"]

    def test_dead_holder_is_reaped_not_renamed(self, room: Room) -> None:
        """A listed nick held by a node whose lease passed is reaped (PART node down) and
        taken, with no rename."""
        ann, bob = room.register(), room.register()
        bob.claim("carol")
        bob.expire()
        assert ann.sync(("carol", room.now_ms() + 1000)) == []
        assert room.entries()[1:] == [{"t": "P", "n": "carol", "x": NODE_DOWN, "o": bob.id},
                                      join(ann, 1, "carol", b="1")]

    def test_node_without_a_lease_is_lost(self, room: Room) -> None:
        """A sync from a node without a lease answers lost and takes nothing."""
        room.register()
        assert Node(room, "42", "").sync(("x", 1)) == "lost"
        assert room.entries() == [] and room.holder("x") is None

    def test_resent_sync_answers_its_renames_again(self, room: Room) -> None:
        """A sync sent again after a dropped link answers the same renames."""
        ann, bob = room.register(), room.register()
        bob.claim("carol")
        later = room.now_ms() + 1000
        assert ann.sync(("Carol", later)) == ["Carol", "Carol-2"]
        assert ann.sync(("Carol", later), op=1) == ["Carol", "Carol-2"]


class TestLeave:
    """chatd_leave: a clean stop."""

    def test_leave_parts_every_nick_and_forgets_the_node(self, room: Room) -> None:
        """Leaving PARTs each of the node's nicks with the reason (no op) and removes its
        lease and keys; the nicks are free."""
        ann, bob = room.register(), room.register()
        ann.claim("ann")
        ann.claim("amy")
        assert ann.leave("server shutting down") == "ok"
        assert sorted(room.entries()[2:], key=lambda f: f["n"]) == [
            {"t": "P", "n": "amy", "x": "server shutting down", "o": ann.id},
            {"t": "P", "n": "ann", "x": "server shutting down", "o": ann.id}]
        assert room.r.zrange("chatd:nodes", 0, -1) == [bob.id]
        assert not room.r.exists(f"chatd:node:{ann.id}", f"chatd:node:{ann.id}:nicks")
        assert bob.claim("ann") == "ok" and ann.claim("zoe") == "lost"


class TestStream:
    """The stream stays bounded."""

    def test_maxlen_bounds_the_stream(self, room: Room) -> None:
        """With MAXLEN ~ 10, a thousand lines leave about ten entries (Redis trims whole
        nodes of up to 100 entries), the newest ones."""
        ann = room.register()
        pipe = room.r.pipeline(transaction=False)
        for number in range(1, 1001):
            pipe.fcall("chatd_say", 1, PREFIX, "10", ann.id, str(number), "S", "ann", str(number))
        assert set(pipe.execute()) == {"ok"}
        length = room.r.xlen("chatd:events")
        assert 10 <= length <= 110
        assert room.entries()[-1]["x"] == "1000"
        assert re.fullmatch(r"\d+-\d+", room.last_id())
