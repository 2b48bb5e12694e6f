"""A real ``redis-server`` for the tests of a room on many nodes.

Each ``RedisServer`` is Debian's ``redis-server`` on a free loopback port,
with no persistence (``--save '' --appendonly no``), started and stopped by
pid; a test may kill it, pause it or restart it on the same port.  Without
the program the tests skip and say why (``make test`` installs it when it
runs as root).  Nothing here sleeps for a fixed time.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import RunningServer

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = Path(REDIS_SERVER).exists()
needs_redis = pytest.mark.skipif(
    not HAVE_REDIS,
    reason="redis-server is not installed (Debian's redis-server; `make test` installs it "
           "when run as root)")
# Short leases, so a dead node's users leave within seconds in the tests.
FAST_LEASE = ("--redis-lease", "3", "--redis-beat", "1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1, restartable on its port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.dir = tempfile.mkdtemp(prefix="chatd-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.command("PING") == "+PONG":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def command(self, *words: str, timeout: float = 5.0) -> str:
        """One command over a fresh connection; the first line of the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout) as sock:
            payload = f"*{len(words)}\r\n" + "".join(
                f"${len(word.encode())}\r\n{word}\r\n" for word in words)
            sock.sendall(payload.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode()

    def kill(self) -> None:
        """SIGKILL: the room's data is gone with it (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty redis-server for one test."""
    if not HAVE_REDIS:
        pytest.skip("redis-server is not installed (Debian's redis-server; `make test` "
                    "installs it when run as root)")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def nodes(redis_server: RedisServer,
          chatd_factory: Callable[..., RunningServer]) -> Callable[..., RunningServer]:
    """Start chatd nodes sharing ``redis_server`` (extra arguments as for
    ``start_chatd``); each is stopped when the test ends."""

    def start(*args: str, **kwargs: object) -> RunningServer:
        return chatd_factory("--redis", redis_server.url, "--no-flood-limit", *FAST_LEASE,
                             *args, **kwargs)

    return start
