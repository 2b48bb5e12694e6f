"""Flood control as a token bucket, with time passed in.

The server does not drop a flooder's lines: when the bucket is empty it stops
reading that connection until a token returns ("fake lag", as ergo and
InspIRCd do), so the backlog waits in the sender's own TCP buffers.  This
module only does the arithmetic; ``chatd.protocol`` pauses and resumes.
"""

from __future__ import annotations


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
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def full(self, now: float) -> bool:
        """True once the sender has been quiet long enough to burst again."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst
