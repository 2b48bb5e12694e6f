"""The room's bus on Redis: one stream of room events that every node reads.

Pure, like the room: this module decides what to ask Redis and what an
entry of the stream means; ``chatd.transports.redis`` does the asking and
the reading.  The functions in ``redis_functions.lua`` keep the nick table
and the stream together, so a claim and its ``JOIN`` are one step.

Every room event, the sender's own node included, reaches the subscribers
only when it is read back from the stream: one order for every user on every
node (protocol v1, section 9).  A claim is answered when its ``JOIN`` is
read, just before it is delivered, which keeps the bus's rule that the
claimer's ``OK NICK`` precedes its ``JOIN``; a refused claim is answered
when the function's reply comes.

Each request is an ``Op`` with a number that only grows.  The function
applies a node's op once, so after a dropped link whatever might not have
been applied is sent again ("dup" when it was).

When the link is down, the node is a room of its own: what is waiting is
settled here (claims against the roster last seen, lines delivered to the
local users), local users keep talking among themselves, and are told so
once.  When the link is back, the node resumes from the last entry it read,
or registers again; either way a burst (``chatd_sync``) makes the nick table
hold exactly this node's users, renaming the later of two claims.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chatd.bus import Answer, Clock, Done, Subscriber, Subscribers
from chatd.events import Event, Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.nicks import SERVER_NICK, nick_key

NODE_DOWN = "node down"
SPLIT = ("the link to the rest of the room is down: only users on this server "
         "hear you until it is back")
WHOLE = "the room is whole again"
MISSED = "the room is whole again; lines said elsewhere meanwhile may be missing here"
# Lines said while split, sent to the others when the room is whole again
# (if Redis kept it); past this many, the rest are heard only here.
RESEND_MAX = 1000
# An entry id is "<ms>-<n>"; the bus's seq keeps both, in order.
_SEQ_SHIFT = 20

Entry = tuple[str, dict[str, str]]


def entry_seq(entry_id: str) -> tuple[int, int]:
    """The seq of a stream entry id, and its time in milliseconds."""
    ms, _, n = entry_id.partition("-")
    millis = int(ms)
    return (millis << _SEQ_SHIFT) | int(n), millis


@dataclass(slots=True, eq=False)
class Op:
    """One request to Redis: a function and its arguments after the node's."""

    number: int
    function: str
    args: tuple[str, ...]
    event: Event | None = None  # what to deliver locally if the link drops
    reply: Callable[[object], None] | None = None  # for the bus's own ops


class RedisBus:
    """A ``Bus`` on one Redis stream; ``kick`` tells the edge ops are waiting."""

    def __init__(self, *, maxlen: int, kick: Callable[[], None] = lambda: None,
                 clock: Clock = time.time) -> None:
        self.maxlen = str(maxlen)
        self.kick = kick
        self._clock = clock
        self._subscribers = Subscribers()
        self.node: str | None = None  # this registration's id (None: not registered)
        self.epoch: str | None = None
        self.last_id = "0-0"  # the last entry read: where reading resumes
        self.up = False  # registered and not split from the rest of the room
        self._ids: set[str] = set()  # every id this process registered as
        self._ops = 0
        self._queue: deque[Op] = deque()
        self._flight: deque[Op] = deque()
        self._answers: dict[int, Answer] = {}  # claims: answered as their entry is read
        self._dones: dict[int, Done] = {}  # lines: called once delivered
        self._done: Done | None = None  # the one to call after this entry's delivery
        # Ops already delivered here while the link was down, oldest first
        # (ops are settled in the order they were made).
        self._settled: deque[int] = deque()
        self._read_op = 0  # the newest of our ops read back from the stream
        self._resend: list[Op] = []
        self._seq = 0
        self._nicks: dict[str, str] = {}  # the room's roster, as this node last knew it
        self._mine: dict[str, int] = {}  # this node's users: nick key -> claim time (ms)
        self._collisions: dict[str, str] = {}  # another node's nick that one of ours holds
        self.keep: Subscriber | None = None  # the history, for lines said before we came

    # --- the Bus ---

    @property
    def nicks(self) -> list[str]:
        return list(self._nicks.values())

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    synchronous = False

    @property
    def notice(self) -> str | None:
        """While split, a user who logs in hears what the others were told."""
        return SPLIT if self.node is not None and not self.up else None

    def publish(self, event: Event, done: Done | None = None) -> None:
        if type(event) is Walled and event.nick == SERVER_NICK:
            # The server's own alert (its shutdown) is for its own connections.
            self._local(event, self._clock())
            if done is not None:
                done()
            return
        if type(event) is Said:
            op = self._send("chatd_say", ("S", event.nick, event.text), event)
        elif type(event) is Walled:
            op = self._send("chatd_say", ("W", event.nick, event.text), event)
        elif type(event) is Told:
            op = self._send("chatd_say", ("T", event.nick, event.text, event.target), event)
        else:
            raise ValueError(f"the room publishes nick events through claims: {event!r}")
        if done is not None:
            if self._settled and self._settled[-1] == op:
                done()  # delivered here already: the link is down
            else:
                self._dones[op] = done

    def claim(self, nick: str, answer: Answer) -> None:
        self._send("chatd_claim", (nick, nick_key(nick)), Joined(nick), answer)

    def rename(self, old: str, new: str, answer: Answer) -> None:
        self._send("chatd_rename", (old, nick_key(old), new, nick_key(new)),
                   Renamed(old, new), answer)

    def release(self, nick: str, reason: str | None) -> None:
        args = (nick, nick_key(nick)) + ((reason,) if reason is not None else ())
        self._send("chatd_release", args, Parted(nick, reason))

    def _send(self, function: str, args: tuple[str, ...], event: Event,
              answer: Answer | None = None) -> int:
        self._ops += 1
        op = Op(self._ops, function, args, event)
        if answer is not None:
            self._answers[op.number] = answer
        if not self.up and self.node is not None:
            self._settle(op)  # a room of its own while the link is down
            if function == "chatd_say" and len(self._resend) < RESEND_MAX:
                self._resend.append(op)  # for the others, if Redis kept the room
            return op.number
        self._queue.append(op)
        if len(self._queue) == 1:
            self.kick()
        return op.number

    def request(self, function: str, args: tuple[str, ...],
                reply: Callable[[object], None]) -> None:
        """One of the bus's own ops (a heartbeat, a burst), in the same order."""
        self._ops += 1
        self._queue.append(Op(self._ops, function, args, reply=reply))
        if len(self._queue) == 1:
            self.kick()

    # --- the edge's side ---

    def has_queued(self) -> bool:
        return bool(self._queue)

    @property
    def pending(self) -> bool:
        """Whether ops are waiting to go or for their replies."""
        return bool(self._queue or self._flight)

    def command(self, op: Op) -> tuple[str, ...]:
        """The FCALL arguments of ``op`` after the function's name."""
        return ("1", "chatd:", self.maxlen, self.node or "0", str(op.number), *op.args)

    def take(self) -> list[Op]:
        """The ops to send now; they wait for their replies in order."""
        ops = list(self._queue)
        self._queue.clear()
        self._flight.extend(ops)
        return ops

    def replied(self, results: Sequence[object]) -> None:
        """The replies to the oldest ops in flight, in order."""
        for result in results:
            op = self._flight.popleft()
            if result == "lost":  # fenced: settle the rest; the edge registers again
                self._flight.appendleft(op)
                self.went_down()
                return
            if op.reply is not None:
                op.reply(result)
            elif result == "taken":
                answer = self._answers.pop(op.number, None)
                if answer is not None:
                    answer(False)
            # "ok" and "dup": the entry, read back, does the rest

    def registered(self, node: str, epoch: str, last_id: str, nicks: Iterable[str]) -> None:
        """A registration's snapshot: the room's nicks as of entry ``last_id``.

        The first time, it is the roster; after a split, what differs from
        what local users last saw is told to them as JOINs and PARTs."""
        first = self.node is None
        self.node, self.epoch, self.last_id = node, epoch, last_id
        self._ids.add(node)
        seq, millis = entry_seq(last_id)
        self._seq = max(self._seq, seq)
        now = self._clock()
        room = {nick_key(nick): nick for nick in nicks}
        self._collisions = {key: nick for key, nick in room.items() if key in self._mine}
        if not first:
            for key, nick in list(self._nicks.items()):
                if key not in room and key not in self._mine:
                    del self._nicks[key]
                    self._local(Parted(nick, NODE_DOWN), now)
        for key, nick in room.items():
            if key not in self._nicks and key not in self._mine:
                self._nicks[key] = nick
                if first:
                    self._subscribers.deliver(Stamped(seq, millis / 1000, Joined(nick)))
                else:
                    self._local(Joined(nick), now)
        if first:
            self.up = True
            if self._queue:
                self.kick()

    def link_dropped(self) -> None:
        """The link broke: what was in flight goes again, first, once it is
        back (each op is applied once).  Until the edge gives up and calls
        ``went_down``, the connections wait for their lines, as in a lag."""
        self._flight.extend(self._queue)
        self._queue = self._flight
        self._flight = deque()

    def went_down(self) -> None:
        """The link broke: settle what was waiting, and tell local users once."""
        if not self.up:
            return
        self.up = False
        waiting = list(self._flight) + list(self._queue)
        self._flight.clear()
        self._queue.clear()
        self._local(Walled(SERVER_NICK, SPLIT), self._clock())
        for op in waiting:
            if op.reply is not None:
                continue
            if op.number > self._read_op:
                self._settle(op)
                if op.function == "chatd_say":
                    self._resend.append(op)
                continue
            # Ops up to the last of ours read back were applied (one writer,
            # applied in order): their entries, if any, were delivered.  A
            # claim still unanswered wrote none, so it was refused ("taken",
            # the reply lost with the link).
            answer = self._answers.pop(op.number, None)
            if answer is not None:
                answer(False)

    def came_up(self, *, resumed: bool, gap: bool = False) -> None:
        """The link is back and registered: resend what may not have gone
        (only when resuming the same registration), burst, say so."""
        if self.up:  # a blip, shorter than the edge's patience: nothing to tell
            if self._queue:
                self.kick()
            return
        self.up = True
        if resumed:
            self._queue.extend(self._resend)
        else:
            self._settled.clear()  # read from a new snapshot on: none comes back
        self._resend = []
        if self._queue:
            self.kick()
        self.burst()
        if gap or not resumed:
            self._local(Walled(SERVER_NICK, MISSED), self._clock())
        else:
            self._local(Walled(SERVER_NICK, WHOLE), self._clock())

    def burst(self) -> None:
        """Make the nick table hold exactly this node's users."""
        args: list[str] = []
        for key, since in self._mine.items():
            args += [self._nicks.get(key, key), key, str(since)]
        self.request("chatd_sync", tuple(args), self._synced)

    def _synced(self, result: object) -> None:
        if not isinstance(result, list):
            return  # "lost": the edge registers again and bursts then
        now = self._clock()
        for old, new in zip(result[::2], result[1::2], strict=True):
            key = nick_key(old)
            since = self._mine.pop(key, 0)
            self._mine[nick_key(new)] = since
            self._nicks.pop(key, None)
            self._nicks[nick_key(new)] = new
            self._local(Renamed(old, new), now)
            theirs = self._collisions.pop(key, None)
            if theirs is not None:
                self._nicks[key] = theirs
                self._local(Joined(theirs), now)

    def fill(self, entries: Iterable[Entry]) -> None:
        """Entries from before this node came (oldest first): the history
        keeps their lines; nothing else hears them."""
        keep = self.keep
        if keep is None:
            return
        for entry_id, fields in entries:
            if fields.get("t") == "S":
                seq, millis = entry_seq(entry_id)
                keep(Stamped(seq, millis / 1000, Said(fields["n"], fields["x"])))

    def heard(self, entries: Iterable[Entry]) -> None:
        """Entries read from the stream, in its order."""
        if not self.up:
            # A read that raced the fencing: left unread (``last_id`` stays),
            # for the resume to read again, or the new snapshot to cover.
            return
        for entry_id, fields in entries:
            self.last_id = entry_id
            seq, millis = entry_seq(entry_id)
            if seq <= self._seq:
                seq = self._seq + 1
            self._seq = seq
            event = self._apply(fields, millis)
            if not self.up:
                return  # fenced: the rest waits for the new registration
            if event is not None:
                self._subscribers.deliver(Stamped(seq, millis / 1000, event))
            done = self._done
            if done is not None:
                self._done = None
                done()

    # --- what an entry means ---

    def _apply(self, fields: dict[str, str], millis: int) -> Event | None:
        """Keep the roster from one entry; the event to deliver, if any."""
        kind = fields["t"]
        mine = fields.get("o") in self._ids
        if kind == "S" and not mine:  # the hot path first
            return Said(fields["n"], fields["x"])
        op = int(fields["c"]) if "c" in fields else 0
        if mine and op:
            self._read_op = max(self._read_op, op)
            # Redis applies our ops in order and the stream keeps that
            # order: a settled op older than this one either came back
            # already or never will.
            settled = self._settled
            while settled and settled[0] < op:
                settled.popleft()
            if settled and settled[0] == op:
                settled.popleft()
                return None  # delivered here while the link was down
            self._done = self._dones.pop(op, None)
        if kind == "S":
            return Said(fields["n"], fields["x"])
        if kind == "J":
            nick = fields["n"]
            key = nick_key(nick)
            if mine:
                if "b" not in fields or key not in self._mine:
                    self._mine[key] = millis  # a burst keeps the claim's own time
                answer = self._answers.pop(op, None)
                if answer is not None:
                    answer(True)
            elif key in self._mine:
                self._collisions[key] = nick  # settled by the burst
                return None
            if "b" in fields and (mine or self._nicks.get(key) == nick):
                return None  # a burst: these users already saw this one here
            self._nicks[key] = nick
            return Joined(nick)
        if kind == "P":
            nick = fields["n"]
            key = nick_key(nick)
            if mine and not op:
                # Reaped by another node: this node was taken for dead (it
                # was paused past its lease).  Its users are still here.
                self.went_down()
                return None
            if mine:
                self._mine.pop(key, None)
            elif key in self._mine:
                self._collisions.pop(key, None)
                return None  # the other claim of a nick one of ours holds
            if "b" in fields and (mine or key not in self._nicks):
                return None  # a burst: these users already saw this one go
            self._nicks.pop(key, None)
            return Parted(nick, fields.get("x"))
        if kind == "R":
            old, new = fields["n"], fields["m"]
            old_key, new_key = nick_key(old), nick_key(new)
            if mine:
                if old_key != new_key:
                    self._mine[new_key] = self._mine.pop(old_key, millis)
                answer = self._answers.pop(op, None)
                if answer is not None:
                    answer(True)
            elif old_key in self._mine:  # the other of a collision, renamed
                self._collisions.pop(old_key, None)
                self._nicks[new_key] = new
                return Joined(new)
            self._nicks.pop(old_key, None)
            self._nicks[new_key] = new
            return Renamed(old, new)
        if kind == "W":
            return Walled(fields["n"], fields["x"])
        if kind == "T":
            return Told(fields["n"], fields["m"], fields["x"])
        return None  # a kind a newer node writes: skip it

    # --- a room of its own, while the link is down ---

    def _settle(self, op: Op) -> None:
        """Answer and deliver ``op`` here, as a single node would."""
        self._settled.append(op.number)
        answer = self._answers.pop(op.number, None)
        event = op.event
        now = self._clock()
        if type(event) is Joined:
            key = nick_key(event.nick)
            if key in self._nicks:
                if answer is not None:
                    answer(False)
                return
            self._nicks[key] = event.nick
            self._mine[key] = int(now * 1000)
        elif type(event) is Renamed:
            old_key, new_key = nick_key(event.old), nick_key(event.new)
            if new_key != old_key and new_key in self._nicks:
                if answer is not None:
                    answer(False)
                return
            self._nicks.pop(old_key, None)
            self._nicks[new_key] = event.new
            self._mine[new_key] = self._mine.pop(old_key, int(now * 1000))
        elif type(event) is Parted:
            key = nick_key(event.nick)
            self._nicks.pop(key, None)
            self._mine.pop(key, None)
        if answer is not None:
            answer(True)
        if event is not None:
            self._local(event, now)
        done = self._dones.pop(op.number, None)
        if done is not None:
            done()

    def _local(self, event: Event, now: float) -> None:
        """Deliver an event only this node's users hear, after all before it."""
        self._seq = max(self._seq + 1, int(now * 1000) << _SEQ_SHIFT)
        self._subscribers.deliver(Stamped(self._seq, now, event))
