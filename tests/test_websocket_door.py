"""The WebSocket door in memory: the HTTP channel handed over, and the
keepalive, on a ``MemoryReactorClock`` (an idle WebSocket must outlive
twisted.web's 60 s HTTP timeout, which no real-socket test can wait for)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from wsproto.connection import Connection as WebSocket
from wsproto.connection import ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from chatd.config import Config
from chatd.node import Node
from chatd.origins import OriginPolicy
from chatd.transports import web
from chatd.transports._twisted import TwistedInternalsChanged, take_over_http_channel
from chatd.transports.websocket import PING_TIMEOUT, WebSocketProtocol
from tests.websocket_support import CLOSE, CONTINUATION, PONG, client_frame, handshake, text

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class Recorder:
    """Every call made on the fakes below, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []


class FakeTransport:
    def __init__(self, record: Recorder, protocol: object = "http-channel") -> None:
        self.record = record
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.record.calls.append(("write", data))

    def unregisterProducer(self) -> None:
        self.record.calls.append(("unregisterProducer",))


class FakeTLSTransport(FakeTransport):
    """A TLSMemoryBIOProtocol: the channel is its ``wrappedProtocol``, over a TCP transport."""

    def __init__(self, record: Recorder) -> None:
        super().__init__(record, protocol=None)
        self.wrappedProtocol: object = "http-channel"
        self.transport = FakeTransport(record, protocol="tls")


class FakeChannel:
    def __init__(self, record: Recorder, transport: Any) -> None:
        self.record = record
        self.transport = transport

    def setTimeout(self, period: float | None) -> None:
        self.record.calls.append(("setTimeout", period))


class FakeProtocol:
    def __init__(self, record: Recorder) -> None:
        self.record = record

    def makeConnection(self, transport: Any) -> None:
        self.record.calls.append(("makeConnection", transport))


class TestTakeOverHTTPChannel:
    """``take_over_http_channel`` with fakes that record what it does."""

    def test_the_timeout_stops_and_the_protocol_replaces_the_channel(self) -> None:
        """The channel's timeout is turned off, the 101 written, the channel's producer
        dropped, and the WebSocket protocol becomes the transport's protocol."""
        record = Recorder()
        transport = FakeTransport(record)
        channel = FakeChannel(record, transport)
        protocol = FakeProtocol(record)
        take_over_http_channel(channel, protocol, b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        assert record.calls == [
            ("setTimeout", None),
            ("write", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            ("unregisterProducer",),
            ("makeConnection", transport),
        ]
        assert transport.protocol is protocol
        assert channel.transport is None

    def test_under_tls_the_wrapped_protocol_is_replaced(self) -> None:
        """Under TLS the TLS protocol stays the socket's; the channel it wraps is replaced."""
        record = Recorder()
        transport = FakeTLSTransport(record)
        channel = FakeChannel(record, transport)
        protocol = FakeProtocol(record)
        take_over_http_channel(channel, protocol, b"101")
        assert record.calls[0] == ("setTimeout", None)
        assert transport.wrappedProtocol is protocol
        assert transport.transport.protocol == "tls"
        assert record.calls[-1] == ("makeConnection", transport)

    def test_a_transport_without_a_protocol_is_a_loud_error(self) -> None:
        """A Twisted whose transports keep no ``protocol`` stops the door loudly."""
        record = Recorder()
        transport = FakeTransport(record, protocol=None)
        with pytest.raises(TwistedInternalsChanged):
            take_over_http_channel(FakeChannel(record, transport), FakeProtocol(record), b"101")


def web_door(**options: Any) -> tuple[MemoryReactorClock, Node, Any]:
    """The real web site of a node on a memory clock, and a way to open connections to it."""
    clock = MemoryReactorClock()
    node = Node(Config(**options), clock)
    site, _door = web.web_site(node, OriginPolicy(), clock)

    def open_connection() -> tuple[Any, StringTransport]:
        channel = site.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        transport.protocol = channel  # type: ignore[attr-defined]  # as tcp.Connection has
        channel.makeConnection(transport)
        return channel, transport

    return clock, node, open_connection


def upgraded(open_connection: Any) -> tuple[StringTransport, WebSocket]:
    """A connection upgraded to a WebSocket, and a wsproto client reading what it is sent."""
    channel, transport = open_connection()
    channel.dataReceived(handshake())
    head, _, rest = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    transport.clear()
    reader = WebSocket(ConnectionType.CLIENT)
    reader.receive_data(rest)
    return transport, reader


def events(transport: StringTransport, reader: WebSocket) -> list[Any]:
    """Everything sent since the last call, as wsproto events."""
    reader.receive_data(transport.value())
    transport.clear()
    return list(reader.events())


def lines(found: list[Any]) -> list[str]:
    return [line for event in found if isinstance(event, TextMessage)
            for line in event.data.split("\r\n")[:-1]]


class TestUpgradedConnection:
    """The real site and door over a ``StringTransport``, time on a memory clock."""

    def test_an_http_connection_left_idle_is_closed_after_60_seconds(self) -> None:
        """The control: twisted.web's own timeout is on the clock the tests advance."""
        clock, _node, open_connection = web_door()
        _channel, transport = open_connection()
        clock.pump([1.0] * 61)
        assert transport.disconnecting

    def test_the_upgraded_transport_speaks_the_websocket_protocol(self) -> None:
        """After the 101, the transport's protocol is the WebSocket's and it sent HELLO."""
        _clock, _node, open_connection = web_door()
        transport, reader = upgraded(open_connection)
        assert isinstance(transport.protocol, WebSocketProtocol)  # type: ignore[attr-defined]
        assert lines(events(transport, reader))[0].startswith("HELLO chatd/")

    def test_an_idle_websocket_outlives_the_http_timeout(self) -> None:
        """Ten minutes of silence answered by pongs: still open, pinged, still chatting."""
        clock, _node, open_connection = web_door(web_ping=30.0)
        transport, reader = upgraded(open_connection)
        protocol = transport.protocol  # type: ignore[attr-defined]
        protocol.dataReceived(text("NICK ann"))
        assert "OK NICK ann" in lines(events(transport, reader))
        pings = 0
        for _ in range(600):
            clock.advance(1.0)
            for event in events(transport, reader):
                assert isinstance(event, Ping), event
                pings += 1
                protocol.dataReceived(client_frame(PONG, event.payload))
        assert not transport.disconnecting
        assert pings >= 5
        protocol.dataReceived(text("PING still-here"))
        assert lines(events(transport, reader)) == ["PONG still-here"]

    def test_a_websocket_that_never_answers_is_cut_after_three_silent_periods(self) -> None:
        """Pinged at 60 and 90 s of silence, cut at 120 s, and counted as a ping timeout."""
        clock, node, open_connection = web_door(web_ping=30.0)
        transport, reader = upgraded(open_connection)
        transport.protocol.dataReceived(text("NICK ann"))  # type: ignore[attr-defined]
        events(transport, reader)
        seen: list[tuple[int, str]] = []
        for second in range(1, 121):
            clock.advance(1.0)
            seen += [(second, type(event).__name__) for event in events(transport, reader)]
            if transport.disconnecting:
                break
        assert seen == [(60, "Ping"), (90, "Ping")]
        assert second == 120
        assert transport.disconnected  # aborted: no closing handshake with a dead peer
        assert node.stats.cuts == {PING_TIMEOUT: 1}

    def test_flood_lag_longer_than_three_ping_periods_does_not_cut(self) -> None:
        """While flood control holds its lines the server reads nothing from the
        client, pongs included: that is not silence, and all 30 lines arrive.
        (Times are binary fractions: float rounding on a memory clock, which
        never moves within ``advance``, could re-arm a lag of 1e-17 s forever.)"""
        clock, node, open_connection = web_door(web_ping=0.25, flood_rate=4.0)
        transport, reader = upgraded(open_connection)
        protocol = transport.protocol  # type: ignore[attr-defined]
        protocol.dataReceived(text("NICK ann"))
        clock.advance(0)
        events(transport, reader)
        protocol.dataReceived(text("\n".join(f"SAY {i}" for i in range(30))))
        said: list[str] = []
        for _ in range(86):  # 5.375 s: NICK took one of the ten, so 21 lines wait 5.25 s
            clock.advance(0.0625)
            said += [line for line in lines(events(transport, reader)) if line.startswith("SAY")]
            assert not transport.disconnecting, (clock.seconds(), said)
        assert said == [f"SAY ann {i}" for i in range(30)]
        assert node.stats.cuts == {}

    def test_the_end_of_a_message_ends_its_line(self) -> None:
        """``SAY a`` with no LF is a line once its message ends, not before."""
        clock, _node, open_connection = web_door()
        transport, reader = upgraded(open_connection)
        protocol = transport.protocol  # type: ignore[attr-defined]
        protocol.dataReceived(text("NICK ann"))
        clock.advance(0)
        events(transport, reader)
        protocol.dataReceived(text("SAY frag", fin=False))
        clock.advance(0)
        assert events(transport, reader) == []
        protocol.dataReceived(client_frame(CONTINUATION, b"mented"))
        clock.advance(0)  # the fan-out's flush
        assert lines(events(transport, reader)) == ["SAY ann fragmented"]

    def test_close_from_the_client_is_answered(self) -> None:
        """A client's close gets the closing handshake's answer and the transport closes."""
        _clock, _node, open_connection = web_door()
        transport, reader = upgraded(open_connection)
        events(transport, reader)
        transport.protocol.dataReceived(  # type: ignore[attr-defined]
            client_frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"))
        found = events(transport, reader)
        assert [type(event) for event in found] == [CloseConnection]
        assert found[0].code == 1000
        assert transport.disconnecting
