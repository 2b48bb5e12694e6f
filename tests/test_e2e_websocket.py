"""The web door end to end: the real ``chatd --web`` over loopback sockets.

WebSocket clients are the ``websockets`` sync client (what a well-behaved
client sends) and raw sockets driven by wsproto or by frames built byte by
byte (what browsers never send: bad UTF-8, silence, never reading).  TCP
clients share the room.  Nothing sleeps: "nothing else arrived" is a
``PING``/``PONG`` barrier, and every other wait is for a condition, bounded.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import LineClient, wait_room_empty, wait_until
from tests.websocket_support import (
    BINARY,
    CONTINUATION,
    UPGRADE,
    RawWS,
    WebServer,
    WSClient,
    client_frame,
    figure,
    http_get,
    scrape,
    start_web,
    text,
)

pytestmark = pytest.mark.e2e

SECURITY = {
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
BAD_ENCODING = "ERR bad-encoding lines must be UTF-8"


@pytest.fixture(scope="module")
def shared() -> Iterator[WebServer]:
    """One ``chatd --web`` for the tests that need nothing else of their own:
    a short keepalive (0.3 s), a small ``--max-recvq`` (4096) for the size
    limit, a per-address cap of one (loopback is exempt, so it only shows
    whether ``X-Forwarded-For`` counts), and one extra page origin."""
    server = start_web("--web-ping", "0.3", "--max-recvq", "4096", "--max-per-ip", "1",
                       "--web-origin", "https://chat.example.org")
    yield server
    server.server.stop()


@pytest.fixture
def own() -> Iterator[Callable[..., WebServer]]:
    """Start servers of a test's own (``start_web`` arguments); all stopped at the end."""
    started: list[WebServer] = []

    def start(*args: str, **kwargs: Any) -> WebServer:
        server = start_web(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.server.stop()


# --- the clients ------------------------------------------------------------------


class Clients:
    """Every client a test opens, closed when it ends."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def ws(self, server: WebServer, **options: Any) -> WSClient:
        client = WSClient(server.url, **options)
        self._open.append(client)
        return client

    def raw(self, server: WebServer, *headers: tuple[bytes, bytes], **options: Any) -> RawWS:
        client = RawWS("127.0.0.1", server.web, *headers, **options)
        self._open.append(client)
        return client

    def tcp(self, server: WebServer, *, rcvbuf: int | None = None) -> LineClient:
        """A raw TCP client (``rcvbuf``: a small receive buffer, set before connecting)."""
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5.0)
        sock.connect((server.host, server.port))
        client = LineClient(server.host, server.port, timeout=5.0, sock=sock)
        self._open.append(client)
        return client

    def close_all(self) -> None:
        for client in self._open:
            try:
                client.close()
            except OSError:
                pass
        self._open.clear()


@pytest.fixture
def clients() -> Iterator[Clients]:
    opened = Clients()
    yield opened
    opened.close_all()


@pytest.fixture
def room(shared: WebServer, clients: Clients) -> Iterator[Clients]:
    """Clients of the shared server; the test ends once its room is empty again."""
    yield clients
    clients.close_all()
    wait_room_empty(shared.host, shared.port)


def assert_secure(headers: dict[str, str]) -> None:
    for name, start in SECURITY.items():
        assert headers.get(name, "").startswith(start), (name, headers)


# --- the tests --------------------------------------------------------------------


class TestLines:
    """Protocol v1 in text messages, in the room with TCP clients."""

    def test_login(self, shared: WebServer, room: Clients) -> None:
        """A WebSocket client is greeted and logs in as over TCP."""
        ann = room.ws(shared)
        assert ann.login("ann") == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]

    def test_chat_both_ways_with_a_tcp_client(self, shared: WebServer, room: Clients) -> None:
        """SAY and TELL pass between a WebSocket and a TCP user, both ways."""
        ann = room.ws(shared)
        ann.login("ann")
        bob = room.tcp(shared)
        assert bob.login("bob") == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.read_line() == "JOIN bob"
        ann.send("SAY hello from the page")
        assert bob.read_line() == "SAY ann hello from the page"
        assert ann.read_line() == "SAY ann hello from the page"
        bob.send("SAY hello from nc")
        assert ann.read_line() == "SAY bob hello from nc"
        bob.send("TELL ann psst")
        assert ann.read_line() == "TELL bob psst"
        ann.send("TELL bob  back")
        assert ann.read_line() == "OK TELL bob"
        assert bob.read_until("TELL ann") == ["SAY bob hello from nc", "OK TELL ann", "TELL ann  back"]
        bob.send("QUIT")
        assert ann.read_line() == "PART bob leaving"

    def test_several_lines_in_one_message(self, shared: WebServer, room: Clients) -> None:
        """LF or CRLF separate lines in a message; the last line end is optional."""
        ann = room.ws(shared)
        ann.login("ann")
        ann.ws.send("SAY one\nSAY two\r\nWHO\nPING 3")
        assert ann.read_until("PONG") == ["SAY ann one", "SAY ann two", "USERS ann", "OK WHO 1",
                                          "PONG 3"]
        ann.ws.send("SAY with an end\n")
        ann.ws.send("SAY and two\r\n\r\n\nPING 4\r\n")
        assert ann.read_until("PONG") == ["SAY ann with an end", "SAY ann and two", "PONG 4"]

    def test_a_line_split_over_two_messages_is_two_lines(self, shared: WebServer, room: Clients) -> None:
        """The end of a message ends its line: the next message starts a new one."""
        ann = room.ws(shared)
        ann.login("ann")
        ann.ws.send("SAY hel")
        ann.ws.send("lo")
        assert ann.sync() == ["SAY ann hel", "ERR unknown-command unknown command 'lo'; try HELP"]

    def test_a_fragmented_message_is_one_message(self, shared: WebServer, room: Clients) -> None:
        """Fragments of one message join; only the message's end ends a line."""
        ann = room.ws(shared)
        ann.login("ann")
        ann.ws.send(["SAY frag", "mented\nSAY sec", "", "ond"])
        assert ann.sync() == ["SAY ann fragmented", "SAY ann second"]

    def test_a_utf8_character_split_between_fragments(self, shared: WebServer, room: Clients) -> None:
        """A character whose bytes straddle two fragments arrives whole (raw frames)."""
        raw = room.raw(shared)
        raw.login("raw")
        snowman = "☃".encode()
        raw.send(text(b"SAY snow" + snowman[:1], fin=False)
                 + client_frame(CONTINUATION, snowman[1:] + b"man"))
        assert raw.sync() == ["SAY raw snow☃man"]

    def test_every_line_gets_the_answer_tcp_gets(self, own: Callable[..., WebServer],
                                                 clients: Clients) -> None:
        """The same framer, limits, grammar and hygiene: each line sent as one
        WebSocket message is answered exactly as the same line over TCP
        (flood control off, for the many lines)."""
        server = own("--no-flood-limit")
        ws, tcp = clients.ws(server), clients.tcp(server)
        ws.login("wsu1")
        tcp.login("tcp1")
        ws.read_line()  # JOIN tcp1
        lines = [
            "SAY  two spaces", "say lower case", "FROB", "SAY \x1b[31mred\x1b[0m", "SAY tab\there",
            "NICK 2cool", "TELL nobody hi", "HISTORY lots", "   ", "\x1b", "SAY héllo wörld",
            "SAY " + "x" * 1020, "SAY " + "x" * 1021, "SAY " + "y" * 3000, "WALL", "SAY\tx",
            "TIME later", "  ping  7  ", "SAY trailing space ",
        ]
        for line in lines:
            ws.ws.send(line)
            answers_ws = ws.sync()
            tcp.sync()
            tcp.send(line)
            answers_tcp = tcp.sync()
            ws.sync()
            assert [a.replace("wsu1", "NICK") for a in answers_ws] == [
                a.replace("tcp1", "NICK") for a in answers_tcp], line
        assert ws.sync("last") == []

    def test_an_over_long_line(self, shared: WebServer, room: Clients) -> None:
        """A line over --max-line gets ERR line-too-long; the next line works."""
        ann = room.ws(shared)
        ann.login("ann")
        ann.send("SAY " + "x" * 1021, "SAY " + "x" * 1020, "SAY after")
        assert ann.sync() == ["ERR line-too-long lines are limited to 1024 bytes; this one was dropped",
                              "SAY ann " + "x" * 1020, "SAY ann after"]

    def test_invalid_utf8_gets_err_bad_encoding_then_close_1007(self, shared: WebServer,
                                                                  room: Clients) -> None:
        """A text frame that is not UTF-8: the TCP answer, then close 1007."""
        watcher = room.tcp(shared)
        watcher.login("watcher")
        raw = room.raw(shared)
        raw.login("raw")
        assert watcher.read_line() == "JOIN raw"
        raw.send(text(b"SAY caf\xe9\n"))
        assert raw.closed() == ([BAD_ENCODING], 1007)
        assert watcher.read_line().startswith("PART raw")
        watcher.send_raw(b"SAY caf\xe9\n")
        assert watcher.sync() == [BAD_ENCODING]

    def test_a_binary_message_closes_with_1003(self, shared: WebServer, room: Clients) -> None:
        """Binary messages are not chat lines: close 1003, saying why."""
        ann = room.ws(shared)
        ann.login("ann")
        ann.ws.send(b"SAY hi\n")
        assert ann.closed() == ([], 1003, "binary messages are not chat lines; send text")

    def test_a_raw_binary_frame_closes_with_1003(self, shared: WebServer, room: Clients) -> None:
        """The same from a raw frame, before any login."""
        raw = room.raw(shared)
        assert raw.read_line().startswith("HELLO")
        raw.send(text("PING 1") + client_frame(BINARY, b"\x00\xff"))
        assert raw.closed() == (["PONG 1"], 1003)

    def test_a_message_over_max_recvq_closes_with_1009(self, shared: WebServer, room: Clients) -> None:
        """A message of --max-recvq bytes is read; one byte more closes with 1009."""
        ann = room.ws(shared)
        ann.login("ann")
        line = "SAY " + "x" * 1019  # 1023 bytes; with its LF, 1024
        exactly = "\n".join([line] * 4) + "\n"
        assert len(exactly.encode()) == 4096
        ann.ws.send(exactly)
        assert ann.sync() == ["SAY ann " + "x" * 1019] * 4
        ann.ws.send(exactly + "x")
        lines, code, reason = ann.closed()
        assert (code, reason) == (1009, "messages are limited to 4096 bytes")
        assert set(lines) <= {"SAY ann " + "x" * 1019}  # a piece read before the size was known

    def test_flood_lag_delays_lines_and_loses_none(self, shared: WebServer, room: Clients) -> None:
        """30 lines in one message with the default flood limits: the burst at once
        (ten lines, NICK was one), ERR flood once, the rest at five a second,
        every one in order; and the lag (4.2 s, past three 0.3 s ping periods,
        while the server reads nothing, pongs included) does not cut it."""
        watcher = room.tcp(shared)
        watcher.login("watcher")
        ann = room.ws(shared)
        ann.login("ann")
        assert watcher.read_line() == "JOIN ann"
        ann.send(*(f"SAY {i}" for i in range(30)))
        expected = [f"SAY ann {i}" for i in range(30)]
        assert ann.sync() == expected[:9] + [
            "ERR flood you are sending more than 5 lines a second; the rest are delayed, not lost",
        ] + expected[9:]
        assert watcher.read_lines(30) == expected
        assert watcher.sync() == []


class TestOrigins:
    """The Origin allow-list of the handshake."""

    def test_the_pages_own_origins_and_the_listed_one_may_open_it(self, shared: WebServer,
                                                                  room: Clients) -> None:
        """No Origin, the page's loopback origins and --web-origin all get the room."""
        port = shared.web
        for origin in (None, f"http://127.0.0.1:{port}", f"http://localhost:{port}",
                       f"http://[::1]:{port}", f"HTTP://LOCALHOST:{port}", "https://chat.example.org",
                       "https://chat.example.org:443"):
            client = room.ws(shared, origin=origin)
            assert client.read_line().startswith("HELLO chatd/"), origin

    def test_a_foreign_origin_gets_403_and_no_websocket(self, shared: WebServer, room: Clients) -> None:
        """Another site, port or scheme, ``null`` or garbage: HTTP 403, never 101."""
        before = scrape(shared.web)
        port = shared.web
        for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}",
                       f"https://127.0.0.1:{port}", "null", "https://chat.example.org.evil.example",
                       f"http://@127.0.0.1:{port}", "garbage"):
            with pytest.raises(InvalidStatus) as refused:
                room.ws(shared, origin=origin)
            assert refused.value.response.status_code == 403, origin
            assert_secure({k.lower(): v for k, v in refused.value.response.headers.raw_items()})
        status, headers, body = http_get(port, "/ws", *UPGRADE, ("Origin", "http://evil.example"))
        assert (status, body) == (403, b"this origin may not open chatd's WebSocket\n")
        assert "sec-websocket-accept" not in headers
        after = scrape(shared.web)
        for name in ("chatd_logins_total", "chatd_deliveries_total", "chatd_bytes_out_total"):
            assert figure(after, name) == figure(before, name), name  # not even a HELLO


class TestHTTP:
    """What the web listener serves besides /ws, and how."""

    def test_the_page_files(self, shared: WebServer) -> None:
        """/, /chat.js, /chat.css and /favicon.svg are the package's files, typed."""
        static = resources.files("chatd").joinpath("static")
        for path, name, content_type in (
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/chat.js", "chat.js", "text/javascript; charset=utf-8"),
            ("/chat.css", "chat.css", "text/css; charset=utf-8"),
            ("/favicon.svg", "favicon.svg", "image/svg+xml"),
        ):
            status, headers, body = http_get(shared.web, path)
            assert (status, headers["content-type"]) == (200, content_type), path
            assert body == static.joinpath(name).read_bytes()
            assert_secure(headers)
            status, headers, body = http_get(shared.web, path, method="HEAD")
            assert (status, headers["content-type"], body) == (200, content_type, b""), path

    @pytest.mark.parametrize("path", [
        "/nope", "/index.html", "/static/", "/static/chat.js", "/chat.js/", "/chat.js/x", "/ws/x",
        "/ws/x/", "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/chatd/", "/static", "/healthz/x",
        "/metrics/x", "//", "/.git/config",
    ])
    def test_anything_else_is_404(self, shared: WebServer, path: str) -> None:
        """Every other path is 404, with no listing, with the security headers."""
        status, headers, body = http_get(shared.web, path, *(UPGRADE if path.startswith("/ws") else ()))
        assert (status, body) == (404, b"not found\n"), path
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert_secure(headers)

    def test_ws_without_an_upgrade_is_426(self, shared: WebServer) -> None:
        """A plain GET of /ws says Upgrade Required, and to what."""
        status, headers, body = http_get(shared.web, "/ws")
        assert status == 426
        assert headers["upgrade"] == "websocket"
        assert b"WebSocket" in body
        assert_secure(headers)

    def test_security_headers_on_every_response(self, shared: WebServer) -> None:
        """CSP, nosniff and no-referrer on pages, errors, /healthz and /metrics."""
        for path in ("/", "/chat.js", "/nope", "/ws", "/healthz", "/metrics"):
            _status, headers, _body = http_get(shared.web, path)
            assert_secure(headers)
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert "script-src 'self'" in headers["content-security-policy"]

    def test_healthz_is_200_while_serving(self, shared: WebServer) -> None:
        """/healthz answers 200 ok."""
        assert http_get(shared.web, "/healthz")[::2] == (200, b"ok\n")


class TestMetrics:
    """/metrics in the Prometheus text format, and --metrics alone."""

    def test_the_figures_move_with_traffic(self, shared: WebServer, room: Clients) -> None:
        """Connections by transport, logins, lines in, broadcasts, deliveries,
        bytes out, flood episodes and cuts by reason all count what happened."""
        port = shared.web
        before = scrape(port)
        ann = room.ws(shared)
        ann.login("ann")
        bob = room.tcp(shared)
        bob.login("bob")
        ann.read_line()  # JOIN bob
        ann.send("SAY one")
        assert ann.read_line() == "SAY ann one"
        bob.send("SAY two")
        assert ann.read_line() == "SAY bob two"
        ann.send(*["PING p"] * 12)  # over the burst: one flood episode
        assert ann.read_until("ERR flood")[-1].startswith("ERR flood ")
        assert set(ann.sync()) == {"PONG p"}
        carl = room.tcp(shared)
        carl.send_raw(b"PING x\n" * 700)  # a backlog over --max-recvq: cut
        assert carl.lines_until_eof()[-1] == "BYE flood"
        wait_until(lambda: figure(scrape(port), "chatd_cuts_total", reason="flood")
                   > figure(before, "chatd_cuts_total", reason="flood"), 5, what="the flood cut counted")
        after = scrape(port)

        def moved(name: str, **labels: str) -> float:
            return figure(after, name, **labels) - figure(before, name, **labels)

        assert figure(after, "chatd_connections", transport="websocket") >= 1
        assert figure(after, "chatd_connections", transport="tcp") >= 1
        assert figure(after, "chatd_users") == 2
        assert moved("chatd_logins_total") == 2
        assert moved("chatd_lines_in_total") >= 2 + 2 + 12 + 1 + 10  # ann, bob, pings, sync, carl
        assert moved("chatd_broadcasts_total") == 4  # two JOINs, two SAYs
        assert moved("chatd_deliveries_total") >= 1 + 2 + 2 + 2
        assert moved("chatd_bytes_out_total") >= len("SAY ann one\r\n") * 2
        assert moved("chatd_flood_episodes_total") == 2  # ann's, then carl's
        assert moved("chatd_cuts_total", reason="flood") == 1
        assert ("chatd_history_lines", ()) in after and ("chatd_history_bytes", ()) in after

    def test_metrics_alone_serves_only_healthz_and_metrics(self, own: Callable[..., WebServer],
                                                            clients: Clients) -> None:
        """--metrics without --web: /healthz and /metrics (which count TCP traffic)
        and 404 for the page and /ws."""
        server = own(web=False, metrics=True)
        port = server.metrics
        status, headers, body = http_get(port, "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert_secure(headers)
        for path in ("/", "/chat.js", "/chat.css", "/favicon.svg", "/ws", "/nope"):
            status, headers, body = http_get(port, path, *(UPGRADE if path == "/ws" else ()))
            assert (status, body) == (404, b"not found\n"), path
            assert_secure(headers)
        before = scrape(port)
        assert figure(before, "chatd_history_lines") == 0
        ann = clients.tcp(server)
        ann.login("ann")
        ann.send("SAY kept for history")
        ann.sync()
        after = scrape(port)
        assert figure(after, "chatd_connections", transport="tcp") == 1
        assert figure(after, "chatd_connections", transport="websocket") == 0
        assert figure(after, "chatd_users") == 1
        assert figure(after, "chatd_logins_total") == 1
        assert figure(after, "chatd_broadcasts_total") == 2
        assert figure(after, "chatd_history_lines") == 1
        assert figure(after, "chatd_history_bytes") > 0


class TestKeepalive:
    """Pings every --web-ping seconds of silence; three silent periods cut."""

    def test_answered_pings_keep_it_silence_cuts_it(self, shared: WebServer, room: Clients) -> None:
        """Idle side by side for several 0.3 s periods: the clients that answer
        pings stay in the room; the one that never answers is cut with PART
        ... ping timeout."""
        watcher = room.tcp(shared)
        watcher.login("watcher")
        before = scrape(shared.web)
        idle = room.ws(shared)  # the websockets client answers pings itself
        idle.login("idle")
        answering = room.raw(shared)
        answering.login("answering")
        silent = room.raw(shared, answer_pings=False)
        silent.login("silent")
        assert watcher.read_lines(3) == ["JOIN idle", "JOIN answering", "JOIN silent"]
        answering.wait_for_pings(2)  # the second comes four periods (1.2 s) after login
        assert watcher.read_line() == "PART silent ping timeout"
        assert answering.sync() == ["JOIN silent", "PART silent ping timeout"]
        assert idle.sync() == ["JOIN answering", "JOIN silent", "PART silent ping timeout"]
        assert silent.closed()[1] is None  # aborted, no close frame
        watcher.send("WHO")
        assert watcher.read_until("OK WHO") == ["USERS watcher idle answering", "OK WHO 3"]
        after = scrape(shared.web)
        assert figure(after, "chatd_cuts_total", reason="ping timeout") - figure(
            before, "chatd_cuts_total", reason="ping timeout") == 1


class TestLimits:
    """The hub's limits apply to WebSocket connections as to TCP ones."""

    def test_a_websocket_that_stops_reading_is_cut_past_max_sendq(
            self, own: Callable[..., WebServer], clients: Clients) -> None:
        """A client that never reads: once --max-sendq bytes wait for it, it is cut
        (PART ... send queue exceeded) and the others chat on."""
        server = own("--max-sendq", "4096", "--socket-sndbuf", "4096", "--no-flood-limit")
        talker = clients.tcp(server)
        talker.login("talker")
        stalled = clients.raw(server, rcvbuf=4096)
        stalled.send(text("NICK stalled"))  # and never reads again
        assert talker.read_line() == "JOIN stalled"
        payload = "p" * 1000
        cut = []
        for _ in range(100):
            talker.send(*[f"SAY {payload}"] * 10)
            cut = [line for line in talker.sync() if line.startswith("PART")]
            if cut:
                break
        assert cut == ["PART stalled send queue exceeded"]
        talker.send("SAY still here")
        assert talker.sync() == ["SAY talker still here"]
        samples = scrape(server.web)
        assert figure(samples, "chatd_cuts_total", reason="send queue exceeded") == 1
        assert figure(samples, "chatd_connections", transport="websocket") == 0

    def test_per_ip_cap_counts_websocket_and_tcp_together(self, own: Callable[..., WebServer],
                                                          clients: Clients) -> None:
        """With --limit-loopback --max-per-ip 2, one WebSocket and one TCP
        connection fill the cap: a third of either kind gets HELLO then BYE."""
        server = own("--limit-loopback", "--max-per-ip", "2")
        ws = clients.ws(server)
        ws.login("ann")
        tcp = clients.tcp(server)
        tcp.login("bob")
        third_ws = clients.ws(server)
        lines, code, _reason = third_ws.closed()
        assert lines[0].startswith("HELLO chatd/")
        assert (lines[1:], code) == (["BYE too many connections from your address"], 1000)
        third_tcp = clients.tcp(server)
        assert third_tcp.lines_until_eof()[1:] == ["BYE too many connections from your address"]
        ws.close()
        assert tcp.read_line() == "PART ann connection lost"

        def admitted() -> bool:
            client = clients.ws(server)
            client.read_line()
            try:
                client.send("NICK carl")
                return client.read_line() == "OK NICK carl"
            except ConnectionClosed:
                return False

        wait_until(admitted, 5, what="a WebSocket admitted once one closed", interval=0.05)
        samples = scrape(server.web)
        assert figure(samples, "chatd_refusals_total",
                      reason="too many connections from your address") >= 2

    def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(
            self, own: Callable[..., WebServer], clients: Clients) -> None:
        """With --web-trust-proxy the last X-Forwarded-For entry is the address
        the per-address cap counts (earlier entries are the client's own claims),
        and WebSocket connections count toward --max-clients."""
        server = own("--web-trust-proxy", "--max-per-ip", "1", "--max-clients", "3")

        def attempt(forwarded: str) -> str:
            """The line after HELLO, for a WebSocket from behind the proxy."""
            client = clients.ws(server, headers={"X-Forwarded-For": forwarded})
            assert client.read_line().startswith("HELLO")
            try:
                client.send("PING 1")
            except ConnectionClosed:
                pass  # refused: the BYE is already here
            return client.read_line()

        assert attempt("10.0.0.5") == "PONG 1"
        assert attempt("10.0.0.5") == "BYE too many connections from your address"
        assert attempt("10.0.0.5, 10.0.0.6") == "PONG 1"  # the proxy saw 10.0.0.6
        assert attempt("10.0.0.7, 10.0.0.5") == "BYE too many connections from your address"
        assert attempt("10.0.0.8 ,  10.0.0.6") == "BYE too many connections from your address"

        def open_connections() -> float:
            samples = scrape(server.web)
            return sum(figure(samples, "chatd_connections", transport=door) for door in ("tcp", "websocket"))

        wait_until(lambda: open_connections() == 2, 5, what="the refused ones closed")
        tcp = clients.tcp(server)  # loopback: exempt from the cap
        tcp.login("third")
        assert attempt("10.0.0.9") == "BYE server is full, try again later"
        assert "too many connections from your address" in server.server.log()

    def test_x_forwarded_for_is_ignored_without_the_option(self, shared: WebServer,
                                                            room: Clients) -> None:
        """Without --web-trust-proxy the header is the client's claim: two
        WebSockets claiming one address are both admitted (cap of one)."""
        first = room.ws(shared, headers={"X-Forwarded-For": "10.0.0.5"})
        second = room.ws(shared, headers={"X-Forwarded-For": "10.0.0.5"})
        first.login("first")
        second.login("second")
        assert first.sync() == ["JOIN second"]


class TestShutdown:
    """SIGTERM reaches WebSocket clients as it reaches TCP ones."""

    def test_sigterm_gives_wall_and_bye_and_healthz_503(self, own: Callable[..., WebServer],
                                                         clients: Clients) -> None:
        """A WebSocket client gets WALL * and BYE then a normal close; while a
        stalled reader holds the shutdown open, /healthz says 503."""
        server = own("--no-flood-limit", "--socket-sndbuf", "4096")
        ann = clients.ws(server)
        ann.login("ann")
        stalled = clients.tcp(server, rcvbuf=4096)
        stalled.send("NICK stalled")  # and never reads
        assert ann.read_line() == "JOIN stalled"
        for _ in range(15):
            ann.send(*["SAY " + "s" * 1000] * 10)
        assert len(ann.sync()) == 150
        assert http_get(server.web, "/healthz")[::2] == (200, b"ok\n")
        server.server.process.send_signal(signal.SIGTERM)
        lines, code, _reason = ann.closed()
        assert lines[0] == "WALL * server shutting down"
        assert lines[-1] == "BYE server shutting down"
        assert code == 1000
        assert http_get(server.web, "/healthz")[::2] == (503, b"shutting down\n")
        stalled.close()
        assert server.server.process.wait(5) == 0
