"""The Twisted edge: framing bytes into lines and writing replies, with an
in-memory transport and a reactor clock the tests advance."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from chatd import __version__
from chatd.config import Config
from chatd.transports.tcp import ChatFactory, ChatProtocol
from tests.builders import LineReader

TOO_LONG = "ERR line-too-long lines are limited to {} bytes; this one was dropped"


def make_factory(**settings: Any) -> ChatFactory:
    """A factory on a fresh MemoryReactorClock; flood control is off unless asked for,
    so that a packet of many lines is handled at once."""
    settings.setdefault("flood_rate", 0.0)
    return ChatFactory(Config(**settings), reactor=MemoryReactorClock())


class Peer(LineReader):
    """One connection to the factory over a StringTransport."""

    _next_port = 40000

    def __init__(self, factory: ChatFactory) -> None:
        Peer._next_port += 1
        self.factory = factory
        self.reactor: MemoryReactorClock = factory.reactor
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "10.1.2.3", Peer._next_port))
        protocol = factory.buildProtocol(self.transport.getPeer())
        assert isinstance(protocol, ChatProtocol)
        self.protocol: ChatProtocol = protocol
        self.protocol.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        """Bytes arriving from the peer, in one packet."""
        self.protocol.dataReceived(data)

    def send(self, *lines: str | bytes) -> None:
        """Whole LF-terminated lines, in one packet."""
        self.feed(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n"
                           for line in lines))

    def written(self) -> bytes:
        return self.transport.value()

    def end_turn(self) -> None:
        self.reactor.advance(0)

    def lose(self) -> None:
        """The TCP connection drops."""
        self.protocol.connectionLost(Failure(ConnectionDone()))


def connect(factory: ChatFactory) -> Peer:
    """A new connection with its greeting already read."""
    peer = Peer(factory)
    peer.lines()
    return peer


class TestGreetingAndLineEnds:
    """The greeting and the two line endings."""

    def test_hello_is_the_first_line(self) -> None:
        """A new connection is sent HELLO chatd/<version> before anything else, at once."""
        peer = Peer(make_factory())
        value = peer.transport.value()
        assert value.startswith(f"HELLO chatd/{__version__} ".encode())
        assert value.count(b"\r\n") == 1 and value.endswith(b"\r\n")

    @pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
    def test_lf_and_crlf_lines_are_handled_alike(self, ending: bytes) -> None:
        """A line ending in LF or CRLF logs in the same way, and replies end in CRLF."""
        peer = connect(make_factory())
        peer.feed(b"NICK ann" + ending)
        assert peer.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]

    def test_line_split_byte_by_byte(self) -> None:
        """Lines fed one byte per packet are handled once each newline arrives."""
        peer = connect(make_factory())
        data = b"NICK ann\r\nPING x y\n"
        for index in range(data.index(b"\n")):
            peer.feed(data[index:index + 1])
            assert peer.lines() == []
        for index in range(data.index(b"\n"), len(data)):
            peer.feed(data[index:index + 1])
        assert peer.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1", "PONG x y"]

    def test_many_lines_in_one_packet(self) -> None:
        """Every line of a coalesced packet is handled, in order."""
        peer = connect(make_factory())
        peer.feed(b"NICK ann\nSAY one\r\n\nSAY two\nPING p\r\nWHO\n")
        assert peer.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1",
                                "SAY ann one", "SAY ann two", "PONG p", "USERS ann", "OK WHO 1"]

    def test_telnet_negotiation_is_ignored(self) -> None:
        """IAC option negotiation before and inside a line does not disturb it."""
        peer = connect(make_factory())
        peer.feed(b"\xff\xfd\x03\xff\xfb\x18NICK a\xff\xf1nn\r\n")
        assert peer.lines()[0] == "OK NICK ann"


class TestLongLines:
    """Lines over the limit."""

    def test_long_line_then_good_line_in_one_packet(self) -> None:
        """An over-long line answers ERR line-too-long, and the good line after it is handled."""
        peer = connect(make_factory())
        peer.feed(b"SAY " + b"x" * 2000 + b"\nPING ok\n")
        assert peer.lines() == [TOO_LONG.format(1024), "PONG ok"]
        assert not peer.transport.disconnecting

    def test_long_line_without_newline_is_refused_once_and_bounded(self) -> None:
        """A megabyte with no newline gets one ERR, the buffer stays bounded, and its tail is
        discarded rather than handled as a line."""
        factory = make_factory()
        peer = connect(factory)
        chunk = b"x" * 4096
        for _ in range(256):
            peer.feed(chunk)
            assert peer.protocol.connection.buffered <= factory.config.max_line + 1
        peer.feed(b"still the same line\nPING ok\n")
        assert peer.lines() == [TOO_LONG.format(1024), "PONG ok"]
        assert not peer.transport.disconnecting

    def test_long_line_tail_with_next_line_in_later_packet(self) -> None:
        """After an unfinished over-long line, the line after its newline is handled normally."""
        peer = connect(make_factory(max_line=16))
        peer.feed(b"SAY " + b"y" * 40)
        peer.feed(b"y" * 40)
        peer.feed(b"yy\nNICK ann\n")
        assert peer.lines() == [TOO_LONG.format(16), "OK NICK ann", "JOIN ann", "USERS ann",
                                "OK WHO 1"]

    @pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
    def test_line_at_the_limit_is_accepted(self, ending: bytes) -> None:
        """A line of exactly max_line bytes, without its line end, is handled."""
        peer = connect(make_factory(max_line=16))
        line = b"PING " + b"z" * 11
        assert len(line) == 16
        peer.feed(line + ending)
        assert peer.lines() == ["PONG " + "z" * 11]

    def test_line_over_the_limit_with_crlf_is_refused(self) -> None:
        """A CRLF line one byte over max_line answers ERR line-too-long."""
        peer = connect(make_factory(max_line=16))
        peer.feed(b"PING " + b"z" * 12 + b"\r\n")
        assert peer.lines() == [TOO_LONG.format(16)]

    def test_line_over_the_limit_with_lf_is_refused(self) -> None:
        """An LF line one byte over max_line answers ERR line-too-long."""
        peer = connect(make_factory(max_line=16))
        peer.feed(b"PING " + b"z" * 12 + b"\n")
        assert peer.lines() == [TOO_LONG.format(16)]


class TestContent:
    """What is relayed."""

    def test_invalid_utf8_is_refused_and_connection_stays(self) -> None:
        """A line that is not UTF-8 answers ERR bad-encoding and the next line still works."""
        peer = connect(make_factory())
        peer.feed(b"NICK \xc3\x28\nPING ok\n")
        assert peer.lines() == ["ERR bad-encoding lines must be UTF-8", "PONG ok"]
        assert not peer.transport.disconnecting

    def test_escape_sequences_never_reach_others(self) -> None:
        """ESC, C1 and other controls in a SAY are stripped from what every member receives."""
        factory = make_factory()
        ann, bob = connect(factory).login("ann"), connect(factory).login("bob")
        ann.lines()
        bob.lines()
        start = len(bob.transport.value())
        ann.feed(b"SAY \x1b[31mred\x1b[0m \x1b]0;title\x07\xc2\x9b2J\x7f\r\n")
        assert bob.lines() == ["SAY ann [31mred[0m ]0;title2J"]
        relayed = bob.transport.value()[start:]
        assert not any(byte < 0x20 and byte not in b"\t\r\n" for byte in relayed)
        assert b"\x7f" not in relayed and b"\xc2\x9b" not in relayed

    def test_broadcasts_wait_for_the_reactor_turn(self) -> None:
        """A SAY reaches the others only when the reactor runs the outbox flush."""
        factory = make_factory()
        ann, bob = connect(factory).login("ann"), connect(factory).login("bob")
        ann.lines()
        before = len(bob.transport.value())
        ann.send("SAY hi")
        assert len(bob.transport.value()) == before
        assert bob.lines() == ["SAY ann hi"]


class TestClosing:
    """QUIT, dropped connections and shutdown."""

    def test_quit_disconnects_and_ignores_later_lines(self) -> None:
        """QUIT says BYE, loses the connection, and later lines in its packet are not handled."""
        factory = make_factory()
        ann, bob = connect(factory).login("ann"), connect(factory).login("bob")
        ann.lines()
        ann.feed(b"QUIT gone\nSAY after quit\nNICK zed\n")
        assert ann.transport.disconnecting
        assert ann.lines() == ["BYE gone"]
        assert bob.lines() == ["PART ann gone"]
        assert factory.room.nicks == ["bob"]

    def test_dropped_connection_parts_with_connection_lost(self) -> None:
        """A logged-in user whose connection drops is announced as PART <nick> connection lost."""
        factory = make_factory()
        ann, bob = connect(factory).login("ann"), connect(factory).login("bob")
        ann.lines()
        bob.lose()
        assert ann.lines() == ["PART bob connection lost"]
        assert bob.protocol.connection not in list(factory.node.hub)
        assert len(factory.node.hub) == 1
        assert factory.room.nicks == ["ann"]

    def test_dropped_connection_not_logged_in_is_silent(self) -> None:
        """A connection that drops before logging in sends nobody anything."""
        factory = make_factory()
        ann = connect(factory).login("ann")
        lurker = connect(factory)
        ann.lines()
        lurker.lose()
        assert ann.lines() == []

    def test_loss_after_quit_parts_once(self) -> None:
        """The transport's loss after QUIT does not announce the user a second time."""
        factory = make_factory()
        ann, bob = connect(factory).login("ann"), connect(factory).login("bob")
        ann.lines()
        bob.send("QUIT bye")
        bob.lose()
        assert ann.lines() == ["PART bob bye"]

    def test_shutdown_walls_and_says_bye_to_everyone(self) -> None:
        """shutdown() sends WALL * server shutting down then BYE server shutting down to every
        connection, logged in or not, and closes them all."""
        factory = make_factory()
        peers = [connect(factory).login("ann"), connect(factory).login("bob"), connect(factory)]
        for peer in peers:
            peer.lines()
        factory.shutdown()
        for peer in peers:
            lines = peer.lines()
            assert lines[0] == "WALL * server shutting down"
            assert lines[-1] == "BYE server shutting down"
            assert all(line.startswith("PART ") for line in lines[1:-1]), lines
            assert peer.transport.disconnecting

    def test_shutdown_fires_once_connections_are_gone(self) -> None:
        """shutdown()'s Deferred fires when the last connection has been lost."""
        factory = make_factory()
        peers = [connect(factory).login("ann"), connect(factory)]
        fired: list[object] = []
        factory.shutdown().addCallback(fired.append)
        assert fired == []
        for peer in peers:
            peer.lose()
        assert fired == [None]

    def test_shutdown_gives_up_after_grace(self) -> None:
        """shutdown()'s Deferred fires after the grace period even if connections linger."""
        factory = make_factory()
        peer = connect(factory).login("ann")
        fired: list[object] = []
        factory.shutdown(grace=3.0).addCallback(fired.append)
        factory.reactor.advance(2.9)
        assert fired == []
        factory.reactor.advance(0.2)
        assert fired == [None]
        assert peer.transport.disconnected  # aborted, not left to linger
        peer.lose()  # the loss reported after giving up fires nothing twice
        assert fired == [None]
