"""The fan-out: each event encoded once per dialect and handed to that
dialect's outbox, with counting encoders, recording recipients and a
scheduler whose turns the test runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chatd.events import Joined, Said, Stamped, Told, Walled
from chatd.fanout import Encoder, Fanout

Record = tuple[object, ...]


@dataclass(eq=False)
class Recipient:
    """A connection as the fan-out sees it: a dialect, and writes recorded in a shared list."""

    name: str
    dialect: str
    records: list[Record]

    def write(self, data: bytes) -> None:
        self.records.append((self.name, data))

    def __repr__(self) -> str:
        return f"Recipient({self.name!r}, {self.dialect!r})"


@dataclass
class CountingEncoder:
    """An encoder that tags its bytes with its dialect and records every call."""

    dialect: str
    calls: list[Record]

    def __call__(self, stamped: Stamped) -> bytes:
        self.calls.append((self.dialect, stamped.seq))
        return f"{self.dialect}:{stamped.seq};".encode()


class ManualScheduler:
    """``callLater(0, fn)`` stand-in: callbacks run only on ``run_turn``."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, fn: Callable[[], None]) -> None:
        self.pending.append(fn)

    def run_turn(self) -> None:
        while self.pending:
            self.pending.pop(0)()


@dataclass
class Rig:
    """A fan-out over two dialects, ``line`` and ``web``, and what it did."""

    calls: list[Record] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    everyone: list[Recipient] = field(default_factory=list)
    scheduler: ManualScheduler = field(default_factory=ManualScheduler)
    fanout: Fanout = field(init=False)

    def __post_init__(self) -> None:
        encoders: dict[str, Encoder] = {name: CountingEncoder(name, self.calls)
                                        for name in ("line", "web")}
        self.fanout = Fanout(encoders, lambda: self.everyone, schedule=self.scheduler)

    def connect(self, name: str, dialect: str = "line") -> Recipient:
        """A connection, not logged in: it hears only WALL."""
        recipient = Recipient(name, dialect, self.records)
        self.everyone.append(recipient)
        return recipient

    def login(self, name: str, dialect: str = "line") -> Recipient:
        """A connection in the audience of broadcasts."""
        recipient = self.connect(name, dialect)
        self.fanout.add(recipient)
        return recipient

    def take(self) -> tuple[list[Record], list[Record]]:
        """(encoder calls, writes) since the last take."""
        taken = (list(self.calls), list(self.records))
        self.calls.clear()
        self.records.clear()
        return taken


def stream(writes: list[Record]) -> bytes:
    """The bytes of ``(name, data)`` writes, joined in order, as one peer reads them."""
    chunks = [record[1] for record in writes if isinstance(record[1], bytes)]
    assert len(chunks) == len(writes), writes
    return b"".join(chunks)


def said(seq: int) -> Stamped:
    return Stamped(seq, 0.0, Said("ann", f"line {seq}"))


class TestBroadcast:
    """Broadcasts to everyone logged in."""

    def test_encoded_once_per_dialect(self) -> None:
        """One event to recipients in two dialects is encoded once for each dialect, and
        each recipient gets its own dialect's bytes at the turn's end."""
        rig = Rig()
        rig.login("ann")
        rig.login("bob", "web")
        rig.login("cy")
        rig.login("dee", "web")
        rig.fanout.broadcast(said(1))
        rig.scheduler.run_turn()
        calls, writes = rig.take()
        assert calls == [("line", 1), ("web", 1)]
        assert sorted(writes) == [("ann", b"line:1;"), ("bob", b"web:1;"),
                                  ("cy", b"line:1;"), ("dee", b"web:1;")]

    def test_dialect_with_empty_audience_is_not_encoded(self) -> None:
        """A dialect nobody logged in speaks costs no encoding."""
        rig = Rig()
        rig.login("ann")
        rig.connect("lurker", "web")
        rig.fanout.broadcast(said(1))
        rig.scheduler.run_turn()
        assert rig.take() == ([("line", 1)], [("ann", b"line:1;")])

    def test_broadcasts_coalesce_per_turn(self) -> None:
        """A turn's broadcasts reach each member in one write, in order."""
        rig = Rig()
        rig.login("ann")
        rig.fanout.broadcast(said(1))
        rig.fanout.broadcast(said(2))
        assert rig.records == []
        rig.scheduler.run_turn()
        assert rig.take() == ([("line", 1), ("line", 2)], [("ann", b"line:1;line:2;")])

    def test_removed_member_hears_no_more(self) -> None:
        """After remove a member gets nothing, not even what it was still due."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.fanout.broadcast(said(1))
        rig.fanout.remove(ann)
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("bob", b"line:1;")]


class TestWall:
    """WALL reaches every connection."""

    def test_wall_flushes_pending_broadcasts_first(self) -> None:
        """A WALL writes the turn's pending broadcasts to their members before itself."""
        rig = Rig()
        rig.login("ann")
        rig.fanout.broadcast(said(1))
        rig.fanout.wall(Stamped(2, 0.0, Walled("*", "fire")))
        assert rig.take() == ([("line", 1), ("line", 2)],
                              [("ann", b"line:1;"), ("ann", b"line:2;")])
        rig.scheduler.run_turn()
        assert rig.take() == ([], [])

    def test_wall_reaches_everyone_logged_in_or_not(self) -> None:
        """Every connection from ``everyone`` gets the WALL in its dialect, encoded once each."""
        rig = Rig()
        rig.login("ann")
        rig.connect("lurker")
        rig.connect("webby", "web")
        rig.login("bob", "web")
        rig.fanout.wall(Stamped(1, 0.0, Walled("ann", "fire")))
        assert rig.take() == ([("line", 1), ("web", 1)],
                              [("ann", b"line:1;"), ("lurker", b"line:1;"),
                               ("webby", b"web:1;"), ("bob", b"web:1;")])


class TestTellAndSend:
    """Bytes for one member come after the broadcasts it is owed."""

    def test_tell_goes_after_owed_broadcasts(self) -> None:
        """A TELL mid-turn reaches its target after the broadcasts it was due; the
        others get those broadcasts at the turn's end."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("bob")
        rig.fanout.broadcast(said(1))
        rig.fanout.tell(bob, Stamped(2, 0.0, Told("ann", "bob", "psst")))
        assert rig.take() == ([("line", 1), ("line", 2)], [("bob", b"line:1;line:2;")])
        rig.scheduler.run_turn()
        assert rig.take() == ([], [("ann", b"line:1;")])

    def test_tell_is_encoded_in_the_targets_dialect(self) -> None:
        """A TELL is encoded by its target's dialect only."""
        rig = Rig()
        rig.login("ann")
        bob = rig.login("bob", "web")
        rig.fanout.tell(bob, Stamped(1, 0.0, Told("ann", "bob", "psst")))
        assert rig.take() == ([("web", 1)], [("bob", b"web:1;")])

    def test_send_goes_after_owed_broadcasts(self) -> None:
        """A reply sent mid-turn follows the broadcasts its member was due, and only once."""
        rig = Rig()
        ann = rig.login("ann")
        rig.fanout.broadcast(Stamped(1, 0.0, Joined("ann")))
        rig.fanout.send(ann, b"reply;")
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("ann", b"line:1;reply;")]

    def test_send_to_a_connection_not_logged_in_is_written_at_once(self) -> None:
        """A reply to a connection outside the audience is written straight away."""
        rig = Rig()
        rig.login("ann")
        lurker = rig.connect("lurker")
        rig.fanout.broadcast(said(1))
        rig.fanout.send(lurker, b"PONG;")
        assert rig.take()[1] == [("lurker", b"PONG;")]


class TestMove:
    """``move``: a member switches wording (protocol 1.1's TIME ON and OFF) and loses
    and repeats nothing, even with a turn's broadcasts pending."""

    def test_move_mid_turn_writes_what_is_due_first(self) -> None:
        """What the member was due in the old wording is written at the move; what comes
        after reaches it in the new wording at the turn's end; the others see no change."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.fanout.broadcast(said(1))
        rig.fanout.move(ann, "web")
        assert rig.take() == ([("line", 1)], [("ann", b"line:1;")])
        rig.fanout.broadcast(said(2))
        rig.scheduler.run_turn()
        calls, writes = rig.take()
        assert calls == [("line", 2), ("web", 2)]
        assert sorted(writes) == [("ann", b"web:2;"), ("bob", b"line:1;line:2;")]

    def test_reply_after_move_follows_in_the_new_outbox(self) -> None:
        """A reply after the move (``OK TIME ON``) comes after everything due before it,
        and before the broadcasts after it."""
        rig = Rig()
        ann = rig.login("ann")
        rig.fanout.broadcast(said(1))
        rig.fanout.move(ann, "web")
        rig.fanout.send(ann, b"OK TIME ON;")
        rig.fanout.broadcast(said(2))
        rig.scheduler.run_turn()
        assert stream(rig.take()[1]) == b"line:1;OK TIME ON;web:2;"

    def test_move_into_a_wording_with_its_own_pending_turn(self) -> None:
        """Joining a wording whose outbox already holds this turn's broadcasts (for its
        other members) repeats none of them: the mover already had them."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("cy", "web")
        rig.fanout.broadcast(said(1))
        rig.fanout.broadcast(said(2))
        rig.fanout.move(ann, "web")
        rig.fanout.broadcast(said(3))
        rig.scheduler.run_turn()
        writes = rig.take()[1]
        assert [data for name, data in writes if name == "ann"] == [b"line:1;line:2;", b"web:3;"]
        assert [data for name, data in writes if name == "cy"] == [b"web:1;web:2;web:3;"]

    def test_move_there_and_back_in_one_turn(self) -> None:
        """TIME ON then TIME OFF in one turn: every broadcast exactly once, in order."""
        rig = Rig()
        ann = rig.login("ann")
        rig.fanout.broadcast(said(1))
        rig.fanout.move(ann, "web")
        rig.fanout.broadcast(said(2))
        rig.fanout.move(ann, "line")
        rig.fanout.broadcast(said(3))
        rig.scheduler.run_turn()
        assert stream(rig.take()[1]) == b"line:1;web:2;line:3;"

    def test_move_to_the_same_wording_repeats_nothing(self) -> None:
        """TIME ON when already on: what is due is written once, and nothing again."""
        rig = Rig()
        ann = rig.login("ann", "web")
        rig.fanout.broadcast(said(1))
        rig.fanout.move(ann, "web")
        rig.fanout.broadcast(said(2))
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("ann", b"web:1;"), ("ann", b"web:2;")]

    def test_move_with_nothing_due_writes_nothing(self) -> None:
        """A move with no broadcast pending makes no (empty) write."""
        rig = Rig()
        ann = rig.login("ann")
        rig.fanout.move(ann, "web")
        assert rig.take() == ([], [])
        assert ann.dialect == "web"

    def test_move_before_login_only_changes_the_wording(self) -> None:
        """A connection not in the audience just speaks the new wording: its later login,
        a WALL and a TELL all use it."""
        rig = Rig()
        rig.login("bob")
        ann = rig.connect("ann")
        rig.fanout.broadcast(said(1))
        rig.fanout.move(ann, "web")
        assert ann.dialect == "web" and rig.take()[1] == []
        rig.fanout.add(ann)
        rig.fanout.broadcast(said(2))
        rig.fanout.tell(ann, Stamped(3, 0.0, Told("bob", "ann", "psst")))
        rig.scheduler.run_turn()
        assert [data for name, data in rig.take()[1] if name == "ann"] == [b"web:2;web:3;"]
        rig.fanout.wall(Stamped(4, 0.0, Walled("*", "fire")))
        assert ("ann", b"web:4;") in rig.take()[1]

    def test_removed_after_move_leaves_the_new_outbox(self) -> None:
        """A member that moved and then leaves hears nothing more in either wording."""
        rig = Rig()
        ann, _ = rig.login("ann"), rig.login("bob")
        rig.fanout.move(ann, "web")
        rig.fanout.remove(ann)
        rig.fanout.broadcast(said(1))
        rig.scheduler.run_turn()
        assert rig.take() == ([("line", 1)], [("bob", b"line:1;")])


def echo_rig() -> Rig:
    """A rig over ``line`` (which echoes a speaker's line) and ``irc`` (which does not)."""
    rig = Rig()
    encoders: dict[str, Encoder] = {name: CountingEncoder(name, rig.calls) for name in ("line", "irc")}
    rig.fanout = Fanout(encoders, lambda: rig.everyone, schedule=rig.scheduler, no_echo=("irc",))
    return rig


class TestNoEcho:
    """``broadcast(stamped, speaker)``: a speaker whose dialect is in ``no_echo`` (IRC)
    is not sent its own line; every other speaker is."""

    def test_speaker_in_a_no_echo_dialect_is_left_out(self) -> None:
        """An IRC speaker does not hear its line; another IRC member and the line members do."""
        rig = echo_rig()
        ann, _, _ = rig.login("ann", "irc"), rig.login("cy", "irc"), rig.login("bob")
        rig.fanout.broadcast(said(1), ann)
        rig.scheduler.run_turn()
        calls, writes = rig.take()
        assert calls == [("line", 1), ("irc", 1)]
        assert sorted(writes) == [("bob", b"line:1;"), ("cy", b"irc:1;")]

    def test_speaker_in_an_echoing_dialect_hears_its_line(self) -> None:
        """A line speaker is sent its own line back, as protocol v1 says."""
        rig = echo_rig()
        bob, _ = rig.login("bob"), rig.login("ann", "irc")
        rig.fanout.broadcast(said(1), bob)
        rig.scheduler.run_turn()
        assert sorted(rig.take()[1]) == [("ann", b"irc:1;"), ("bob", b"line:1;")]

    def test_no_speaker_is_everyone(self) -> None:
        """Without a speaker (a JOIN, a PART) everyone hears the event, IRC members too."""
        rig = echo_rig()
        rig.login("ann", "irc")
        rig.login("bob")
        rig.fanout.broadcast(Stamped(1, 0.0, Joined("cy")))
        rig.scheduler.run_turn()
        assert sorted(rig.take()[1]) == [("ann", b"irc:1;"), ("bob", b"line:1;")]

    def test_without_no_echo_every_speaker_hears_its_line(self) -> None:
        """A fan-out built without ``no_echo`` echoes every speaker, whatever its dialect."""
        rig = Rig()
        ann = rig.login("ann", "web")
        rig.fanout.broadcast(said(1), ann)
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("ann", b"web:1;")]

    def test_skipped_speaker_keeps_its_order(self) -> None:
        """The IRC speaker gets what was broadcast before and after its line, in order, and
        a reply sent between them in its place."""
        rig = echo_rig()
        ann, _ = rig.login("ann", "irc"), rig.login("bob")
        rig.fanout.broadcast(said(1))
        rig.fanout.broadcast(said(2), ann)
        rig.fanout.send(ann, b"reply;")
        rig.fanout.broadcast(said(3))
        rig.scheduler.run_turn()
        writes = rig.take()[1]
        assert stream([record for record in writes if record[0] == "ann"]) == b"irc:1;reply;irc:3;"
        assert stream([record for record in writes if record[0] == "bob"]) == b"line:1;line:2;line:3;"

    def test_speaker_moved_to_another_no_echo_wording_is_still_left_out(self) -> None:
        """After a move between two no-echo wordings (server-time on), the speaker is still
        left out of its own line, in its new outbox."""
        rig = Rig()
        encoders: dict[str, Encoder] = {name: CountingEncoder(name, rig.calls)
                                        for name in ("line", "irc", "irc+time")}
        rig.fanout = Fanout(encoders, lambda: rig.everyone, schedule=rig.scheduler,
                            no_echo=("irc", "irc+time"))
        ann, _ = rig.login("ann", "irc"), rig.login("cy", "irc+time")
        rig.fanout.move(ann, "irc+time")
        rig.fanout.broadcast(said(1), ann)
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("cy", b"irc+time:1;")]

    def test_a_speaker_no_longer_in_the_audience_is_nobody_to_skip(self) -> None:
        """A speaker already removed (it left right after speaking) changes nothing for the others."""
        rig = echo_rig()
        ann, _ = rig.login("ann", "irc"), rig.login("cy", "irc")
        rig.fanout.remove(ann)
        rig.fanout.broadcast(said(1), ann)
        rig.scheduler.run_turn()
        assert rig.take()[1] == [("cy", b"irc:1;")]
