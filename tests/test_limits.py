"""The clocked limits: flood gate, send queue and deadline on a Twisted ``Clock``."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from chatd.limits import Deadline, FloodGate, SendQueue, TokenBucket


class TestTokenBucket:
    """The arithmetic under the flood gate."""

    def test_burst_then_wait_for_the_next_token(self) -> None:
        """burst tokens are spent at once; then take() says how long until the next."""
        bucket = TokenBucket(2, 4.0, now=0.0)
        assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
        assert bucket.take(0.0) == 0.25
        assert bucket.take(0.125) == 0.125
        assert bucket.take(0.25) == 0.0

    def test_waiting_the_time_asked_always_gives_a_token(self) -> None:
        """After waiting exactly what take() asked, the next take() succeeds,
        even where float rounding leaves the refill a hair under one token."""
        for rate in (5.0, 3.0, 7.0, 0.3):
            bucket = TokenBucket(1, rate, now=0.0)
            now = 0.05  # decimal steps, as a test clock takes them
            for _ in range(200):
                wait = bucket.take(now)
                if wait:
                    now += wait
                    assert bucket.take(now) == 0.0, (rate, now)
                now += 0.05

    def test_tokens_never_exceed_the_burst(self) -> None:
        """A long silence refills the bucket to burst, no more."""
        bucket = TokenBucket(2, 4.0, now=0.0)
        assert bucket.full(100.0)
        assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.25]


class TestFloodGate:
    """Burst, then tokens at the rate, and one notice per lag episode."""

    def test_burst_passes_then_lines_wait_for_tokens_at_the_rate(self) -> None:
        """burst lines pass at once; the next waits 1/rate seconds and starts an episode."""
        clock = Clock()
        gate = FloodGate(3, 2.0, clock)
        assert [gate.admit() for _ in range(3)] == [(0.0, False)] * 3
        assert gate.admit() == (0.5, True)
        assert gate.admit() == (0.5, False)
        clock.advance(0.5)
        assert gate.admit() == (0.0, False)
        assert gate.admit() == (0.5, False)

    def test_tokens_return_at_the_rate(self) -> None:
        """After t seconds below the burst, rate * t more lines pass."""
        clock = Clock()
        gate = FloodGate(10, 4.0, clock)
        for _ in range(10):
            gate.admit()
        clock.advance(1.0)
        assert [gate.admit()[0] for _ in range(5)] == [0.0] * 4 + [0.25]

    def test_episode_lasts_until_the_bucket_is_full_again(self) -> None:
        """Partly refilled, the episode goes on (no second notice); once full, it is over."""
        clock = Clock()
        gate = FloodGate(3, 2.0, clock)
        for _ in range(3):
            gate.admit()
        assert gate.admit()[1] is True
        clock.advance(1.0)  # two of three tokens back: still the same episode
        assert [gate.admit() for _ in range(2)] == [(0.0, False)] * 2
        assert gate.admit() == (0.5, False)
        clock.advance(1.5)  # full again: the next lag is a new episode
        assert [gate.admit() for _ in range(3)] == [(0.0, False)] * 3
        assert gate.admit() == (0.5, True)

    def test_a_waiting_answer_spends_no_token(self) -> None:
        """Being told to wait does not push the next token further away."""
        clock = Clock()
        gate = FloodGate(1, 1.0, clock)
        gate.admit()
        for _ in range(5):
            assert gate.admit()[0] == 1.0
        clock.advance(1.0)
        assert gate.admit() == (0.0, False)


class TestSendQueue:
    """The --max-sendq rule."""

    @pytest.mark.parametrize(("queued", "over"), [(0, False), (4095, False), (4096, False),
                                                  (4097, True), (10**9, True)])
    def test_over_only_past_the_limit(self, queued: int, over: bool) -> None:
        """A queue is over the limit only when it holds more than limit bytes."""
        assert SendQueue(4096).over(queued) is over


class TestDeadline:
    """Something must happen in time."""

    def test_fires_once_after_the_delay(self) -> None:
        """expire is called once, when the time is up, and never again."""
        clock = Clock()
        fired: list[float] = []
        Deadline(clock, 30.0, lambda: fired.append(clock.seconds()))
        clock.advance(29.9)
        assert fired == []
        clock.advance(0.1)
        assert fired == [30.0]
        clock.advance(1000)
        assert fired == [30.0]
        assert clock.getDelayedCalls() == []

    def test_cancel_prevents_it(self) -> None:
        """A cancelled deadline never calls expire and leaves no delayed call."""
        clock = Clock()
        fired: list[None] = []
        deadline = Deadline(clock, 30.0, lambda: fired.append(None))
        deadline.cancel()
        assert clock.getDelayedCalls() == []
        clock.advance(1000)
        assert fired == []

    def test_cancel_after_firing_or_twice_is_harmless(self) -> None:
        """cancel() after expiry, or a second time, does nothing and raises nothing."""
        clock = Clock()
        fired: list[None] = []
        deadline = Deadline(clock, 1.0, lambda: fired.append(None))
        clock.advance(1.0)
        deadline.cancel()
        deadline.cancel()
        assert fired == [None]
