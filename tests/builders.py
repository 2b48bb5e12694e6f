"""Builders for tests of the pure core: a node on a clock the test advances,
and connections to it over a recording fake link (no sockets, no Twisted
transport).  Sane defaults, one line of setup per test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from twisted.internet.testing import MemoryReactorClock

from chatd.config import Config
from chatd.connection import Connection
from chatd.node import Node


class RecordingLog:
    """The node's logger, recording each event's format and fields."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, format: str, **kwargs: Any) -> None:
        self.events.append((format, kwargs))

    @property
    def formats(self) -> list[str]:
        return [format for format, _ in self.events]


@dataclass
class FakeLink:
    """A transport as a connection sees it, recording everything done to it."""

    writes: list[bytes] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    peer: str = "10.1.2.3:40000"

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")


def make_node(*, log: RecordingLog | None = None, **settings: Any) -> Node:
    """A node on a fresh ``MemoryReactorClock``; flood control is off unless
    asked for, so a packet of many lines is handled at once."""
    settings.setdefault("flood_rate", 0.0)
    return Node(Config(**settings), MemoryReactorClock(), log=log)


class LineReader:
    """What a test peer read, as lines, once the reactor turn has ended: shared
    by the peers over a ``FakeLink`` here and over a ``StringTransport``."""

    _read = 0

    def written(self) -> bytes:
        """Every byte the server has written to this peer so far."""
        raise NotImplementedError

    def end_turn(self) -> None:
        """Let the reactor finish its turn (the outbox flushes then)."""
        raise NotImplementedError

    def send(self, *lines: str | bytes) -> None:
        raise NotImplementedError

    def lines(self) -> list[str]:
        """Lines written to the peer since the last call, once the turn has ended."""
        self.end_turn()
        data = self.written()[self._read:]
        self._read += len(data)
        assert data == b"" or data.endswith(b"\r\n"), data
        return data.decode().split("\r\n")[:-1]

    def login(self, nick: str) -> Self:
        """Log in and read everything up to the WHO reply."""
        self.lines()
        self.send(f"NICK {nick}")
        assert self.lines()[0] == f"OK NICK {nick}"
        return self


class Peer(LineReader):
    """One connection to a node over a ``FakeLink``."""

    _next_port = 40000
    newline = b"\n"  # what ends each line ``send`` sends

    def __init__(self, node: Node, host: str = "10.1.2.3", *, door: str = "tcp") -> None:
        Peer._next_port += 1
        self.node = node
        self.link = FakeLink(peer=f"{host}:{Peer._next_port}")
        self.connection: Connection = node.connect(self.link, host=host, door=door)

    @property
    def clock(self) -> MemoryReactorClock:
        return self.node.clock  # type: ignore[return-value]

    def feed(self, data: bytes) -> None:
        """Bytes arriving from the peer, in one packet."""
        self.connection.data_received(data)

    def send(self, *lines: str | bytes) -> None:
        """Whole lines, each ended by ``newline``, in one packet."""
        self.feed(b"".join((line if isinstance(line, bytes) else line.encode()) + self.newline
                           for line in lines))

    def written(self) -> bytes:
        return b"".join(self.link.writes)

    def end_turn(self) -> None:
        self.clock.advance(0)

    def lose(self) -> None:
        """The transport reports the connection gone."""
        self.connection.lost()


def connect(node: Node, host: str = "10.1.2.3") -> Peer:
    """A new connection with its greeting already read."""
    peer = Peer(node, host)
    peer.lines()
    return peer
