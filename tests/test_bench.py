"""chatd-bench run for real, briefly, against chatd (over TCP and over its
WebSocket door) and the naive baseline; and its pure parts, the WebSocket
frames among them, checked against what wsproto makes.

The runs check counts, order and exit codes only: never timings, which on a
shared 2-core machine mean nothing in a test.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake

from chatd.bench import stats
from chatd.bench.cli import build_parser, build_specs, check_args
from chatd.bench.client import _SAY, MIN_PAYLOAD, say_line
from chatd.bench.prefill import prefill_text
from chatd.bench.websocket import (
    CLOSE,
    PING,
    FrameError,
    Handshake,
    HandshakeFailed,
    ServerFrames,
    WsAddress,
    close_frame,
    parse_address,
    pong,
    text_message,
)
from tests.support import ROOT, RunningServer, chatd_command


def bench_command() -> list[str]:
    """The installed ``chatd-bench`` next to this Python, else ``-m chatd.bench``."""
    script = Path(sys.executable).with_name("chatd-bench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chatd.bench"]


def run_bench(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bench_command() + ["--port", str(port), "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


TRAFFIC = ("--clients", "20", "--senders", "3", "--window", "2", "--duration", "1",
           "--workers", "2", "--json")


def check_traffic(result: dict, members: int = 20) -> None:
    traffic = result["traffic"]
    assert traffic["sent"] > 0
    assert traffic["expected"] == traffic["sent"] * 20
    assert traffic["received"] == traffic["expected"]
    assert traffic["lost"] == 0
    assert traffic["reordered"] == 0
    assert result["login"]["heard_all"] == members


@pytest.fixture
def naive_port() -> Iterator[int]:
    """The baseline server of benchmarks/naive_chat.py on an ephemeral port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "naive_chat.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    try:
        assert match, line
        yield int(match.group(1))
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.e2e
def test_traffic_against_chatd(chatd_server: RunningServer) -> None:
    """Against chatd every line sent reaches all 20 clients, in order."""
    done = run_bench(chatd_server.port, *TRAFFIC,
                     "--server-pid", str(chatd_server.process.pid))
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


@pytest.mark.e2e
def test_traffic_against_naive_baseline(naive_port: int) -> None:
    """Against the naive baseline every line sent reaches all 20 clients, in order."""
    done = run_bench(naive_port, *TRAFFIC)
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


@pytest.mark.e2e
def test_login_storm_counts_every_client(chatd_server: RunningServer) -> None:
    """A login storm ends when each of the N clients has heard of all N."""
    done = run_bench(chatd_server.port, "--mode", "login", "--clients", "50", "--json")
    assert done.returncode == 0, done.stderr
    login = json.loads(done.stdout)["login"]
    assert login["complete"] and login["heard_all"] == 50
    assert login["joins_heard_after_who"] == 50 * 49 // 2


def run_history_storm(port: int, *, prefill: int, request: int = 20) -> dict:
    done = run_bench(port, "--mode", "login", "--clients", "30", "--workers", "2",
                     "--prefill", str(prefill), "--history-request", str(request), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.e2e
def test_history_request_storm_counts_hist_lines(chatd_factory: Callable[..., RunningServer]) -> None:
    """With 25 lines said first, each of 30 clients gets the 20 it asked for and the storm
    ends only once all 30 have their OK HISTORY and have heard all 30 members."""
    server = chatd_factory("--no-flood-limit", "--history", "100")
    result = run_history_storm(server.port, prefill=25)
    login = result["login"]
    assert result["prefill"]["lines"] == 25
    assert login["complete"] and login["heard_all"] == login["settled"] == 30
    assert login["joins_heard_after_who"] == 30 * 29 // 2
    history = login["history"]
    assert history["requested_lines"] == 20 and history["answered"] == 30
    assert history["hist_lines"] == history["ok_history_total"] == 30 * 20
    assert history["reply"]["p50_ms"] is not None


@pytest.mark.e2e
@pytest.mark.parametrize(("chatd_args", "prefill", "per_client"), [
    ((), 12, 12),  # the default flood limit delays 2 of the 12 lines: prefill waits for them
    (("--history", "0"), 5, 0),
], ids=["fewer-said-than-asked", "history-off"])
def test_history_request_gets_what_the_server_kept(
        chatd_factory: Callable[..., RunningServer], chatd_args: tuple[str, ...],
        prefill: int, per_client: int) -> None:
    """A client gets the lines the server kept, no more than were said, none with history off."""
    server = chatd_factory(*chatd_args)
    history = run_history_storm(server.port, prefill=prefill)["login"]["history"]
    assert history["answered"] == 30
    assert history["hist_lines"] == history["ok_history_total"] == 30 * per_client


@pytest.mark.e2e
def test_history_request_refused_is_one_line_and_exit_1(naive_port: int) -> None:
    """A server without HISTORY (the 1.0 baseline answers ERR) ends the run with one line."""
    done = run_bench(naive_port, "--mode", "login", "--clients", "5", "--history-request", "20")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"chatd-bench: server answered b[a-z]{3}\d+'s HISTORY with: "
                        r"ERR unknown-command .*", lines[0]), lines


def test_prefill_lines_are_not_taken_for_traffic() -> None:
    """A prefill line has the payload size and, replayed or not, never matches a benchmark SAY."""
    text = prefill_text(7, 64)
    assert text.startswith(b"prefill 000007 x") and len(text) == 64
    assert not _SAY.findall(b"SAY bxyzfill " + text + b"\r\nHIST 1.5 SAY bxyzfill " + text)


@pytest.mark.e2e
def test_refused_connection_is_one_line_and_exit_1() -> None:
    """A port nobody listens on gives one error line and exit status 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        done = run_bench(port, "--clients", "2", "--senders", "1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"chatd-bench: cannot connect to 127.0.0.1:{port}: connection refused"]


def test_say_line_has_the_payload_size() -> None:
    """A SAY line's text is exactly --payload-size bytes and starts with id and sequence."""
    line = say_line(7, 42, 123456789, MIN_PAYLOAD)
    assert line.startswith(b"SAY 00007000000042 123456789 x")
    assert len(line) == len(b"SAY ") + MIN_PAYLOAD + 1


def test_percentiles_of_a_histogram() -> None:
    """Percentiles come from bucketed microseconds with under 0.2 % error."""
    histogram = stats.merge([{stats.bucket(us): 1} for us in range(1, 1001)] + [{5000: 10}])
    assert stats.percentile(histogram, 0.5) == 505
    assert stats.percentile(histogram, 1.0) == 5000
    assert stats.bucket(1_000_000) <= 1_000_000 < stats.bucket(1_000_000) * 1.002


def test_sender_port_takes_the_senders_and_no_probe() -> None:
    """With --sender-port the senders connect there and the others to --port, and no sender
    is a probe; without it every client connects to --port and a sender may be a probe."""
    parser = build_parser()

    def plan(*extra: str) -> tuple[dict[int, int], set[int], set[int]]:
        args = parser.parse_args(["--port", "9000", "--clients", "50", "--senders", "5",
                                  "--workers", "3", *extra])
        check_args(parser, args)
        specs = build_specs(args, "abc")
        ports = {index: spec.tcp_port(index) for spec in specs for index in spec.indices}
        return (ports, {i for spec in specs for i in spec.senders},
                {i for spec in specs for i in spec.probes})

    ports, senders, probes = plan()
    assert set(ports.values()) == {9000} and len(ports) == 50
    assert senders & probes  # index 0 among them
    ports, senders, probes = plan("--sender-port", "9001")
    assert len(senders) == 5 and len(probes) == 32 and not senders & probes
    assert ports == {index: 9001 if index in senders else 9000 for index in range(50)}



# --- over WebSocket, against the real chatd --web ---------------------------------

_SERVING = re.compile(rb"serving the page on http://127\.0\.0\.1:(\d+)/")
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


def start_web_chatd(*args: str, timeout: float = 20) -> tuple[RunningServer, int]:
    """``chatd`` with a TCP port and a ``--web`` port, both ephemeral on
    127.0.0.1; the server (``.port`` is TCP's) and the web port."""
    log = tempfile.NamedTemporaryFile(prefix="chatd-", suffix=".log", delete=False)
    process = subprocess.Popen(
        chatd_command() + ["--listen", "tcp:0:interface=127.0.0.1:backlog=1024",
                           "--web", "tcp:0:interface=127.0.0.1:backlog=1024", *args],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)
    log.close()
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while not (_SERVING.search(out) and _LISTENING.search(out)):
            remaining = deadline - time.monotonic()
            chunk = (os.read(process.stdout.fileno(), 4096)
                     if remaining > 0 and selector.select(remaining) else b"")
            if not chunk:
                process.kill()
                process.wait(5)
                raise RuntimeError(f"chatd --web did not start: {Path(log.name).read_text()}")
            out += chunk
    finally:
        selector.close()
    tcp = int(_LISTENING.search(out).group(1))  # type: ignore[union-attr]  # found above
    web = int(_SERVING.search(out).group(1))  # type: ignore[union-attr]  # found above
    return RunningServer(process, "127.0.0.1", tcp, Path(log.name)), web


@pytest.fixture
def web_chatd_factory() -> Iterator[Callable[..., tuple[RunningServer, int]]]:
    """Start real ``chatd --web`` processes; every one is stopped at the end."""
    started: list[RunningServer] = []

    def start(*args: str) -> tuple[RunningServer, int]:
        server, web = start_web_chatd(*args)
        started.append(server)
        return server, web

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def web_chatd(web_chatd_factory: Callable[..., tuple[RunningServer, int]]) -> tuple[RunningServer, int]:
    """One ``chatd --web --no-flood-limit`` and its web port."""
    return web_chatd_factory("--no-flood-limit")


@pytest.mark.e2e
class TestOverWebSocket:
    """chatd-bench's clients on chatd's WebSocket door."""

    def test_traffic(self, web_chatd: tuple[RunningServer, int]) -> None:
        """Over WebSocket every line sent reaches all 20 clients, in order."""
        server, web = web_chatd
        done = run_bench(server.port, *TRAFFIC, "--ws", str(web),
                         "--server-pid", str(server.process.pid))
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        check_traffic(result)
        assert result["transport"] == "ws"
        assert result["server"] == result["websocket"] == f"ws://127.0.0.1:{web}/ws"
        assert result["traffic"]["tool_cpu_percent"] is not None

    def test_history_storm_with_prefill(self, web_chatd: tuple[RunningServer, int]) -> None:
        """A login storm over WebSocket, after a prefill said over WebSocket
        too, gets every HIST line it asked for."""
        server, web = web_chatd
        done = run_bench(server.port, "--ws", f"ws://127.0.0.1:{web}/ws", "--mode", "login",
                         "--clients", "30", "--workers", "2", "--prefill", "25",
                         "--history-request", "20", "--json")
        assert done.returncode == 0, done.stderr
        login = json.loads(done.stdout)["login"]
        assert login["complete"] and login["heard_all"] == login["settled"] == 30
        assert login["joins_heard_after_who"] == 30 * 29 // 2
        assert login["history"]["hist_lines"] == login["history"]["ok_history_total"] == 30 * 20

    def test_idle_answers_pings(self, web_chatd_factory: Callable[..., tuple[RunningServer, int]]
                                ) -> None:
        """Idle WebSocket clients answer the server's pings, so a server that
        cuts a connection after three silent ping periods keeps them all."""
        server, web = web_chatd_factory("--web-ping", "0.2")
        done = run_bench(server.port, "--ws", str(web), "--idle", "--clients", "10",
                         "--duration", "1.5", "--server-pid", str(server.process.pid), "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["idle"]["connections_lost"] == 0, result["idle"]
        assert result["idle"]["pings_answered"] >= 10
        assert result["server_rss"]["connections"] == 10
        assert result["server_rss"]["kib_per_connection"] is not None
        assert "ping timeout" not in server.log()

    def test_idle_members_beside_tcp_traffic(self, web_chatd: tuple[RunningServer, int]) -> None:
        """With 10 idle WebSocket and 5 idle TCP members beside 20 TCP clients,
        everyone waits for a room of 35, the 20 get every line and the idle
        members' deliveries are counted apart."""
        server, web = web_chatd
        done = run_bench(server.port, *TRAFFIC, "--ws", str(web), "--transport", "tcp",
                         "--idle-ws", "10", "--idle-tcp", "5")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        check_traffic(result, members=35)
        assert result["transport"] == "tcp" and result["members"] == 35
        assert result["login"]["joins_heard_after_who"] == 35 * 34 // 2
        traffic = result["traffic"]
        assert traffic["idle_members"] == 15
        assert 0 < traffic["idle_deliveries_per_s"] <= traffic["sent"] * 15 / traffic["duration_s"]
        assert traffic["room_deliveries_per_s"] == pytest.approx(
            traffic["deliveries_per_s"] + traffic["idle_deliveries_per_s"], abs=0.2)

    def test_refused_upgrade_is_one_line_and_exit_1(self, web_chatd: tuple[RunningServer, int]
                                                    ) -> None:
        """A path that is not the WebSocket gives one line naming the HTTP answer."""
        server, web = web_chatd
        done = run_bench(server.port, "--ws", f"ws://127.0.0.1:{web}/nowhere", "--clients", "2",
                         "--senders", "1")
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"chatd-bench: ws://127.0.0.1:{web}/nowhere: the server answered HTTP 404 instead "
            f"of switching to WebSocket: not found"]


def test_websocket_options_need_an_address() -> None:
    """--transport ws and --idle-ws without --ws are usage errors (exit 2)."""
    for args in (("--transport", "ws"), ("--idle-ws", "3")):
        done = run_bench(1, "--clients", "2", "--senders", "1", *args)
        assert done.returncode == 2
        assert "need --ws URL|PORT" in done.stderr


# --- the WebSocket parts, without a server -----------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("8080", WsAddress("10.0.0.1", 8080, "/ws")),
    ("ws://127.0.0.1:9000/ws", WsAddress("127.0.0.1", 9000, "/ws")),
    ("ws://example.org/chat?room=1", WsAddress("example.org", 80, "/chat?room=1")),
    ("ws://[::1]:9000", WsAddress("::1", 9000, "/ws")),
])
def test_address_from_a_port_or_a_url(text: str, expected: WsAddress) -> None:
    """--ws takes a port (on --host, path /ws) or a ws:// URL (path /ws if none)."""
    assert parse_address(text, "10.0.0.1") == expected


def test_address_urls() -> None:
    """An address writes its URL and Host header as RFC 6455 wants them."""
    assert WsAddress("::1", 9000).url == "ws://[::1]:9000/ws"
    assert WsAddress("127.0.0.1", 80, "/x").host_header == "127.0.0.1:80"


@pytest.mark.parametrize("text", ["wss://example.org/ws", "http://example.org/", "70000",
                                  "ws://:80/ws", "example.org:80"])
def test_address_refused(text: str) -> None:
    """TLS, other schemes, bad ports and host-less URLs are refused in words."""
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_address(text, "127.0.0.1")


def server_side() -> Connection:
    """wsproto's server end of an open WebSocket: what chatd's door uses."""
    return Connection(ConnectionType.SERVER)


def server_frames(*messages: str) -> bytes:
    """One unmasked text message per argument, as wsproto's server writes them."""
    server = server_side()
    return b"".join(server.send(TextMessage(data=text)) for text in messages)


def feed_whole(data: bytes) -> tuple[bytes, list[tuple[int, bytes]], ServerFrames]:
    frames = ServerFrames()
    return frames.feed(data), frames.controls, frames


def feed_byte_by_byte(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    frames = ServerFrames()
    text = b"".join(frames.feed(data[i:i + 1]) for i in range(len(data)))
    return text, frames.controls


def deframes(data: bytes, text: bytes, controls: list[tuple[int, bytes]] | None = None) -> None:
    """``data`` gives ``text`` (and ``controls``) whole, byte by byte, and with
    the start of another frame after it, which waits for the rest."""
    controls = controls or []
    got, found, _ = feed_whole(data)
    assert (got, found) == (text, controls)
    assert feed_byte_by_byte(data) == (text, controls)
    after = server_frames("JOIN later\r\n")
    got, found, frames = feed_whole(data + after[:1])
    assert (got, found) == (text, controls)
    assert frames.feed(after[1:]) == b"JOIN later\r\n"


LINE = "SAY bxyz1 00001000000042 1234567890 xxxxxxxxxxxxxxxxxxxxxxxxx\r\n"


class TestServerFrames:
    """The server's frames become the text stream a TCP client would read."""

    def test_one_message(self) -> None:
        """A message of lines gives its lines."""
        deframes(server_frames("HELLO chatd/1.1\r\n"), b"HELLO chatd/1.1\r\n")

    def test_messages_run_together(self) -> None:
        """Several messages in one read give their text joined, in order."""
        deframes(server_frames("OK NICK ann\r\n", "JOIN ann\r\nUSERS ann\r\n", "OK WHO 1\r\n"),
                 b"OK NICK ann\r\nJOIN ann\r\nUSERS ann\r\nOK WHO 1\r\n")

    @pytest.mark.parametrize("lines", [2, 1000, 1200], ids=["7-bit", "16-bit", "64-bit"])
    def test_every_length_encoding(self, lines: int) -> None:
        """Payloads under 126 bytes, under 64 KiB and over it (RFC 6455 5.2)."""
        text = (LINE[:60] + "\r\n") * lines if lines == 2 else LINE * lines
        assert (len(text) < 126) == (lines == 2) and (len(text) > 65535) == (lines == 1200)
        deframes(server_frames(text), text.encode())

    def test_fragments_and_a_ping_between_them(self) -> None:
        """A message in fragments, with a ping between two of them, gives the
        text whole and the ping aside (control frames may come between)."""
        server = server_side()
        data = (server.send(TextMessage(data="SAY ann he", message_finished=False))
                + server.send(Ping(b"chatd"))
                + server.send(TextMessage(data="llo\r\n", message_finished=True)))
        deframes(data, b"SAY ann hello\r\n", [(PING, b"chatd")])

    def test_close_after_the_last_lines(self) -> None:
        """The lines before a close come out, and the close is kept with its code."""
        server = server_side()
        data = (server.send(TextMessage(data="BYE see you\r\n"))
                + server.send(CloseConnection(code=1000, reason="")))
        deframes(data, b"BYE see you\r\n", [(CLOSE, b"\x03\xe8")])

    def test_masked_frame_is_an_error(self) -> None:
        """A masked frame (a client's) is refused: servers never mask."""
        with pytest.raises(FrameError, match="masked"):
            ServerFrames().feed(text_message(b"NICK ann\n"))

    def test_binary_message_is_an_error(self) -> None:
        """A binary message is refused: chatd sends lines as text."""
        with pytest.raises(FrameError, match="binary"):
            ServerFrames().feed(server_side().send(BytesMessage(data=b"x")))

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.text(st.characters(codec="utf-8"), max_size=300), min_size=1, max_size=6),
           st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
    def test_any_split_gives_the_same_text(self, messages: list[str], cuts: list[int]) -> None:
        """However the reads cut the frames, the text is the messages' text."""
        data = server_frames(*messages)
        frames = ServerFrames()
        edges = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
        text = b"".join(frames.feed(data[a:b]) for a, b in zip(edges, edges[1:], strict=False))
        assert text == "".join(messages).encode()
        assert frames.controls == []


class TestHandshake:
    """The opening handshake, against wsproto's server side."""

    def exchange(self, answer: AcceptConnection | RejectConnection, after: bytes = b""
                 ) -> bytes | None:
        client = Handshake()
        server = H11Handshake(ConnectionType.SERVER)
        server.receive_data(client.request(WsAddress("127.0.0.1", 8080)))
        request = next(iter(server.events()))
        assert isinstance(request, Request)
        assert (request.host, request.target) == ("127.0.0.1:8080", "/ws")
        response = server.send(answer) + after
        assert client.receive(response[:10]) is None  # the head is not complete yet
        return client.receive(response[10:])

    def test_accepted_gives_what_follows_the_head(self) -> None:
        """A 101 gives back the bytes after its head: the first frames."""
        hello = server_frames("HELLO chatd/1.1\r\n")
        assert self.exchange(AcceptConnection(), hello) == hello

    def test_refused_says_the_status(self) -> None:
        """Any other answer fails with its status code."""
        with pytest.raises(HandshakeFailed, match="HTTP 403"):
            self.exchange(RejectConnection(status_code=403))

    def test_a_bad_accept_token_fails(self) -> None:
        """A 101 whose Sec-WebSocket-Accept does not match the key fails."""
        client = Handshake()
        client.request(WsAddress("127.0.0.1", 8080))
        forged = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n")
        with pytest.raises(HandshakeFailed, match="accept token"):
            client.receive(forged)


class TestClientFrames:
    """What the client sends, read by wsproto's server side as chatd reads it."""

    def received(self, data: bytes) -> list[object]:
        server = server_side()
        server.receive_data(data)
        return list(server.events())

    def test_lines_are_one_masked_text_message(self) -> None:
        """Lines go out as one text message, masked (a server refuses unmasked ones)."""
        events = self.received(text_message(b"NICK ann\nSAY hi\n"))
        assert len(events) == 1 and isinstance(events[0], TextMessage)
        assert events[0].data == "NICK ann\nSAY hi\n" and events[0].message_finished

    def test_pong_carries_the_ping_payload(self) -> None:
        """A pong echoes the ping's payload (RFC 6455 5.5.3)."""
        (event,) = self.received(pong(b"chatd"))
        assert type(event).__name__ == "Pong" and event.payload == b"chatd"  # type: ignore[attr-defined]

    def test_close_echoes_the_code(self) -> None:
        """A close answers with the server's status code, 1000 when it gave none."""
        (event,) = self.received(close_frame(b"\x03\xf0bye"))
        assert isinstance(event, CloseConnection) and event.code == 1008
        (event,) = self.received(close_frame(b""))
        assert isinstance(event, CloseConnection) and event.code == 1000
