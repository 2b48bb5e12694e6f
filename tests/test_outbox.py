"""The outbox: broadcasts coalesced per reactor turn, order kept per member."""

from __future__ import annotations

from collections.abc import Callable

from chatd.outbox import Outbox


class RecordingSink:
    """A member's transport that records every write, in order."""

    def __init__(self, name: str = "sink", on_write: Callable[[bytes], None] | None = None) -> None:
        self.name = name
        self.writes: list[bytes] = []
        self.on_write = on_write

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        if self.on_write is not None:
            on_write, self.on_write = self.on_write, None  # react to the first write only
            on_write(data)

    @property
    def stream(self) -> bytes:
        """Everything written, as the peer would read it."""
        return b"".join(self.writes)

    def __repr__(self) -> str:
        return f"RecordingSink({self.name!r})"


class ManualScheduler:
    """A stand-in for ``callLater(0, fn)``: callbacks wait until ``run_turn``."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []
        self.scheduled = 0

    def __call__(self, fn: Callable[[], None]) -> None:
        self.pending.append(fn)
        self.scheduled += 1

    def run_turn(self) -> None:
        """Run every callback due, including those scheduled while running."""
        while self.pending:
            self.pending.pop(0)()


def build_outbox(*names: str) -> tuple[Outbox, ManualScheduler, list[RecordingSink]]:
    """A scheduled outbox with one recording sink per name, all in the audience."""
    scheduler = ManualScheduler()
    outbox = Outbox(schedule=scheduler)
    sinks = [RecordingSink(name) for name in names]
    for sink in sinks:
        outbox.add(sink)
    return outbox, scheduler, sinks


class TestImmediateMode:
    """Without a scheduler every write happens at once."""

    def test_broadcast_writes_to_everyone_at_once(self) -> None:
        """A broadcast reaches every sink in the audience immediately."""
        outbox = Outbox()
        ann, bob = RecordingSink("ann"), RecordingSink("bob")
        outbox.add(ann)
        outbox.add(bob)
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n")
        assert ann.writes == [b"A\r\n", b"B\r\n"]
        assert bob.writes == [b"A\r\n", b"B\r\n"]

    def test_send_interleaves_in_call_order(self) -> None:
        """Direct sends and broadcasts arrive in exactly the order they were made."""
        outbox = Outbox()
        ann, bob = RecordingSink("ann"), RecordingSink("bob")
        outbox.add(ann)
        outbox.add(bob)
        outbox.broadcast(b"A\r\n")
        outbox.send(ann, b"X\r\n")
        outbox.broadcast(b"B\r\n")
        assert ann.writes == [b"A\r\n", b"X\r\n", b"B\r\n"]
        assert bob.writes == [b"A\r\n", b"B\r\n"]

    def test_sink_outside_audience_gets_sends_not_broadcasts(self) -> None:
        """A sink never added hears direct sends only."""
        outbox = Outbox()
        stranger = RecordingSink("stranger")
        outbox.broadcast(b"A\r\n")
        outbox.send(stranger, b"X\r\n")
        assert stranger.writes == [b"X\r\n"]

    def test_removed_sink_hears_no_more(self) -> None:
        """After remove, broadcasts skip the sink, and len counts the audience."""
        outbox = Outbox()
        ann, bob = RecordingSink("ann"), RecordingSink("bob")
        outbox.add(ann)
        outbox.add(bob)
        outbox.remove(bob)
        outbox.remove(bob)
        outbox.broadcast(b"A\r\n")
        assert (ann.writes, bob.writes, len(outbox)) == ([b"A\r\n"], [], 1)

    def test_flush_is_a_no_op(self) -> None:
        """flush with nothing pending writes nothing."""
        outbox = Outbox()
        ann = RecordingSink("ann")
        outbox.add(ann)
        outbox.flush()
        assert ann.writes == []


class TestScheduledMode:
    """With a scheduler, broadcasts wait for the end of the turn."""

    def test_broadcasts_wait_for_the_turn_to_end(self) -> None:
        """Nothing is written until the scheduled flush runs, then each member gets one write."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.broadcast(b"C\r\n")
        assert ann.writes == bob.writes == []
        scheduler.run_turn()
        assert ann.writes == [b"A\r\nB\r\nC\r\n"]
        assert bob.writes == [b"A\r\nB\r\nC\r\n"]

    def test_one_flush_is_scheduled_per_turn(self) -> None:
        """Many broadcasts in one turn schedule a single flush; the next turn schedules anew."""
        outbox, scheduler, _ = build_outbox("ann")
        for _ in range(5):
            outbox.broadcast(b"A\r\n")
        assert scheduler.scheduled == 1
        scheduler.run_turn()
        outbox.broadcast(b"B\r\n")
        assert scheduler.scheduled == 2

    def test_later_turn_writes_only_new_lines(self) -> None:
        """A second turn writes only that turn's broadcasts."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\n", b"B\r\n"]

    def test_send_with_nothing_pending_is_written_at_once(self) -> None:
        """A direct send with no broadcast pending is written as is, immediately."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.send(ann, b"X\r\n")
        assert ann.writes == [b"X\r\n"]
        assert scheduler.scheduled == 0

    def test_direct_sends_keep_per_member_order(self) -> None:
        """Sends interleaved with broadcasts reach their member after the broadcasts before them."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.send(ann, b"X\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.send(ann, b"Y\r\n")
        outbox.send(bob, b"Z\r\n")
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\nX\r\n", b"B\r\nY\r\n", b"C\r\n"]
        assert bob.writes == [b"A\r\nB\r\nZ\r\n", b"C\r\n"]

    def test_member_caught_up_by_send_gets_nothing_more_at_flush(self) -> None:
        """A member whose send already carried the whole log is not written again at flush."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.send(ann, b"X\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\nX\r\n"]
        assert bob.writes == [b"A\r\n"]

    def test_send_to_non_member_skips_the_log(self) -> None:
        """A connection outside the audience gets its send alone, not the pending broadcasts."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        stranger = RecordingSink("stranger")
        outbox.broadcast(b"A\r\n")
        outbox.send(stranger, b"X\r\n")
        scheduler.run_turn()
        assert stranger.writes == [b"X\r\n"]
        assert ann.writes == [b"A\r\n"]

    def test_member_added_mid_turn_hears_only_later_broadcasts(self) -> None:
        """A member added after a broadcast in the same turn hears only what came after it."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n")
        cy = RecordingSink("cy")
        outbox.add(cy)
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\nB\r\n"]
        assert cy.writes == [b"B\r\n"]

    def test_member_added_mid_turn_send_carries_only_later_broadcasts(self) -> None:
        """A direct send to a member added mid-turn carries none of the earlier broadcasts."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n")
        cy = RecordingSink("cy")
        outbox.add(cy)
        outbox.send(cy, b"X\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.send(cy, b"Y\r\n")
        scheduler.run_turn()
        assert cy.writes == [b"X\r\n", b"B\r\nY\r\n"]
        assert ann.writes == [b"A\r\nB\r\n"]

    def test_member_added_before_any_broadcast_hears_the_whole_turn(self) -> None:
        """A member added while the log is empty hears every broadcast of the turn."""
        outbox, scheduler, _ = build_outbox()
        cy = RecordingSink("cy")
        outbox.add(cy)
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        assert cy.writes == [b"A\r\n"]

    def test_member_removed_mid_turn_loses_what_was_pending(self) -> None:
        """A member removed mid-turn is written nothing more, not even what it was due."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.send(bob, b"X\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.remove(bob)
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert bob.writes == [b"A\r\nX\r\n"]
        assert ann.writes == [b"A\r\nB\r\nC\r\n"]
        assert len(outbox) == 1

    def test_members_at_mark_zero_share_one_bytes_object(self) -> None:
        """Every member due the whole log is written the very same bytes object."""
        outbox, scheduler, sinks = build_outbox("ann", "bob", "cy")
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        first = sinks[0].writes[0]
        assert first == b"A\r\nB\r\n"
        assert all(sink.writes[0] is first for sink in sinks)

    def test_members_at_the_same_mark_share_their_tail(self) -> None:
        """Members due the same tail of the log share one bytes object for it."""
        outbox, scheduler, (ann, bob, cy) = build_outbox("ann", "bob", "cy")
        outbox.broadcast(b"A\r\n")
        outbox.send(ann, b"X\r\n")
        outbox.send(bob, b"Y\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert ann.writes[-1] == b"B\r\nC\r\n"
        assert ann.writes[-1] is bob.writes[-1]
        assert cy.writes == [b"A\r\nB\r\nC\r\n"]

    def test_explicit_flush_writes_now_and_scheduled_flush_then_does_nothing(self) -> None:
        """Flushing by hand mid-turn writes the log; the scheduled flush later writes nothing twice."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n")
        outbox.flush()
        assert ann.writes == [b"A\r\n"]
        scheduler.run_turn()
        assert ann.writes == [b"A\r\n"]


class TestReentrancy:
    """Writes that cause more output while the outbox is flushing."""

    def test_broadcast_during_flush_goes_out_next_flush_in_order(self) -> None:
        """A broadcast made from inside a flush reaches everyone after the flush's own lines."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        ann.on_write = lambda data: outbox.broadcast(b"B\r\n")
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\n", b"B\r\n"]
        assert bob.writes == [b"A\r\n", b"B\r\n"]
        assert scheduler.scheduled == 2

    def test_removal_during_flush_skips_the_removed_member(self) -> None:
        """A member removed by another member's write during a flush is not written to."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        ann.on_write = lambda data: outbox.remove(bob)
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"A\r\n"]
        assert bob.writes == []

    def test_send_during_flush_comes_after_due_broadcasts(self) -> None:
        """A direct send made from inside a flush reaches its member after the broadcasts it was due."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        ann.on_write = lambda data: outbox.send(bob, b"X\r\n")
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        assert bob.stream == b"A\r\nX\r\n"


class TestCatchUp:
    """``catch_up``: a sink gets what it is due now, so it can leave for another outbox."""

    def test_catch_up_writes_the_pending_share(self) -> None:
        """The sink gets this turn's broadcasts so far, and the flush does not repeat them."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n")
        outbox.catch_up(ann)
        assert ann.writes == [b"A\r\nB\r\n"] and bob.writes == []
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert ann.stream == b"A\r\nB\r\nC\r\n"
        assert bob.stream == b"A\r\nB\r\nC\r\n"

    def test_catch_up_with_nothing_due_writes_nothing(self) -> None:
        """No pending broadcast, or all of it already had: no write, not even an empty one."""
        outbox, _, (ann,) = build_outbox("ann")
        outbox.catch_up(ann)
        assert ann.writes == []
        outbox.broadcast(b"A\r\n")
        outbox.catch_up(ann)
        outbox.catch_up(ann)
        assert ann.writes == [b"A\r\n"]

    def test_catch_up_then_remove_loses_nothing(self) -> None:
        """Caught up and removed in one turn, the sink has had exactly what was broadcast
        while it was in the audience."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.catch_up(ann)
        outbox.remove(ann)
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        assert ann.stream == b"A\r\n" and bob.stream == b"A\r\nB\r\n"

    def test_contains_is_membership_of_the_audience(self) -> None:
        """``in`` tells whether a sink hears this outbox's broadcasts."""
        outbox, _, (ann,) = build_outbox("ann")
        stranger = RecordingSink("stranger")
        assert ann in outbox and stranger not in outbox
        outbox.remove(ann)
        assert ann not in outbox


class TestBroadcastSkip:
    """``broadcast(data, skip)``: one sink (an IRC speaker) is left out of one line, and
    only of that line; its order is kept."""

    def test_skipped_sink_misses_only_that_line_at_once(self) -> None:
        """Without a scheduler, the skipped sink gets what came before and after, in order;
        the others get every line."""
        outbox = Outbox()
        ann, bob = RecordingSink("ann"), RecordingSink("bob")
        outbox.add(ann)
        outbox.add(bob)
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n", skip=ann)
        outbox.broadcast(b"C\r\n")
        assert ann.writes == [b"A\r\n", b"C\r\n"]
        assert bob.writes == [b"A\r\n", b"B\r\n", b"C\r\n"]

    def test_skipped_sink_gets_a_later_send_in_order_at_once(self) -> None:
        """Without a scheduler, a send after the skipped line reaches the skipped sink next."""
        outbox = Outbox()
        ann, bob = RecordingSink("ann"), RecordingSink("bob")
        outbox.add(ann)
        outbox.add(bob)
        outbox.broadcast(b"B\r\n", skip=ann)
        outbox.send(ann, b"X\r\n")
        assert ann.writes == [b"X\r\n"] and bob.writes == [b"B\r\n"]

    def test_skipped_sink_keeps_its_order_within_a_turn(self) -> None:
        """With a scheduler, the skipped sink gets what it was due before the skipped line
        first, then what was broadcast after it; the others get the whole turn in one write."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n", skip=ann)
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert ann.stream == b"A\r\nC\r\n"
        assert bob.writes == [b"A\r\nB\r\nC\r\n"]

    def test_send_after_a_skipped_line_comes_after_what_was_due(self) -> None:
        """A reply to the skipped sink, mid-turn, follows what it was due and precedes what
        is broadcast later; the skipped line is nowhere in its stream."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n")
        outbox.broadcast(b"B\r\n", skip=ann)
        outbox.send(ann, b"X\r\n")
        outbox.broadcast(b"C\r\n")
        scheduler.run_turn()
        assert ann.stream == b"A\r\nX\r\nC\r\n"
        assert bob.stream == b"A\r\nB\r\nC\r\n"

    def test_two_skips_of_one_sink_in_a_turn(self) -> None:
        """Two lines that skip the same sink, with one between them, leave it exactly the
        line between."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        outbox.broadcast(b"A\r\n", skip=ann)
        outbox.broadcast(b"B\r\n")
        outbox.broadcast(b"C\r\n", skip=ann)
        scheduler.run_turn()
        assert ann.stream == b"B\r\n"
        assert bob.stream == b"A\r\nB\r\nC\r\n"

    def test_skips_of_different_sinks_in_a_turn(self) -> None:
        """Each speaker misses its own line only."""
        outbox, scheduler, (ann, bob, cy) = build_outbox("ann", "bob", "cy")
        outbox.broadcast(b"A\r\n", skip=ann)
        outbox.broadcast(b"B\r\n", skip=bob)
        scheduler.run_turn()
        assert (ann.stream, bob.stream, cy.stream) == (b"B\r\n", b"A\r\n", b"A\r\nB\r\n")

    def test_skipping_a_sink_outside_the_audience_skips_nobody(self) -> None:
        """A ``skip`` that is not in the audience changes nothing, and gets nothing."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        stranger = RecordingSink("stranger")
        outbox.broadcast(b"A\r\n", skip=stranger)
        scheduler.run_turn()
        assert ann.writes == [b"A\r\n"] and stranger.writes == []

    def test_the_only_member_skipped_hears_the_next_line(self) -> None:
        """When the skipped sink is the whole audience, nothing is written for that line,
        and the next line reaches it."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n", skip=ann)
        scheduler.run_turn()
        assert ann.writes == []
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        assert ann.writes == [b"B\r\n"]

    def test_member_added_after_a_skip_hears_only_later_lines(self) -> None:
        """A member that joins after a skipped line, in the same turn, hears only what came
        after it joined."""
        outbox, scheduler, (ann,) = build_outbox("ann")
        outbox.broadcast(b"A\r\n", skip=ann)
        cy = RecordingSink("cy")
        outbox.add(cy)
        outbox.broadcast(b"B\r\n")
        scheduler.run_turn()
        assert (ann.stream, cy.stream) == (b"B\r\n", b"B\r\n")

    def test_skip_made_during_a_flush_still_skips(self) -> None:
        """A broadcast that skips a sink, made from inside a flush (a write that causes
        output), still leaves that sink out, and the others get it after the flush's lines."""
        outbox, scheduler, (ann, bob) = build_outbox("ann", "bob")
        bob.on_write = lambda data: outbox.broadcast(b"B\r\n", skip=ann)
        outbox.broadcast(b"A\r\n")
        scheduler.run_turn()
        assert ann.stream == b"A\r\n"
        assert bob.stream == b"A\r\nB\r\n"

    def test_skip_counts_deliveries_to_the_others_only(self) -> None:
        """The stats count one delivery per sink written, not the skipped one."""
        outbox = Outbox()
        ann, bob, cy = RecordingSink("ann"), RecordingSink("bob"), RecordingSink("cy")
        for sink in (ann, bob, cy):
            outbox.add(sink)
        outbox.broadcast(b"A\r\n", skip=ann)
        assert (outbox.stats.deliveries, outbox.stats.bytes_out) == (2, 6)
