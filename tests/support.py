"""Helpers for tests that run the real ``chatd`` program over loopback.

Nothing here sleeps for a fixed time: every wait is for a condition, bounded
by a deadline.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on (\S+):(\d+) \((.*)\)")


def chatd_command() -> list[str]:
    """The installed ``chatd`` script next to this Python, else ``-m chatd``."""
    script = Path(sys.executable).with_name("chatd")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "chatd"]


@dataclass
class RunningServer:
    """A ``chatd`` process and where it listens."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    ports: list[tuple[str, int, str]] = field(default_factory=list)

    def log(self) -> str:
        """What the server logged so far (stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the server and wait for it to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start_chatd(*args: str, listen: tuple[str, ...] = ("tcp:0:interface=127.0.0.1:backlog=1024",),
                env: dict[str, str] | None = None, timeout: float = 20.0,
                command: list[str] | None = None, listeners: int | None = None) -> RunningServer:
    """Start ``chatd`` and wait for its ``listening on`` line(s).

    stderr goes to a file, not a pipe: a server blocked on a full log pipe
    would look like a server bug.  ``command`` replaces the ``chatd`` script
    (e.g. ``[sys.executable, "-m", "chatd"]``); ``listeners`` is how many
    ``listening on`` lines to wait for when not one per ``listen`` entry
    (e.g. with ``--port``/``--host`` and no ``--listen``).
    """
    command = list(command) if command is not None else chatd_command()
    expected = listeners if listeners is not None else max(len(listen), 1)
    for description in listen:
        command += ["--listen", description]
    command += list(args)
    log_file = tempfile.NamedTemporaryFile(prefix="chatd-", suffix=".log", delete=False)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
        cwd=ROOT, env={**os.environ, **(env or {})},
    )
    log_file.close()
    ports: list[tuple[str, int, str]] = []
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    pending = b""
    while len(ports) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            process.kill()
            raise RuntimeError(f"chatd did not start: {Path(log_file.name).read_text()}")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            process.wait(5)
            raise RuntimeError(f"chatd exited {process.returncode}: "
                               f"{Path(log_file.name).read_text()}")
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            match = _LISTENING.search(line.decode())
            if match:
                ports.append((match.group(1), int(match.group(2)), match.group(3)))
    selector.close()
    host, port, _ = ports[0]
    return RunningServer(process, host, port, Path(log_file.name), ports)


class LineClient:
    """A raw socket speaking chatd's protocol the way nc or telnet would."""

    def __init__(self, host: str, port: int, *, newline: bytes = b"\n",
                 timeout: float = 10.0, sock: socket.socket | None = None) -> None:
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.newline = newline
        self.timeout = timeout
        self._buffer = b""

    def send(self, *lines: str) -> None:
        """Send lines, each ended with this client's newline."""
        self.sock.sendall(b"".join(line.encode() + self.newline for line in lines))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> str:
        """The next line from the server, without its CRLF; asserts CRLF."""
        deadline = time.monotonic() + self.timeout
        while b"\r\n" not in self._buffer:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode()

    def read_until(self, prefix: str) -> list[str]:
        """Lines up to and including the first that starts with ``prefix``."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def login(self, nick: str) -> list[str]:
        """Read the greeting, log in, and read through the WHO reply."""
        hello = self.read_line()
        assert hello.startswith("HELLO chatd/"), hello
        self.send(f"NICK {nick}")
        return self.read_until("OK WHO")

    def read_eof(self) -> bytes:
        """Everything until the server closes the connection."""
        data = self._buffer
        self._buffer = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()

    # --- additions for the e2e suites (all bounded by ``self.timeout``) ---

    def read_lines(self, count: int) -> list[str]:
        """The next ``count`` lines from the server."""
        return [self.read_line() for _ in range(count)]

    def sync(self, token: str = "sync") -> list[str]:
        """Every line the server sent before answering ``PING token``.

        The server handles one connection's lines in order and writes a
        reply only after the broadcasts that connection was due, so this
        is the way to say "and nothing else arrived" without sleeping.
        """
        self.send(f"PING {token}")
        lines = self.read_until(f"PONG {token}")
        assert lines[-1] == f"PONG {token}", lines
        return lines[:-1]

    def lines_until_eof(self) -> list[str]:
        """Every remaining line until the server closes; each must end in CRLF."""
        deadline = time.monotonic() + self.timeout
        data = self._buffer
        self._buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no EOF within {self.timeout}s; got {data!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert not data or data.endswith(b"\r\n"), data
        return [line.decode() for line in data.split(b"\r\n")[:-1]]


def wait_until(condition: Callable[[], object], timeout: float = 10.0, *,
               what: str = "the condition", interval: float = 0.01) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds.

    For what cannot be waited on with a socket (a log file, a process).
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        if condition():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout}s")


def rss_kib(pid: int) -> int:
    """The resident memory of a process, from ``/proc`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


def wait_room_empty(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until nobody is logged in, asking WHO from a fresh connection.

    Closing a socket here does not mean the server has seen it close yet;
    a test that reuses a server waits for this before the next one starts.
    """
    probe = LineClient(host, port, timeout=timeout)
    try:
        probe.read_line()
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            probe.send("WHO")
            if probe.read_until("OK WHO")[-1] == "OK WHO 0":
                return
            if time.monotonic() >= deadline:
                break
        raise TimeoutError(f"the room was still not empty after {timeout}s")
    finally:
        probe.close()


_STARTING_ON = re.compile(r"starting on (\d+)")


def start_twistd(*args: str, timeout: float = 20.0) -> RunningServer:
    """Run ``twistd -n chatd ARGS`` from the repository root (where the
    plugin lives), logging to a file, and wait for its port.

    twistd prints no ``listening on`` line; Twisted's own ``... starting on
    PORT`` log line gives the port, so ``--port 0`` works.
    """
    twistd = Path(sys.executable).with_name("twistd")
    log_file = tempfile.NamedTemporaryFile(prefix="twistd-", suffix=".log", delete=False)
    log_file.close()
    log_path = Path(log_file.name)
    command = [str(twistd), "-n", "--pidfile=", f"--logfile={log_path}", "chatd", *args]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, cwd=ROOT)

    def port_or_exit() -> bool:
        return bool(_STARTING_ON.search(log_path.read_text(errors="replace"))) or (
            process.poll() is not None)

    try:
        wait_until(port_or_exit, timeout, what="twistd chatd listening")
    except TimeoutError:
        process.kill()
        process.wait(5)
        raise
    match = _STARTING_ON.search(log_path.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"twistd exited {process.returncode}: {log_path.read_text()}")
    return RunningServer(process, "127.0.0.1", int(match.group(1)), log_path)


# --- the e2e files' shared client helpers ---------------------------------------

Connect = Callable[..., LineClient]


def connecting(shared_server: RunningServer) -> Iterator[Connect]:
    """The body of an e2e file's ``connect`` fixture: open clients
    (``crlf=True`` for telnet-style) to ``server``, by default the shared one;
    every client is closed afterwards, and the test ends only once the shared
    room is empty again."""
    clients: list[LineClient] = []

    def make(server: RunningServer | None = None, *, crlf: bool = False) -> LineClient:
        server = server or shared_server
        client = LineClient(server.host, server.port, newline=b"\r\n" if crlf else b"\n")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    wait_room_empty(shared_server.host, shared_server.port)


def greeted(connect: Connect, server: RunningServer | None = None, *,
            crlf: bool = False) -> LineClient:
    """A connection whose HELLO has been read, not logged in."""
    client = connect(server, crlf=crlf)
    assert client.read_line().startswith("HELLO ")
    return client


def room(connect: Connect, *nicks: str, server: RunningServer | None = None,
         crlf: tuple[str, ...] = ()) -> list[LineClient]:
    """Log ``nicks`` in one after another and read every JOIN, so that each
    client has nothing pending when this returns."""
    clients: list[LineClient] = []
    for nick in nicks:
        client = connect(server, crlf=nick in crlf)
        client.login(nick)
        for earlier in clients:
            assert earlier.read_line() == f"JOIN {nick}"
        clients.append(client)
    return clients
