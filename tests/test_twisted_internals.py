"""Guards on the Twisted internals chatd reads (``chatd/transports/_twisted.py``).

--max-sendq works only while Twisted keeps its write buffer in
``FileDescriptor.dataBuffer``/``offset``/``_tempDataLen``.  An upgrade that
moves them must fail here, loudly, instead of leaving every stalled reader
connected: real loopback sockets, a Twisted script per reactor in a
subprocess (no global reactor runs inside pytest), and the real ``chatd``.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import abstract
from twisted.internet.testing import MemoryReactor

from chatd.limits import SendQueue
from chatd.transports._twisted import (
    EagerWriter,
    TwistedInternalsChanged,
    buffered_transport,
    queued_bytes,
)
from tests.support import ROOT, LineClient, RunningServer
from tests.test_e2e_program import self_signed

# One accepted connection whose peer never reads, written to once a turn
# through chatd's own writer (eager send, then Twisted's buffer) until the
# send-queue rule cuts it.  Prints one JSON object.
STALLED_PEER_SCRIPT = r"""
import json, socket, sys

name = sys.argv[1]
if name == "epoll":
    from twisted.internet import epollreactor as chosen
elif name == "poll":
    from twisted.internet import pollreactor as chosen
elif name == "select":
    from twisted.internet import selectreactor as chosen
else:
    from twisted.internet import asyncioreactor as chosen
chosen.install()

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Factory, Protocol

from chatd.limits import SendQueue
from chatd.transports import _twisted

LIMIT = 64 * 1024
CHUNK = b"x" * 16384
MAX_TURNS = 500
report = {"reactor": type(reactor).__name__, "timed_out": False}


class Stalled(Protocol):
    def connectionMade(self):
        t = self.transport
        t.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        report["is_tcp_connection"] = isinstance(t, tcp.Connection)
        report["holder_is_transport"] = _twisted.buffered_transport(t) is t
        report["plain_socket_is_its_socket"] = _twisted.plain_socket(t) is t.socket
        report["queued_at_start"] = _twisted.queued_bytes(t)
        self.cuts = 0
        self.queued = []
        self.write = _twisted.EagerWriter(t, SendQueue(LIMIT), self).write
        reactor.callLater(0, self.turn)

    def send_queue_exceeded(self):
        self.cuts += 1

    def turn(self):
        t = self.transport
        self.queued.append(_twisted.queued_bytes(t))
        if self.cuts or len(self.queued) > MAX_TURNS:
            before = _twisted.queued_bytes(t)
            t.write(b"y" * 1000)
            report["queued_growth_per_1000_written"] = _twisted.queued_bytes(t) - before
            before = _twisted.queued_bytes(t)
            self.write(CHUNK)
            report["queued_growth_after_cut"] = _twisted.queued_bytes(t) - before
            report["cuts"] = self.cuts
            report["queued"] = self.queued
            t.abortConnection()
            reactor.stop()
            return
        self.write(CHUNK)
        reactor.callLater(0.002, self.turn)


def give_up():
    report["timed_out"] = True
    reactor.stop()


factory = Factory.forProtocol(Stalled)
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
client = socket.socket()
client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
client.connect(("127.0.0.1", port.getHost().port))  # and never recv()
reactor.callLater(20, give_up)
reactor.run()
client.close()
print(json.dumps(report))
"""

REACTORS = ["epoll", "poll", "select", "asyncio"]


def run_stalled_peer(reactor: str) -> dict[str, Any]:
    """Run the stalled-peer script on ``reactor``; its JSON report."""
    done = subprocess.run([sys.executable, "-c", STALLED_PEER_SCRIPT, reactor],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


class TestRealTcpTransport:
    """What ``_twisted`` reads, on a real connected loopback TCP transport."""

    @pytest.mark.parametrize("reactor", REACTORS)
    def test_queue_is_found_and_grows_until_the_cut(self, reactor: str) -> None:
        """The tcp transport holds its own buffer, queued_bytes rises above 0 once the
        peer stops reading, and the writer cuts once past the limit and then writes nothing."""
        report = run_stalled_peer(reactor)
        assert not report["timed_out"], report
        assert report["is_tcp_connection"] is True
        assert report["holder_is_transport"] is True
        assert report["plain_socket_is_its_socket"] is True
        queued: list[int] = report["queued"]
        assert report["queued_at_start"] == 0
        assert max(queued) > 0
        assert report["cuts"] == 1, f"never cut in {len(queued)} turns: {queued}"
        assert queued[-1] > 64 * 1024
        assert report["queued_growth_per_1000_written"] == 1000
        assert report["queued_growth_after_cut"] == 0


class NoTempDataLen(abstract.FileDescriptor):
    """A FileDescriptor as a Twisted that renamed ``_tempDataLen`` would build it."""

    def __init__(self) -> None:  # skips FileDescriptor.__init__, which sets _tempDataLen
        pass


class NoOwner:
    """Nobody to tell of a cut (the writer is never built here)."""

    def send_queue_exceeded(self) -> None:
        pass


class Wrapping:
    """A wrapping transport (as TLS is) over another."""

    def __init__(self, transport: object) -> None:
        self.transport = transport


class TestChangedInternals:
    """A FileDescriptor without the fields read from Twisted 26.10 fails loudly."""

    def test_buffered_transport_raises(self) -> None:
        """buffered_transport raises TwistedInternalsChanged rather than answering None."""
        with pytest.raises(TwistedInternalsChanged, match="_tempDataLen"):
            buffered_transport(NoTempDataLen())

    def test_raises_through_a_wrapper(self) -> None:
        """The check also fires for the FileDescriptor under a wrapping transport."""
        with pytest.raises(TwistedInternalsChanged):
            buffered_transport(Wrapping(NoTempDataLen()))

    def test_queued_bytes_and_writer_raise(self) -> None:
        """Neither queued_bytes nor building a connection's writer quietly reads 0."""
        with pytest.raises(TwistedInternalsChanged):
            queued_bytes(NoTempDataLen())
        with pytest.raises(TwistedInternalsChanged):
            EagerWriter(NoTempDataLen(), SendQueue(1024), NoOwner())

    def test_an_intact_file_descriptor_is_its_own_buffer(self) -> None:
        """A FileDescriptor built normally is found as the holder, with nothing queued."""
        descriptor = abstract.FileDescriptor(reactor=MemoryReactor())
        assert buffered_transport(descriptor) is descriptor
        assert buffered_transport(Wrapping(descriptor)) is descriptor
        assert queued_bytes(descriptor) == 0


def stalled_reader(server: RunningServer, port: int, cafile: Path | None) -> LineClient:
    """A client with a small receive buffer that logs in as ``stalled`` and
    then never reads (over TLS when ``cafile`` is given)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((server.host, port))
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
    client = LineClient(server.host, port, sock=sock)
    client.login("stalled")
    return client


@pytest.mark.e2e
class TestMaxSendqInTheRealProgram:
    """--max-sendq against the real chatd, plain and TLS."""

    @pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
    def test_a_reader_that_never_reads_is_cut(
            self, chatd_factory: Callable[..., RunningServer], tmp_path: Path,
            tls: bool) -> None:
        """With a small --max-sendq, a logged-in member that never reads is cut while
        another floods the room, and the others read PART stalled send queue exceeded."""
        limits = ("--max-sendq", "8192", "--socket-sndbuf", "4096",
                  "--flood-burst", "1000", "--flood-rate", "100000")
        cafile: Path | None = None
        listen = ["tcp:0:interface=127.0.0.1"]
        if tls:
            key, cafile = self_signed(tmp_path)
            listen.append(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cafile}")
        server = chatd_factory(*limits, listen=tuple(listen))
        ports = {description.split(":")[0]: port for _, port, description in server.ports}
        stalled = stalled_reader(server, ports["ssl" if tls else "tcp"], cafile)
        talker = LineClient(server.host, ports["tcp"])
        talker.login("talker")
        batch = ["SAY " + "x" * 900] * 10
        seen: list[str] = []
        deadline = time.monotonic() + 30
        for turn in range(300):  # at most ~2.7 MB to a reader holding tens of kB
            talker.send(*batch)
            seen = talker.sync(f"t{turn}")
            if "PART stalled send queue exceeded" in seen or time.monotonic() > deadline:
                break
        assert "PART stalled send queue exceeded" in seen, server.log()[-2000:]
        talker.send("WHO")
        assert talker.read_until("OK WHO")[-2:] == ["USERS talker", "OK WHO 1"]
        stalled.close()
        talker.close()
