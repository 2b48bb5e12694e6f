"""The WebSocket door: protocol v1 lines in WebSocket text messages.

``/ws`` on the web listener upgrades to a WebSocket, and from then on the
connection is a connection like any other: the same ``Connection`` (framer,
line limit, flood control, encoding check, text hygiene, the same ``ERR``
answers), counted by the hub against ``--max-clients`` and the per-address
cap, timed out, shut down, and cut past ``--max-sendq``.

wsproto (the sans-IO WebSocket of the h11 family) parses and writes the
frames; this module only joins it to Twisted and to the connection:

* **In.** Each piece of a text message goes to the framer as it arrives, so
  a message is never gathered whole: memory stays bounded by the framer's
  limits whatever its size, and a message over ``--max-recvq`` closes with
  1009.  The end of a message ends its last line.  A binary message closes
  with 1003, text that is not UTF-8 gets ``ERR bad-encoding`` and 1007 (a
  text frame must be UTF-8, RFC 6455 section 8.1).
* **Out.** What the fan-out writes is whole lines, so each write is one text
  message.  A flush writes the same bytes object to every member, so the
  frame is made once per flush, not once per member (``framed``).
* **Keepalive.** One timer for the whole door pings connections that said
  nothing for ``--web-ping`` seconds, so proxies keep idle browsers
  connected, and cuts those silent for three such periods.

Why wsproto and not autobahn or ``twisted.web.websocket``: an idle
autobahn connection cost 14.2 KiB (2,000 idle, measured 2026-12-02), over
the 8 KiB budget before the chat session is counted; Twisted's own (26.10)
gathers each message whole with no size limit and has no Origin hook and no
pings.  Both take over the HTTP connection the same way this door does.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet import task
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource
from wsproto import ConnectionType
from wsproto.connection import Connection as WebSocket
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from chatd.connection import SENDQ_EXCEEDED
from chatd.errors import ChatError, ErrorCode
from chatd.limits import SendQueue
from chatd.node import Node
from chatd.origins import OriginPolicy
from chatd.transports import _twisted
from chatd.transports.tcp import TransportLink, tune_socket

log = Logger(namespace="chatd")
REASONS = {426: b"Upgrade Required"}  # twisted.web names no 426

DOOR = "websocket"
NORMAL, UNSUPPORTED, NOT_UTF8, TOO_BIG = 1000, 1003, 1007, 1009
PING_TIMEOUT = "ping timeout"
SILENT_SWEEPS = 3  # a connection silent this many ping periods is gone


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 section 5.2) holding
    ``payload``, which is UTF-8 already: wsproto would take only ``str``
    for text, and decode and encode every broadcast for every member."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 0x10000:
        head = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + size.to_bytes(8, "big")
    return head + payload


_last_framed: list[bytes] = [b"", text_frame(b"")]  # [bytes, their frame]: one flush's


def framed(data: bytes) -> bytes:
    """``text_frame(data)``, made once for the same bytes written to many members."""
    if data is not _last_framed[0]:
        _last_framed[:] = [data, text_frame(data)]
    return _last_framed[1]


class WebSocketLink(TransportLink):
    """The TCP transport under an upgraded WebSocket, as a connection's
    ``Link``: TCP's, but every write is a frame and a close is the closing
    handshake."""

    __slots__ = ()

    def write(self, data: bytes) -> None:
        TransportLink.write(self, framed(data))

    def write_frame(self, frame: bytes) -> None:
        """A frame wsproto made (a pong, a ping, a close), in order with the rest."""
        TransportLink.write(self, frame)

    def close(self) -> None:
        """Close as protocol v1 does after ``BYE``: the closing handshake first."""
        cast(WebSocketProtocol, self._owner).close_socket(NORMAL)

    def close_transport(self) -> None:
        TransportLink.close(self)


class WebSocketProtocol:
    """One upgraded connection: wsproto's events to the chat connection."""

    __slots__ = ("_ws", "_door", "_host", "transport", "link", "connection",
                 "_message_size", "_line_open", "heard", "silent")

    def __init__(self, ws: WebSocket, door: WebSocketDoor, host: str | None) -> None:
        self._ws = ws
        self._door = door
        self._host = host
        self.transport: Any = None
        self._message_size = 0
        self._line_open = False  # the message so far does not end with LF
        self.heard = True
        self.silent = 0

    # --- what the HTTP channel calls once it is ours ---

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        tune_socket(transport, self._door.node.config)
        self.link = WebSocketLink(transport, self._door.send_queue, self)
        _twisted.behind(self.link)  # the 101 response is still queued
        self._door.opened(self)
        self.connection = self._door.node.connect(self.link, host=self._host, door=DOOR)

    def dataReceived(self, data: bytes) -> None:
        ws = self._ws
        if ws.state is ConnectionState.CLOSED:
            return
        self.heard = True
        ws.receive_data(data)
        for event in ws.events():
            if type(event) is TextMessage:
                self._text(event.data.encode("utf-8"), event.message_finished)
            elif type(event) is BytesMessage:
                self.close_socket(UNSUPPORTED, "binary messages are not chat lines; send text")
            elif type(event) is Ping:
                self.link.write_frame(ws.send(event.response()))
            elif type(event) is CloseConnection:
                self._closed_by_peer(event)
            if ws.state is not ConnectionState.OPEN:
                return

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._door.closed(self)
        self.connection.lost()

    # --- in ---

    def _text(self, chunk: bytes, finished: bool) -> None:
        self._message_size += len(chunk)
        if self._message_size > self._door.node.config.max_recvq:
            self.close_socket(TOO_BIG, f"messages are limited to "
                                       f"{self._door.node.config.max_recvq} bytes")
            return
        if chunk:
            self._line_open = not chunk.endswith(b"\n")
            self.connection.data_received(chunk)
        if finished:
            if self._line_open:
                self.connection.data_received(b"\n")  # a message ends its last line
            self._message_size = 0
            self._line_open = False

    def _closed_by_peer(self, event: CloseConnection) -> None:
        ws = self._ws
        if ws.state is ConnectionState.REMOTE_CLOSING:
            self.link.write_frame(ws.send(event.response()))
            self.link.close_transport()
            return
        # Still open: wsproto found the peer's frames broken and says how.
        if event.code == NOT_UTF8:
            self.connection.dialect.refused(ChatError(ErrorCode.BAD_ENCODING,
                                                      "lines must be UTF-8"))
        self.close_socket(event.code, event.reason or "")

    # --- out ---

    def close_socket(self, code: int, reason: str = "") -> None:
        """The closing handshake from our side, then close once it is sent."""
        ws = self._ws
        if ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self.link.write_frame(ws.send(CloseConnection(code, reason[:120])))
        self.link.close_transport()

    def ping(self) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self.link.write_frame(self._ws.send(Ping(b"chatd")))

    def send_queue_exceeded(self) -> None:
        self.connection.cut(SENDQ_EXCEEDED)


class WebSocketDoor(Resource):
    """``/ws``: checks the handshake and the ``Origin``, then takes the
    connection over; keeps the keepalive timer of every open WebSocket."""

    isLeaf = True

    def __init__(self, node: Node, origins: OriginPolicy, reactor: Any, *,
                 trust_proxy: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self.node = node
        self.origins = origins
        self.send_queue = SendQueue(node.config.max_sendq)
        self._trust_proxy = trust_proxy
        self._open: set[WebSocketProtocol] = set()
        self._pinger = task.LoopingCall(self._sweep)
        self._pinger.clock = reactor

    def render_GET(self, request: server.Request) -> bytes | int:
        if request.postpath not in ([], [b""]):
            return _plain(request, 404, "not found")
        upgrade = (request.getHeader("upgrade") or "").lower()
        if upgrade != "websocket":
            request.setHeader("upgrade", "websocket")
            return _plain(request, 426, "this is chatd's WebSocket: open it with a "
                                        "WebSocket client, or the page at /")
        origin = request.getHeader("origin")
        if not self.origins.permits(origin):
            log.info("refused a WebSocket from origin {origin}", origin=origin)
            return _plain(request, 403, "this origin may not open chatd's WebSocket")
        handshake = H11Handshake(ConnectionType.SERVER)
        headers = [(name, value) for name, values in request.requestHeaders.getAllRawHeaders()
                   for value in values]
        try:
            handshake.initiate_upgrade_connection(headers, request.uri)
        except RemoteProtocolError as exc:
            return _plain(request, 400, f"not a WebSocket handshake: {exc}")
        response = handshake.send(AcceptConnection())
        ws = handshake.connection
        assert ws is not None
        protocol = WebSocketProtocol(ws, self, self._client_host(request))
        _twisted.take_over_http_channel(request.channel, protocol, response)
        return server.NOT_DONE_YET

    def _client_host(self, request: server.Request) -> str | None:
        """The peer's address, or with ``--web-trust-proxy`` the one the proxy
        saw: the last ``X-Forwarded-For`` entry (earlier ones are the
        client's own claims)."""
        if self._trust_proxy:
            forwarded = request.getHeader("x-forwarded-for")
            if forwarded:
                last = forwarded.split(",")[-1].strip()
                if last:
                    return last
        return getattr(request.getClientAddress(), "host", None)

    # --- keepalive ---

    def opened(self, protocol: WebSocketProtocol) -> None:
        self._open.add(protocol)
        if not self._pinger.running:
            self._pinger.start(self.node.config.web_ping, now=False)

    def closed(self, protocol: WebSocketProtocol) -> None:
        self._open.discard(protocol)
        if not self._open and self._pinger.running:
            self._pinger.stop()

    def _sweep(self) -> None:
        """Ping the silent, cut the long silent.  A connection whose lines
        are held (flood lag, a claim in flight) is not read meanwhile, so its
        pongs wait unread: it counts as heard."""
        for protocol in list(self._open):
            if protocol.heard or protocol.connection.holding:
                protocol.heard = False
                protocol.silent = 0
                continue
            protocol.silent += 1
            if protocol.silent >= SILENT_SWEEPS:
                protocol.connection.cut(PING_TIMEOUT)
            else:
                protocol.ping()


def _plain(request: server.Request, code: int, text: str) -> bytes:
    request.setResponseCode(code, REASONS.get(code))
    request.setHeader("content-type", "text/plain; charset=utf-8")
    return (text + "\n").encode("utf-8")
