"""Byte-level fuzz of the protocol edge: ``make fuzz`` (not part of ``make test``).

Several connections share one factory; hypothesis feeds each random byte
chunks (biased towards real commands, over-long lines, bad UTF-8, telnet IAC
and escape sequences) and advances the clock.  After every step:

* no exception escaped ``dataReceived``;
* every byte the server wrote is UTF-8 lines ending in CRLF, each a known
  server message with no control characters in it;
* no connection buffers more than one line's limit unless it is lagged;
* the room's user list is exactly the logged-in sessions.

``FUZZ_EXAMPLES`` sets the number of runs (default 2000).
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from chatd import wire
from chatd.config import Config
from chatd.transports.tcp import ChatFactory, ChatProtocol

CONFIG = Config(max_line=64, flood_burst=5, flood_rate=50.0, max_recvq=512, max_sendq=4096)
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
PIECES = st.sampled_from([
    b"NICK ann", b"NICK Bob", b"nick cy", b"NICK b@d", b"SAY hi", b"say  spaced ", b"TELL ann x",
    b"TELL nobody x", b"WALL alert", b"WHO", b"OPER pw", b"PING t", b"QUIT bye", b"HELP",
    b"\n", b"\r\n", b"\r", b" ", b"\xff\xfb\x01", b"\xff\xff", b"\xff\xfa\x18\x01\xff\xf0",
    b"\x1b[2J", b"\xc2\x9b", b"\xc3", b"\xe2\x82", b"\x00", b"x" * 70, b"y" * 200,
])
CHUNKS = st.lists(st.one_of(PIECES, st.binary(max_size=40)), max_size=8).map(b"".join)
STEPS = st.lists(st.tuples(st.integers(0, 3), CHUNKS, st.sampled_from([0, 0, 0.05, 1, 30])),
                 max_size=40)


def check_output(data: bytes) -> None:
    assert data == b"" or data.endswith(b"\r\n"), data[-80:]
    for raw in data.split(b"\r\n")[:-1]:
        text = raw.decode("utf-8")
        assert not CONTROL.search(text), text
        message = wire.parse_server_line(raw)
        assert message is not None and not isinstance(message, wire.Unknown), text


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(STEPS)
def test_protocol_edge_survives_any_bytes(steps: list[tuple[int, bytes, float]]) -> None:
    reactor = MemoryReactorClock()
    factory = ChatFactory(CONFIG, reactor=reactor)
    peers: list[tuple[ChatProtocol, StringTransport]] = []
    for index in range(4):
        transport = StringTransport(peerAddress=IPv4Address("TCP", f"10.0.0.{index}", 1000))
        built = factory.buildProtocol(transport.getPeer())
        assert isinstance(built, ChatProtocol)
        built.makeConnection(transport)
        peers.append((built, transport))
    for index, chunk, advance in steps:
        protocol, transport = peers[index]
        if not transport.disconnecting:
            protocol.dataReceived(chunk)
        reactor.advance(advance)
        for protocol, transport in peers:
            check_output(transport.value())
            if not protocol.connection.holding:
                assert protocol.connection.buffered <= CONFIG.max_line + 1  # + a CR awaiting LF
        live = [p.connection.session.nick for p, t in peers
                if not t.disconnecting and p.connection.session.nick]
        assert sorted(factory.room.nicks) == sorted(live)
