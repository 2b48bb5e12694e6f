"""Helpers for the chat-tui tests: waiting on conditions, free ports, recorders.

Nothing sleeps for a fixed time: ``wait_until`` polls a condition and fails
at a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from chatd import wire


def free_port() -> int:
    """A loopback port that was free a moment ago (for restart tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(condition: Callable[[], object], timeout: float = 10.0,
                     what: str = "condition") -> None:
    """Poll ``condition`` on the event loop until true, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class RecordingListener:
    """A connection listener that records every event as a tuple."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.stamps: list[str | None] = []  # each message's @<time>, in order

    def connection_made(self) -> None:
        self.events.append(("made",))

    def message_received(self, message: wire.ServerMessage, stamp: str | None = None) -> None:
        self.events.append(("message", message))
        self.stamps.append(stamp)

    def connection_lost(self, reason: str) -> None:
        self.events.append(("lost", reason))

    def reconnecting(self, delay: float, attempt: int, failure: str | None) -> None:
        self.events.append(("reconnecting", attempt))

    def messages(self) -> list[wire.ServerMessage]:
        return [event[1] for event in self.events if event[0] == "message"]  # type: ignore[misc]

    def count(self, kind: str) -> int:
        return sum(1 for event in self.events if event[0] == kind)
