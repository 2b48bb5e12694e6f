"""The per-connection and per-server limits, driven through the Twisted edge
with an in-memory transport and a clock that tests advance."""

from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from chatd.config import Config
from chatd.transports._twisted import queued_bytes
from chatd.transports.tcp import ChatFactory, ChatProtocol

QUIET = Config(flood_rate=0.0)


class QueueTransport(StringTransport):
    """A transport whose written bytes stay "queued" until ``drain()``, the
    way a reader that stops reading leaves them in Twisted's buffer."""

    dataBuffer = b""
    offset = 0

    def __init__(self, host: str) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", host, 40000))
        self._drained = 0
        self.aborted = False

    @property
    def _tempDataLen(self) -> int:
        return len(self.value()) - self._drained

    def drain(self) -> None:
        self._drained = len(self.value())

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class Peer:
    """One connection to a factory, with its transport and lines."""

    def __init__(self, factory: ChatFactory, host: str = "10.0.0.1") -> None:
        self.factory = factory
        self.transport = QueueTransport(host)
        protocol = factory.buildProtocol(self.transport.getPeer())
        assert isinstance(protocol, ChatProtocol)
        self.protocol: ChatProtocol = protocol
        self.protocol.makeConnection(self.transport)
        self._seen: int = 0

    def send(self, *lines: str) -> None:
        self.protocol.dataReceived(b"".join(line.encode() + b"\n" for line in lines))
        self.factory.reactor.advance(0)

    def lines(self) -> list[str]:
        """Lines received since the last call."""
        self.factory.reactor.advance(0)
        data = self.transport.value()
        new, self._seen = data[self._seen:], len(data)
        return [line for line in new.decode().split("\r\n") if line]

    def lose(self, reason: Exception | None = None) -> None:
        self.protocol.connectionLost(Failure(reason or ConnectionDone()))
        self.factory.reactor.advance(0)


def make_factory(config: Config = QUIET) -> ChatFactory:
    return ChatFactory(config, reactor=MemoryReactorClock())


def logged_in(factory: ChatFactory, nick: str, host: str = "10.0.0.1") -> Peer:
    peer = Peer(factory, host)
    peer.send(f"NICK {nick}")
    peer.lines()
    return peer


class TestSendQueue:
    """--max-sendq: readers that let unsent bytes pile up."""

    def test_reader_over_max_sendq_is_aborted_and_others_hear_part(self) -> None:
        """A member whose unsent bytes pass --max-sendq is aborted, not closed
        gracefully, and the others get PART <nick> send queue exceeded."""
        factory = make_factory(replace(QUIET, max_sendq=4096))
        slow = logged_in(factory, "slow")
        talker = logged_in(factory, "talker")
        talker.lines()
        for _ in range(60):
            talker.send("SAY " + "x" * 100)
            talker.transport.drain()
        assert slow.transport.aborted
        slow.lose(ConnectionLost())
        assert talker.lines()[-1] == "PART slow send queue exceeded"

    def test_a_reader_that_keeps_up_is_never_cut(self) -> None:
        """Draining readers stay connected however much is said."""
        factory = make_factory(replace(QUIET, max_sendq=4096))
        reader = logged_in(factory, "reader")
        talker = logged_in(factory, "talker")
        for _ in range(200):
            talker.send("SAY " + "x" * 100)
            reader.transport.drain()
            talker.transport.drain()
        assert not reader.transport.aborted and not talker.transport.aborted

    def test_nothing_more_is_written_to_a_cut_connection(self) -> None:
        """Once cut, a connection's transport is written no more."""
        factory = make_factory(replace(QUIET, max_sendq=1024))
        slow = logged_in(factory, "slow")
        talker = logged_in(factory, "talker")
        talker.send("SAY " + "y" * 900)
        talker.send("SAY " + "y" * 900)
        talker.send("SAY " + "y" * 900)
        assert slow.transport.aborted
        size = len(slow.transport.value())
        talker.send("SAY more")
        assert len(slow.transport.value()) == size

    def test_queued_bytes_reads_through_wrappers(self) -> None:
        """queued_bytes finds the TCP buffer underneath a wrapping transport."""

        class Tcp:
            dataBuffer, offset, _tempDataLen = b"abcdef", 2, 10

        class Wrapper:
            transport = Tcp()

        assert queued_bytes(Tcp()) == 14
        assert queued_bytes(Wrapper()) == 14
        assert queued_bytes(object()) == 0


class TestFloodLag:
    """Flood lag: lines past the burst are delayed, not dropped."""

    def test_burst_is_handled_at_once_then_lines_wait_for_tokens(self) -> None:
        """After the burst, lines are delayed by the token rate, not dropped."""
        factory = make_factory(Config(flood_burst=3, flood_rate=2.0))
        ann = logged_in(factory, "ann")  # NICK spent one token
        ann.send(*[f"SAY {i}" for i in range(6)])
        said = [line for line in ann.lines() if line.startswith("SAY")]
        assert said == ["SAY ann 0", "SAY ann 1"]
        assert ann.transport.producerState == "paused"
        factory.reactor.advance(0.5)
        assert [line for line in ann.lines() if line.startswith("SAY")] == ["SAY ann 2"]
        factory.reactor.advance(2.0)
        assert [line for line in ann.lines() if line.startswith("SAY")] == [
            "SAY ann 3", "SAY ann 4", "SAY ann 5"]
        assert ann.transport.producerState == "producing"

    def test_flooder_is_told_once_per_episode_that_lines_are_delayed(self) -> None:
        """One ERR flood when lag starts, another only after the bucket refilled."""
        factory = make_factory(Config(flood_burst=2, flood_rate=1.0))
        ann = logged_in(factory, "ann")
        ann.send("PING a", "PING b", "PING c")
        factory.reactor.advance(5)
        errors = [line for line in ann.lines() if line.startswith("ERR")]
        assert errors == ["ERR flood you are sending more than 1 lines a second; "
                          "the rest are delayed, not lost"]
        factory.reactor.advance(10)
        ann.send("PING d", "PING e", "PING f")
        factory.reactor.advance(5)
        assert sum(line.startswith("ERR flood") for line in ann.lines()) == 1

    def test_flood_lag_delays_only_the_flooder(self) -> None:
        """While one member is lagged, another's lines go through at once."""
        factory = make_factory(Config(flood_burst=2, flood_rate=1.0))
        flooder = logged_in(factory, "flooder")
        flooder.send("SAY a", "SAY b", "SAY c")
        assert flooder.transport.producerState == "paused"
        calm = logged_in(factory, "calm")
        calm.lines()
        calm.send("SAY hi")
        assert "SAY calm hi" in calm.lines()

    def test_backlog_past_max_recvq_gets_bye_flood(self) -> None:
        """Input already read past --max-recvq is cut with BYE flood and PART flood."""
        factory = make_factory(Config(flood_burst=1, flood_rate=1.0, max_recvq=2048))
        flooder = logged_in(factory, "flooder")
        other = logged_in(factory, "other")
        flooder.lines()
        other.lines()
        flooder.send(*["SAY " + "z" * 50] * 100)
        assert flooder.lines()[-1] == "BYE flood"
        assert flooder.transport.disconnecting
        assert other.lines()[-1] == "PART flooder flood"

    def test_no_flood_limit_handles_everything_at_once(self) -> None:
        """With flood control off (rate 0) a large burst is handled in one go."""
        factory = make_factory(QUIET)
        ann = logged_in(factory, "ann")
        ann.send(*[f"SAY {i}" for i in range(500)])
        assert len([line for line in ann.lines() if line.startswith("SAY")]) == 500


class TestConnectionLimits:
    """--max-clients and --max-per-ip."""

    def test_max_clients_refuses_with_hello_then_bye(self) -> None:
        """Past --max-clients a connection gets HELLO, BYE and is closed."""
        factory = make_factory(replace(QUIET, max_clients=2))
        Peer(factory, "10.0.0.1")
        Peer(factory, "10.0.0.2")
        third = Peer(factory, "10.0.0.3")
        lines = third.lines()
        assert lines[0].startswith("HELLO ")
        assert lines[1:] == ["BYE server is full, try again later"]
        assert third.transport.disconnecting

    def test_per_address_cap_refuses_the_extra_connection(self) -> None:
        """Past --max-per-ip from one address, BYE with a reason."""
        factory = make_factory(replace(QUIET, max_per_ip=2))
        Peer(factory, "10.1.1.1")
        Peer(factory, "10.1.1.1")
        extra = Peer(factory, "10.1.1.1")
        other = Peer(factory, "10.1.1.2")
        assert extra.lines()[-1] == "BYE too many connections from your address"
        assert not other.transport.disconnecting

    def test_per_address_slot_is_freed_when_a_connection_closes(self) -> None:
        """A closed connection no longer counts against its address."""
        factory = make_factory(replace(QUIET, max_per_ip=1))
        first = Peer(factory, "10.1.1.1")
        first.lose()
        again = Peer(factory, "10.1.1.1")
        assert not again.transport.disconnecting

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5"])
    def test_loopback_is_exempt_from_the_per_address_cap(self, host: str) -> None:
        """Loopback addresses are not capped unless --limit-loopback is given."""
        factory = make_factory(replace(QUIET, max_per_ip=1))
        peers = [Peer(factory, host) for _ in range(3)]
        assert not any(peer.transport.disconnecting for peer in peers)
        strict = make_factory(replace(QUIET, max_per_ip=1, limit_loopback=True))
        Peer(strict, host)
        assert Peer(strict, host).transport.disconnecting


class TestRegistrationTimeout:
    """--register-timeout."""

    def test_connection_without_nick_is_closed_after_the_timeout(self) -> None:
        """No NICK within --register-timeout: BYE registration timeout."""
        factory = make_factory(replace(QUIET, register_timeout=30))
        idle = Peer(factory)
        factory.reactor.advance(29)
        assert not idle.transport.disconnecting
        factory.reactor.advance(2)
        assert idle.lines()[-1] == "BYE registration timeout: no NICK"
        assert idle.transport.disconnecting

    def test_logging_in_cancels_the_timeout(self) -> None:
        """A member who logged in is never closed by the registration timer."""
        factory = make_factory(replace(QUIET, register_timeout=30))
        ann = logged_in(factory, "ann")
        factory.reactor.advance(1000)
        assert not ann.transport.disconnecting
        assert not factory.reactor.getDelayedCalls()


class TestDroppedPeers:
    """Connections that vanish or race."""

    def test_reset_connection_leaves_no_ghost(self) -> None:
        """A connection lost without QUIT leaves WHO and sends PART once."""
        factory = make_factory()
        ann = logged_in(factory, "ann")
        bob = logged_in(factory, "bob")
        ann.lines()
        bob.lose(ConnectionLost())
        bob.lose(ConnectionLost())
        assert ann.lines() == ["PART bob connection lost"]
        assert factory.room.nicks == ["ann"]
        assert len(factory.node.hub) == 1
        assert [connection.session.nick for connection in factory.node.hub] == ["ann"]

    def test_nick_race_has_exactly_one_winner(self) -> None:
        """Two connections asking for one nick in the same turn: one wins."""
        factory = make_factory()
        first, second = Peer(factory), Peer(factory)
        first.protocol.dataReceived(b"NICK ann\n")
        second.protocol.dataReceived(b"NICK ANN\n")
        factory.reactor.advance(0)
        assert "OK NICK ann" in first.lines()
        assert second.lines()[-1].startswith("ERR nick-taken ")
        assert factory.room.nicks == ["ann"]
