"""Per-connection limits as small clocked objects, for any transport to drive.

Each limit does only arithmetic on an injected clock; the transport adapter
does what it decides, through four verbs: pause reading, resume reading,
abort, and ask how many bytes are queued.

* ``FloodGate``: ``burst`` lines at once, then ``rate`` lines a second.  The
  server does not drop a flooder's lines: when the bucket is empty it stops
  reading that connection until a token returns ("fake lag", as ergo and
  InspIRCd do), so the backlog waits in the sender's own TCP buffers.
* ``SendQueue``: a reader that lets more than ``limit`` bytes pile up is cut.
* ``Deadline``: something must happen (a NICK) within ``seconds``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class DelayedCall(Protocol):
    """What ``callLater`` returns (``twisted.internet.interfaces.IDelayedCall``)."""

    def cancel(self) -> None: ...
    def active(self) -> bool: ...


class Clock(Protocol):
    """The part of Twisted's ``IReactorTime`` the limits use; a
    ``MemoryReactorClock`` in tests, the reactor in the server."""

    def seconds(self) -> float: ...
    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> DelayedCall: ...


# Float slack: after waiting exactly the time ``take`` asked for, the refill
# can come out a hair under one token (0.9999999999999998), which asked for a
# further wait of ~1e-17 s: one more timer on a reactor, and on a test clock
# stepped in decimal steps a wait that never ended.
_SLACK = 1e-9


class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines per second."""

    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Spend a token: 0.0 if one was there, else the seconds to wait
        before one will be (nothing is spent then)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0 - _SLACK:
            self.tokens = max(0.0, tokens - 1.0)
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def full(self, now: float) -> bool:
        """True once the sender has been quiet long enough to burst again."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


class FloodGate:
    """A token bucket per connection, and its lag *episodes*: the flooder is
    told once per episode that its lines are delayed (not once per line)."""

    __slots__ = ("rate", "_bucket", "_clock", "_noted")

    def __init__(self, burst: int, rate: float, clock: Clock) -> None:
        self.rate = rate
        self._clock = clock
        self._bucket = TokenBucket(burst, rate, clock.seconds())
        self._noted = False

    def admit(self) -> tuple[float, bool]:
        """Let one line through: ``(0.0, False)``; or the seconds to pause
        reading, and whether this starts an episode the peer should hear of."""
        now = self._clock.seconds()
        if self._noted and self._bucket.full(now):
            self._noted = False  # quiet long enough: the episode is over
        wait = self._bucket.take(now)
        if not wait:
            return 0.0, False
        first, self._noted = not self._noted, True
        return wait, first


class SendQueue:
    """Protocol v1 limits: a connection whose unsent bytes pass ``limit`` is cut.

    Measured before each write: what is still queued then is what the kernel
    refused in earlier turns, whereas one turn's coalesced output may
    legitimately be large for a reader that keeps up.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def over(self, queued: int) -> bool:
        return queued > self.limit


class Deadline:
    """Call ``expire`` after ``seconds`` unless cancelled first."""

    __slots__ = ("_call",)

    def __init__(self, clock: Clock, seconds: float, expire: Callable[[], None]) -> None:
        self._call: DelayedCall | None = clock.callLater(seconds, self._fire, expire)

    def _fire(self, expire: Callable[[], None]) -> None:
        self._call = None
        expire()

    def cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
