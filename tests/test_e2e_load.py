"""Many users at once: the real chatd with 200 raw-socket clients.

One thread drives every socket through ``selectors``, so the test measures
the server, not 200 Python threads.  Every wait is for a condition, with a
deadline.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support import RunningServer

pytestmark = pytest.mark.e2e

USERS = 200
DEADLINE = 30.0  # seconds for each phase; a healthy run takes well under one


class Crowd:
    """``count`` non-blocking clients, each collecting the lines it receives."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.lines: list[list[str]] = []
        self._pending: list[bytes] = []
        self.closed: list[bool] = []

    def connect(self, count: int, batch: int = 25) -> None:
        """Open ``count`` connections, ``batch`` at a time, each up to its HELLO.

        Batches keep the server's accept queue (backlog 50) from overflowing,
        which would cost a one-second SYN retry.
        """
        for start in range(0, count, batch):
            new = range(start, min(start + batch, count))
            for index in new:
                sock = socket.create_connection((self.host, self.port), timeout=DEADLINE)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.selector.register(sock, selectors.EVENT_READ, index)
                self.socks.append(sock)
                self.lines.append([])
                self._pending.append(b"")
                self.closed.append(False)
            self.pump(lambda: all(self.lines[i] for i in new), "HELLO for every connection")  # noqa: B023 -- pump runs now, inside the loop

    def send(self, index: int, *lines: str) -> None:
        """Send lines from one client (small writes: they fit the socket buffer)."""
        data = b"".join(line.encode() + b"\n" for line in lines)
        sock = self.socks[index]
        sock.setblocking(True)
        try:
            sock.sendall(data)
        finally:
            sock.setblocking(False)

    def pump(self, done: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Read from every socket until ``done()``; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        for _ in range(10_000_000):
            if done():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in self.selector.select(remaining):
                self._read(key.data)
        raise TimeoutError(f"{what} did not happen within {timeout}s")

    def _read(self, index: int) -> None:
        try:
            chunk = self.socks[index].recv(1 << 18)
        except BlockingIOError:
            return
        if not chunk:
            self.closed[index] = True
            self.selector.unregister(self.socks[index])
            return
        data = self._pending[index] + chunk
        *complete, self._pending[index] = data.split(b"\r\n")
        self.lines[index].extend(line.decode() for line in complete)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.selector.close()


@pytest.fixture
def crowd(chatd_server: RunningServer) -> Iterator[Crowd]:
    """A crowd of clients of a fresh chatd, closed after the test."""
    clients = Crowd(chatd_server.host, chatd_server.port)
    yield clients
    clients.close()


def nick(index: int) -> str:
    return f"user{index:03d}"


def log_everyone_in(crowd: Crowd) -> list[int]:
    """Send every NICK at once and wait for each login to be heard by all
    who were in before it; each client's WHO count, by client."""
    for index in range(USERS):
        crowd.send(index, f"NICK {nick(index)}")

    def who_count(index: int) -> int | None:
        for line in crowd.lines[index]:
            if line.startswith("OK WHO "):
                return int(line.split()[2])
        return None

    def logged_in() -> bool:
        # The n-th to log in (its WHO says n) hears JOIN for itself and
        # for everyone after it: USERS - n + 1 lines.
        for index in range(USERS):
            count = who_count(index)
            if count is None:
                return False
            joins = sum(line.startswith("JOIN ") for line in crowd.lines[index])
            if joins < USERS - count + 1:
                return False
        return True

    crowd.pump(logged_in, f"{USERS} logins heard by everyone")
    return [who_count(index) or 0 for index in range(USERS)]


class TestCrowd:
    def test_two_hundred_users_hear_every_line(self, crowd: Crowd) -> None:
        """200 users log in at once, each says one line, and every user hears all 200 lines."""
        crowd.connect(USERS)
        assert all(lines[0].startswith("HELLO chatd/") for lines in crowd.lines)
        counts = log_everyone_in(crowd)
        assert sorted(counts) == list(range(1, USERS + 1))
        for index in range(USERS):
            assert crowd.lines[index][1:3] == [f"OK NICK {nick(index)}", f"JOIN {nick(index)}"]
            joins = [line for line in crowd.lines[index] if line.startswith("JOIN ")]
            assert len(joins) == USERS - counts[index] + 1
            # The last to log in saw everyone in its USERS lines.
            if counts[index] == USERS:
                users = [n for line in crowd.lines[index] if line.startswith("USERS ")
                         for n in line.split()[1:]]
                assert sorted(users) == [nick(i) for i in range(USERS)]
        marks = [len(lines) for lines in crowd.lines]

        for index in range(USERS):
            crowd.send(index, f"SAY hello from {nick(index)}")

        def said(index: int) -> list[str]:
            return [line for line in crowd.lines[index][marks[index]:]
                    if line.startswith("SAY ")]

        crowd.pump(lambda: all(len(said(i)) >= USERS for i in range(USERS)),
                   f"{USERS} SAY lines at every client")
        expected = sorted(f"SAY {nick(i)} hello from {nick(i)}" for i in range(USERS))
        for index in range(USERS):
            assert sorted(said(index)) == expected
            assert crowd.lines[index][marks[index]:] == said(index), "only SAY lines expected"
        assert not any(crowd.closed)

    def test_each_senders_lines_keep_their_order(self, crowd: Crowd) -> None:
        """With 200 users each sending a burst of 5 lines, every user hears every sender's lines in the order sent."""
        burst = 5
        crowd.connect(USERS)
        log_everyone_in(crowd)
        marks = [len(lines) for lines in crowd.lines]
        for index in range(USERS):
            crowd.send(index, *(f"SAY {n}" for n in range(burst)))

        def said(index: int) -> list[str]:
            return crowd.lines[index][marks[index]:]

        crowd.pump(lambda: all(len(said(i)) >= USERS * burst for i in range(USERS)),
                   f"{USERS * burst} SAY lines at every client")
        for index in range(USERS):
            heard: dict[str, list[int]] = {}
            for line in said(index):
                verb, sender, number = line.split(" ")
                assert verb == "SAY"
                heard.setdefault(sender, []).append(int(number))
            assert heard == {nick(i): list(range(burst)) for i in range(USERS)}
