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


def start_chatd(*args: str, listen: tuple[str, ...] = ("tcp:0:interface=127.0.0.1",),
                env: dict[str, str] | None = None, timeout: float = 20.0) -> RunningServer:
    """Start ``chatd`` and wait for its ``listening on`` line(s).

    stderr goes to a file, not a pipe: a server blocked on a full log pipe
    would look like a server bug.
    """
    command = chatd_command()
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
    while len(ports) < len(listen):
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
