"""The local bus: one order and one stamp per event, and who owns which nick,
with recording subscribers and a clock the test sets."""

from __future__ import annotations

from chatd.bus import LocalBus
from chatd.events import Joined, Parted, Renamed, Said, Stamped

Record = tuple[object, ...]


class FakeClock:
    """The bus's clock: ``now`` until the test moves it, counting its readings."""

    def __init__(self, now: float = 1700000000.0) -> None:
        self.now = now
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now


class Listener:
    """A subscriber recording, into a shared list, each stamped event it hears."""

    def __init__(self, name: str, records: list[Record]) -> None:
        self.name = name
        self.records = records
        self.heard: list[Stamped] = []

    def __call__(self, stamped: Stamped) -> None:
        self.heard.append(stamped)
        self.records.append((self.name, stamped.seq, stamped.event))


def make_bus() -> tuple[LocalBus, FakeClock, list[Record]]:
    """A bus on a fake clock, with one listener ``a`` recording into the returned list."""
    clock = FakeClock()
    bus = LocalBus(clock)
    records: list[Record] = []
    bus.subscribe(Listener("a", records))
    return bus, clock, records


class TestStamps:
    """Each event gets its place in the order and the time, once."""

    def test_seq_counts_from_one(self) -> None:
        """Events are numbered 1, 2, 3... in the order they are published."""
        bus, _, records = make_bus()
        bus.publish(Said("ann", "one"))
        bus.publish(Said("ann", "two"))
        bus.publish(Said("bob", "three"))
        assert records == [("a", 1, Said("ann", "one")), ("a", 2, Said("ann", "two")),
                           ("a", 3, Said("bob", "three"))]

    def test_time_is_read_once_per_event(self) -> None:
        """Each event carries the injected clock's time when published, read exactly once."""
        clock = FakeClock(100.0)
        bus = LocalBus(clock)
        first, second = Listener("a", []), Listener("b", [])
        bus.subscribe(first)
        bus.subscribe(second)
        bus.publish(Said("ann", "one"))
        clock.now = 102.5
        bus.publish(Said("ann", "two"))
        assert [stamped.time for stamped in first.heard] == [100.0, 102.5]
        assert clock.readings == 2

    def test_every_subscriber_gets_the_same_stamp(self) -> None:
        """Every subscriber is handed the one stamped event, not a copy with its own stamp."""
        bus = LocalBus(FakeClock())
        first, second = Listener("a", []), Listener("b", [])
        bus.subscribe(first)
        bus.subscribe(second)
        bus.publish(Said("ann", "hi"))
        assert first.heard[0] is second.heard[0]

    def test_claims_share_the_sequence(self) -> None:
        """Joined, Renamed and Parted from nick changes are numbered with the rest."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        bus.publish(Said("ann", "hi"))
        bus.rename("ann", "anna", lambda ok: None)
        bus.release("anna", "bye")
        assert records == [("a", 1, Joined("ann")), ("a", 2, Said("ann", "hi")),
                           ("a", 3, Renamed("ann", "anna")), ("a", 4, Parted("anna", "bye"))]


class TestDelivery:
    """Who hears an event, and in which order."""

    def test_subscribers_hear_in_subscription_order(self) -> None:
        """Each event reaches every subscriber, in the order they subscribed."""
        bus, _, records = make_bus()
        bus.subscribe(Listener("b", records))
        bus.subscribe(Listener("c", records))
        bus.publish(Said("ann", "hi"))
        assert records == [("a", 1, Said("ann", "hi")), ("b", 1, Said("ann", "hi")),
                           ("c", 1, Said("ann", "hi"))]

    def test_late_subscriber_hears_only_later_events(self) -> None:
        """A subscriber hears nothing published before it subscribed."""
        bus, _, records = make_bus()
        bus.publish(Said("ann", "early"))
        bus.subscribe(Listener("b", records))
        bus.publish(Said("ann", "late"))
        assert records == [("a", 1, Said("ann", "early")), ("a", 2, Said("ann", "late")),
                           ("b", 2, Said("ann", "late"))]

    def test_publish_during_delivery_comes_after_the_current_event(self) -> None:
        """An event a subscriber publishes while hearing another reaches every subscriber
        after the current one, so all hear them in seq order."""
        bus, _, records = make_bus()

        def echo(stamped: Stamped) -> None:
            records.append(("echo", stamped.seq, stamped.event))
            if stamped.event == Said("ann", "ping"):
                bus.publish(Said("bot", "pong"))

        bus.subscribe(echo)
        bus.subscribe(Listener("c", records))
        bus.publish(Said("ann", "ping"))
        assert records == [
            ("a", 1, Said("ann", "ping")), ("echo", 1, Said("ann", "ping")),
            ("c", 1, Said("ann", "ping")),
            ("a", 2, Said("bot", "pong")), ("echo", 2, Said("bot", "pong")),
            ("c", 2, Said("bot", "pong")),
        ]

    def test_bus_delivers_again_after_a_subscriber_raised(self) -> None:
        """A subscriber that raises does not leave the bus stuck queueing later events."""
        bus = LocalBus(FakeClock())
        records: list[Record] = []
        failing = True

        def fragile(stamped: Stamped) -> None:
            if failing:
                raise RuntimeError("boom")
            records.append(("fragile", stamped.seq, stamped.event))

        bus.subscribe(fragile)
        try:
            bus.publish(Said("ann", "one"))
        except RuntimeError:
            pass
        failing = False
        bus.publish(Said("ann", "two"))
        assert records == [("fragile", 2, Said("ann", "two"))]


class TestClaim:
    """Logging in: a nick is owned by one holder, ignoring case."""

    def test_claim_answers_before_joined(self) -> None:
        """A free nick is answered True, then Joined is published."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: records.append(("answer", ok)))
        assert records == [("answer", True), ("a", 1, Joined("ann"))]
        assert bus.nicks == ["ann"]

    def test_claim_of_taken_nick_ignoring_case_is_refused(self) -> None:
        """Claiming a held nick in any case is answered False and publishes nothing."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        records.clear()
        for taken in ("ann", "ANN", "aNn"):
            bus.claim(taken, lambda ok: records.append(("answer", ok)))
        assert records == [("answer", False)] * 3
        assert bus.nicks == ["ann"]

    def test_nicks_in_claim_order(self) -> None:
        """nicks lists every held nick, as spelt when claimed, in the order claimed."""
        bus, _, _ = make_bus()
        for nick in ("cy", "Ann", "bob"):
            bus.claim(nick, lambda ok: None)
        assert bus.nicks == ["cy", "Ann", "bob"]


class TestRename:
    """Changing nick: the new nick must be free, unless only its case changes."""

    def test_rename_to_free_nick(self) -> None:
        """A rename to a free nick answers True, then publishes Renamed, and moves the nick last."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        bus.claim("bob", lambda ok: None)
        records.clear()
        bus.rename("ann", "anna", lambda ok: records.append(("answer", ok)))
        assert records == [("answer", True), ("a", 3, Renamed("ann", "anna"))]
        assert bus.nicks == ["bob", "anna"]

    def test_rename_to_taken_nick_ignoring_case_is_refused(self) -> None:
        """A rename onto another holder's nick, in any case, answers False and publishes nothing."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        bus.claim("bob", lambda ok: None)
        records.clear()
        bus.rename("ann", "BOB", lambda ok: records.append(("answer", ok)))
        assert records == [("answer", False)]
        assert bus.nicks == ["ann", "bob"]

    def test_case_only_rename_is_allowed(self) -> None:
        """Changing only the case of one's own nick answers True and publishes Renamed."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        records.clear()
        bus.rename("ann", "Ann", lambda ok: records.append(("answer", ok)))
        assert records == [("answer", True), ("a", 2, Renamed("ann", "Ann"))]
        assert bus.nicks == ["Ann"]

    def test_old_nick_is_free_after_rename(self) -> None:
        """After a rename the old nick may be claimed by someone else."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        bus.rename("ann", "anna", lambda ok: None)
        records.clear()
        bus.claim("ANN", lambda ok: records.append(("answer", ok)))
        assert records == [("answer", True), ("a", 3, Joined("ANN"))]
        assert bus.nicks == ["anna", "ANN"]


class TestRelease:
    """Leaving frees the nick and tells the room."""

    def test_release_publishes_parted_and_frees_the_nick(self) -> None:
        """release publishes Parted with the reason, and the nick may be claimed again."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        records.clear()
        bus.release("ann", "off to lunch")
        bus.claim("Ann", lambda ok: records.append(("answer", ok)))
        assert records == [("a", 2, Parted("ann", "off to lunch")), ("answer", True),
                           ("a", 3, Joined("Ann"))]
        assert bus.nicks == ["Ann"]

    def test_release_without_reason(self) -> None:
        """A release with no reason publishes Parted without one."""
        bus, _, records = make_bus()
        bus.claim("ann", lambda ok: None)
        records.clear()
        bus.release("ann", None)
        assert records == [("a", 2, Parted("ann", None))]
        assert bus.nicks == []
