"""Extra members for the anchors run: IRC clients (or idle v1 members) that sit
in the room and read everything, while ``../shared/anchors`` measures chatd
under its load generator (issue 11: B and MAX with 100 IRC users in the room).

    .venv/bin/python benchmarks/audience.py --dialect irc --port 16700 --clients 100 \\
        --minutes 20 &
    ANCHORS_WORK=/tmp/chatd-anchors CHATD_BIN=$PWD/.venv/bin/chatd \\
        CHATD_BENCH_ARGS="--no-flood-limit --irc tcp:16700:interface=127.0.0.1" \\
        ../shared/anchors/run_anchors.sh --servers chatd --scenarios B MAX

The anchors start a fresh chatd for every run, so the audience keeps trying
its port: whenever a chatd listens there it connects ``--clients`` members,
registers them (IRC: ``NICK``/``USER`` as irssi does; v1: ``NICK``) and reads
all they are sent until that chatd goes away, then waits for the next.  One
thread, one selector, non-blocking sockets; it stops by itself after
``--minutes`` and prints what its members received.  ``--dialect line`` is
the comparison: a room of the same size whose extra members speak v1, so
the difference between the two runs is what the IRC dialect itself costs.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import time


def opening(dialect: str, index: int) -> bytes:
    """What one member sends on connecting."""
    if dialect == "irc":
        nick = f"irc{index}"
        return f"CAP LS 302\r\nNICK {nick}\r\nUSER {nick} 0 * :audience\r\nCAP END\r\n".encode()
    return f"NICK idle{index}\n".encode()


class Audience:
    """``clients`` members of one dialect, connected while a chatd listens."""

    def __init__(self, dialect: str, port: int, clients: int) -> None:
        self.dialect, self.port, self.clients = dialect, port, clients
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.received = 0
        self.rooms = 0  # chatd processes joined

    def join(self) -> bool:
        """Connect every member; False if nothing listens yet."""
        try:
            first = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        except OSError:
            return False
        members = [first]
        try:
            for _ in range(self.clients - 1):
                members.append(socket.create_connection(("127.0.0.1", self.port), timeout=1))
        except OSError:
            for member in members:
                member.close()
            return False
        for index, member in enumerate(members):
            member.sendall(opening(self.dialect, index))
            member.setblocking(False)
            self.selector.register(member, selectors.EVENT_READ)
        self.sockets = members
        self.rooms += 1
        return True

    def leave(self) -> None:
        for member in self.sockets:
            self.selector.unregister(member)
            member.close()
        self.sockets = []

    def read(self, timeout: float) -> None:
        """Read what arrived; the room is gone once any member sees EOF."""
        gone = False
        for key, _ in self.selector.select(timeout):
            member = key.fileobj
            assert isinstance(member, socket.socket)
            try:
                data = member.recv(1 << 18)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                gone = True
                continue
            self.received += len(data)
            if self.dialect == "irc" and b"PING " in data:  # answer a server's PING
                for line in data.split(b"\r\n"):
                    if line.startswith(b"PING "):
                        member.sendall(b"PONG " + line[5:] + b"\r\n")
        if gone:
            self.leave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialect", choices=("irc", "line"), default="irc")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=20.0)
    args = parser.parse_args()
    audience = Audience(args.dialect, args.port, args.clients)
    stop = time.monotonic() + args.minutes * 60
    while time.monotonic() < stop:
        if not audience.sockets:
            if not audience.join():
                time.sleep(0.05)
                continue
        audience.read(0.5)
    audience.leave()
    print(f"audience: {args.clients} {args.dialect} members joined {audience.rooms} chatd "
          f"processes and received {audience.received} bytes", flush=True)


if __name__ == "__main__":
    main()
