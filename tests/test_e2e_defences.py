"""The defences against a real chatd: stalled readers, floods, mass resets."""

from __future__ import annotations

import selectors
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.support import LineClient, RunningServer

pytestmark = pytest.mark.e2e


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def who_count(client: LineClient) -> int:
    client.send("WHO")
    return int(client.read_until("OK WHO")[-1].split()[-1])


def login_many(server: RunningServer, count: int, prefix: str) -> list[socket.socket]:
    """``count`` raw sockets logged in; their greetings left unread."""
    socks = []
    for i in range(count):
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(f"NICK {prefix}{i}\n".encode())
        socks.append(sock)
    return socks


class TestStalledReader:
    def test_a_reader_that_never_reads_is_cut_and_nobody_else_loses_a_line(
            self, chatd_factory) -> None:
        """200 members chat while one never reads: they get every line, the
        server's memory stays bounded, and the stalled one is cut."""
        server = chatd_factory("--socket-sndbuf", "8192")
        stalled_sock = socket.socket()
        stalled_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled_sock.connect((server.host, server.port))
        stalled = LineClient(server.host, server.port, sock=stalled_sock)
        stalled.login("stalled")
        rss_before = rss_kib(server.process.pid)

        talkers = login_many(server, 200, "t")
        payload = "p" * 400
        lines_each = 5
        expected = 200 * lines_each
        buffers = {sock: b"" for sock in talkers}
        said = {sock: 0 for sock in talkers}
        selector = selectors.DefaultSelector()
        for sock in talkers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        logged_in: set[socket.socket] = set()
        to_send: list[socket.socket] = []
        parts: set[bytes] = set()
        deadline = time.monotonic() + 60
        while min(said.values()) < expected and time.monotonic() < deadline:
            in_flight = (len(talkers) - len(to_send)) * lines_each * len(talkers) \
                - sum(said.values())
            if to_send and in_flight <= 10 * lines_each * len(talkers):
                # One talker's lines at a time, and no more than ten talkers'
                # lines unread: this harness reads 200 sockets in one thread,
                # and must not itself become a reader too slow for --max-sendq.
                talker = to_send.pop()
                talker.setblocking(True)
                talker.sendall(f"SAY {payload}\n".encode() * lines_each)
                talker.setblocking(False)
            for key, _ in selector.select(timeout=0 if to_send else 1):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                chunk = ready.recv(1 << 20)
                assert chunk, "server closed a talker"
                data = buffers[ready] + chunk
                *lines, buffers[ready] = data.split(b"\r\n")
                for line in lines:
                    if line.startswith(b"OK WHO") and ready not in logged_in:
                        logged_in.add(ready)
                        if len(logged_in) == len(talkers):
                            to_send = list(talkers)
                    elif line.startswith(b"SAY t"):
                        said[ready] += 1
                    elif line.startswith(b"PART stalled"):
                        parts.add(line)
        assert min(said.values()) == expected
        assert rss_kib(server.process.pid) - rss_before < 64 * 1024
        if not parts:
            # The stalled reader is cut at the first write after its queue
            # passed --max-sendq; one more line makes that write happen.
            for sock in talkers:
                sock.setblocking(True)
            witness = LineClient(server.host, server.port, sock=talkers[0])
            witness._buffer = buffers[talkers[0]]
            witness.send("SAY one more")
            parts.add(witness.read_until("PART stalled")[-1].encode())
        assert parts == {b"PART stalled send queue exceeded"}
        for sock in talkers:
            sock.close()


class TestFlood:
    def test_five_thousand_lines_sent_at_once_all_arrive_in_order(self, chatd_factory) -> None:
        """A client that sends 5,000 lines as fast as it can has every one
        delivered, later (flood lag), and in order."""
        server = chatd_factory("--flood-burst", "10", "--flood-rate", "2500")
        listener = LineClient(server.host, server.port)
        listener.login("listener")
        flooder = LineClient(server.host, server.port)
        flooder.login("flooder")
        listener.read_line()  # JOIN flooder
        count = 5000
        flooder.send_raw(b"".join(b"SAY line %d\n" % i for i in range(count)))
        received: list[int] = []
        while len(received) < count:
            line = listener.read_line()
            if line.startswith("SAY flooder "):
                received.append(int(line.rsplit(" ", 1)[1]))
        assert received == list(range(count))
        flood_notices = [line for line in flooder.read_until(f"SAY flooder line {count - 1}")
                         if line.startswith("ERR flood")]
        assert len(flood_notices) >= 1


class TestResets:
    def test_five_hundred_reset_connections_leave_nobody_in_who(self, chatd_server) -> None:
        """Logged-in connections dropped with RST all leave the room."""
        watcher = LineClient(chatd_server.host, chatd_server.port)
        watcher.login("watcher")
        socks = login_many(chatd_server, 500, "r")
        joins = 0
        while joins < 500:
            joins += watcher.read_line().startswith("JOIN r")
        assert who_count(watcher) == 501
        for sock in socks:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        parts: list[str] = []
        while len(parts) < 500:
            line = watcher.read_line()
            if line.startswith("PART r"):
                parts.append(line)
        assert all(line.endswith(" connection lost") for line in parts)
        assert who_count(watcher) == 1
