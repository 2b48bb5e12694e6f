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
registers them (IRC: ``CAP LS``, ``NICK``, ``USER``, ``CAP END`` as WeeChat
does; v1: ``NICK``) and reads all they are sent until that chatd goes away,
then waits for the next.  chatd sends IRC clients no PING, so there is
nothing to answer.  One
thread, one selector, non-blocking sockets with big receive buffers, drained
ten times a second with ``MSG_TRUNC`` (no copy): the audience must cost the machine (two cores, shared
with chatd and the load generator) next to nothing, or its own CPU would be
what the figures show.  It stops by itself after ``--minutes`` and prints
what its members received.  ``--dialect line`` is
the comparison: a room of the same size whose extra members speak v1, so
the difference between the two runs is what the IRC dialect itself costs.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import time

RCVBUF = 4 << 20  # bytes a member's socket holds between two reads
READ_EVERY = 0.1  # seconds


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
        self.sink = bytearray(RCVBUF)  # never read: MSG_TRUNC leaves it as it is
        self.rooms = 0  # chatd processes joined

    def connect(self) -> socket.socket:
        member = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        member.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        member.settimeout(1)
        member.connect(("127.0.0.1", self.port))
        return member

    def join(self) -> bool:
        """Connect every member; False if nothing listens yet."""
        try:
            first = self.connect()
        except OSError:
            return False
        members = [first]
        try:
            for _ in range(self.clients - 1):
                members.append(self.connect())
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

    def read(self) -> None:
        """Read what arrived by now; the room is gone once any member sees EOF."""
        gone = False
        for key, _ in self.selector.select(0):
            member = key.fileobj
            assert isinstance(member, socket.socket)
            try:
                # MSG_TRUNC: Linux drops what a TCP socket holds without
                # copying it out, the cheapest way to read it all.
                count = member.recv_into(self.sink, RCVBUF, socket.MSG_TRUNC)
            except BlockingIOError:
                continue
            except OSError:
                count = 0
            if not count:
                gone = True
                continue
            self.received += count
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
        time.sleep(READ_EVERY)
        audience.read()
    audience.leave()
    print(f"audience: {args.clients} {args.dialect} members joined {audience.rooms} chatd "
          f"processes and received {audience.received} bytes, using "
          f"{time.process_time():.1f} s of CPU", flush=True)


if __name__ == "__main__":
    main()
