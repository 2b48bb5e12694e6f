"""``--reuse-port``: several chatd processes on one listening port.

The description parser (``chatd/tcp_endpoint.py``) and the config checks
are pure.  The binding (``chatd/transports/reuseport.py``) is tested on real
loopback sockets, in process, and then in real chatd processes (marked
``e2e``).  Those processes run chatd's own ``main`` with ``reuse_port``
forced on and no Redis: ``parse_config`` refuses that, rightly, since each
would be a room of its own; here the two rooms are what shows which process
took each connection, and no Redis needs to run.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from chatd.config import BACKLOG, Config, ConfigError, build_parser, parse_config
from chatd.tcp_endpoint import TCPEndpoint, parse_tcp_endpoint, split_description
from chatd.transports.reuseport import ReusePortEndpoint, bind_reuse_port
from tests.support import ROOT, LineClient, RunningServer, chatd_command, start_chatd
from tests.websocket_support import http_get

REDIS = ("--redis", "redis://127.0.0.1:6379/0")  # parsed only: nothing connects to it here
LINUX = pytest.mark.skipif(sys.platform != "linux",
                           reason="only Linux spreads connections over SO_REUSEPORT sockets")
CONNECTIONS = 50  # over two listeners: one takes them all once in 2**49 runs


def loopback(port: int = 0) -> TCPEndpoint:
    return TCPEndpoint(port=port, interface="127.0.0.1", backlog=None, ipv6=False)


class TestParseTcpEndpoint:
    """A tcp:/tcp6: description is read as Twisted's serverFromString reads it."""

    @pytest.mark.parametrize(("description", "expected"), [
        ("tcp:8123", TCPEndpoint(port=8123, interface="", backlog=None, ipv6=False)),
        ("tcp:0:interface=127.0.0.1",
         TCPEndpoint(port=0, interface="127.0.0.1", backlog=None, ipv6=False)),
        # What config builds from --port 8123 --host ::1 (the colons escaped).
        (r"tcp:8123:backlog=1024:interface=\:\:1",
         TCPEndpoint(port=8123, interface="::1", backlog=1024, ipv6=True)),
        ("tcp:port=8123:backlog=7", TCPEndpoint(port=8123, interface="", backlog=7, ipv6=False)),
        ("tcp:8123:127.0.0.1:7", TCPEndpoint(port=8123, interface="127.0.0.1", backlog=7, ipv6=False)),
        (r"tcp:8123:interface=fe80\:\:1%lo",
         TCPEndpoint(port=8123, interface="fe80::1%lo", backlog=None, ipv6=True)),
        ("tcp6:8123", TCPEndpoint(port=8123, interface="::", backlog=None, ipv6=True)),
        # tcp6 takes its backlog before its interface, as Twisted's parser does.
        (r"tcp6:8123:7:\:\:1", TCPEndpoint(port=8123, interface="::1", backlog=7, ipv6=True)),
        ("tcp:8123:interface=localhost",
         TCPEndpoint(port=8123, interface="localhost", backlog=None, ipv6=False)),
    ])
    def test_reads_port_interface_and_backlog(self, description: str, expected: TCPEndpoint) -> None:
        """Port, interface and backlog come out as named or in Twisted's positional order."""
        assert parse_tcp_endpoint(description) == expected

    @pytest.mark.parametrize("description", [
        "tcp:8123", "tcp:0:interface=127.0.0.1", r"tcp:8123:backlog=1024:interface=\:\:1",
        "tcp:port=8123:backlog=7", "tcp:8123:127.0.0.1:7", "tcp6:8123", r"tcp6:8123:7:\:\:1",
        r"tcp6:interface=\:\:1:port=9", "tcp:8123:",
    ])
    def test_agrees_with_twisted(self, description: str) -> None:
        """Twisted's own endpoint for the description listens on the same port, backlog and interface."""
        reactor = MemoryReactor()
        endpoints.serverFromString(reactor, description).listen(Factory())
        [(port, _factory, backlog, interface)] = reactor.tcpServers
        ours = parse_tcp_endpoint(description)
        assert (ours.port, ours.backlog or 50, ours.interface) == (port, backlog, interface)

    @pytest.mark.parametrize(("description", "why"), [
        ("ssl:8443:privateKey=key.pem", "'ssl' is not a tcp: or tcp6: endpoint"),
        ("unix:/tmp/chatd.sock", "'unix' is not a tcp: or tcp6: endpoint"),
        ("systemd:domain=INET:index=0", "'systemd' is not a tcp: or tcp6: endpoint"),
        ("TCP:8123", "'TCP' is not a tcp: or tcp6: endpoint"),
        ("tcp", "it names no port"),
        ("tcp:x", "port 'x' is not a whole number"),
        ("tcp:70000", "port '70000' is out of range (0-65535)"),
        ("tcp:8123:backlog=0", "backlog '0' is out of range (at least 1)"),
        ("tcp:8123:reuse=1", "unknown argument 'reuse' (tcp endpoints take port, interface, backlog)"),
        ("tcp:8123:port=9", "port is given twice"),
        ("tcp:1:a:2:b", "it has 4 unnamed arguments; at most 3 (port, interface, backlog)"),
        ("tcp:8123:interface=::1", "interface is given twice"),  # unescaped colons
        ("tcp:8123\\", "it ends in a lone backslash"),
    ])
    def test_refuses_what_it_cannot_bind(self, description: str, why: str) -> None:
        """Another kind of endpoint, or an argument Twisted would not take, is a ValueError saying why."""
        with pytest.raises(ValueError) as raised:
            parse_tcp_endpoint(description)
        assert str(raised.value) == why

    def test_split_keeps_later_equals_in_the_value(self) -> None:
        """Only an argument's first '=' names it; a backslash takes the next character as it is."""
        assert split_description(r"a:b=c=d:e\:f:g\\h") == (["a", "e:f", "g\\h"], {"b": "c=d"})


def config(*args: str, **environ: str) -> Config:
    return parse_config(list(args), environ)


class TestConfig:
    """--reuse-port is refused where it would not do what it says."""

    def test_off_by_default_and_nothing_else_changes(self) -> None:
        """Without --reuse-port the listeners are those chatd always had, bound without SO_REUSEPORT."""
        assert config().reuse_port is False
        assert config().listen == Config().listen
        assert config("--listen", "ssl:8443:privateKey=k.pem", "--web", "unix:/x").reuse_port is False

    def test_needs_redis(self) -> None:
        """--reuse-port without --redis or CHATD_REDIS is refused in one line: the processes would be separate rooms."""
        with pytest.raises(ConfigError) as raised:
            config("--reuse-port")
        assert str(raised.value).startswith("--reuse-port needs --redis: ")
        assert "\n" not in str(raised.value)

    def test_redis_from_the_environment_will_do(self) -> None:
        """CHATD_REDIS counts as --redis."""
        assert config("--reuse-port", CHATD_REDIS="redis://127.0.0.1:6379/0").reuse_port is True

    @pytest.mark.parametrize("args", [
        (), ("--port", "9000"), ("--host", "::1", "--port", "9000"),
        ("--listen", "tcp:9000", "--listen", "tcp6:9001"),
        ("--web", "tcp:8080:interface=127.0.0.1"),
        ("--metrics", "ssl:9100:privateKey=k.pem"),  # metrics ports are each process's own
    ])
    def test_tcp_listeners_are_accepted(self, args: tuple[str, ...]) -> None:
        """--port/--host, tcp: and tcp6: --listen and --web endpoints can be shared; --metrics is not checked."""
        assert config("--reuse-port", *REDIS, *args).reuse_port is True

    @pytest.mark.parametrize(("args", "message"), [
        (("--listen", "ssl:8443:privateKey=k.pem"),
         "--reuse-port takes only tcp: and tcp6: endpoints; --listen 'ssl:8443:privateKey=k.pem': "
         "'ssl' is not a tcp: or tcp6: endpoint"),
        (("--listen", "tcp:8123", "--listen", "unix:/run/chatd.sock"),
         "--reuse-port takes only tcp: and tcp6: endpoints; --listen 'unix:/run/chatd.sock': "
         "'unix' is not a tcp: or tcp6: endpoint"),
        (("--web", "ssl:8443:privateKey=k.pem"),
         "--reuse-port takes only tcp: and tcp6: endpoints; --web 'ssl:8443:privateKey=k.pem': "
         "'ssl' is not a tcp: or tcp6: endpoint"),
        (("--listen", "tcp:8123:backlog=lots"),
         "--reuse-port takes only tcp: and tcp6: endpoints; --listen 'tcp:8123:backlog=lots': "
         "backlog 'lots' is not a whole number"),
    ])
    def test_other_endpoints_are_refused(self, args: tuple[str, ...], message: str) -> None:
        """An ssl:, unix: or malformed endpoint with --reuse-port is one line naming the option and the endpoint."""
        with pytest.raises(ConfigError) as raised:
            config("--reuse-port", *REDIS, *args)
        assert str(raised.value) == message

    def test_help_says_tcp_only(self) -> None:
        """--help lists --reuse-port under "where to listen" and says it is TCP only and needs --redis."""
        help_ = " ".join(build_parser().format_help().split())
        where = help_.index("where to listen:")
        assert where < help_.index("--reuse-port ") < help_.index("limits:")
        assert "TCP only, not ssl: or unix:; needs --redis" in help_



class TestConfigIrc:
    """--reuse-port and the IRC listeners (--irc): shared when tcp:, refused otherwise."""

    def test_tcp_irc_endpoints_are_accepted(self) -> None:
        """tcp: and tcp6: --irc endpoints can be shared like the others."""
        assert config("--reuse-port", *REDIS, "--irc", "tcp:6667", "--irc", "tcp6:6668").reuse_port is True

    def test_ssl_irc_endpoint_is_refused(self) -> None:
        """An ssl: --irc endpoint with --reuse-port is one line naming --irc and the endpoint."""
        with pytest.raises(ConfigError) as raised:
            config("--reuse-port", *REDIS, "--irc", "tcp:6667", "--irc", "ssl:6697:privateKey=k.pem")
        assert str(raised.value) == (
            "--reuse-port takes only tcp: and tcp6: endpoints; --irc 'ssl:6697:privateKey=k.pem': "
            "'ssl' is not a tcp: or tcp6: endpoint")

    def test_ssl_irc_endpoint_without_reuse_port_is_fine(self) -> None:
        """Without --reuse-port an ssl: --irc endpoint is not checked."""
        assert config("--irc", "ssl:6697:privateKey=k.pem").irc == ("ssl:6697:privateKey=k.pem",)

# --- real sockets, in process ------------------------------------------------------


def accept_all(listeners: list[socket.socket], expected: int, timeout: float = 10.0) -> list[int]:
    """Accept (and close) connections on non-blocking listeners until
    ``expected`` have arrived; how many each listener took."""
    taken = [0] * len(listeners)
    deadline = time.monotonic() + timeout
    while sum(taken) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{sum(taken)} of {expected} connections accepted")
        ready, _, _ = select.select(listeners, [], [], remaining)
        for listener in ready:
            try:
                connection, _ = listener.accept()
            except BlockingIOError:  # another listener's, or already taken
                continue
            connection.close()
            taken[listeners.index(listener)] += 1
    return taken


@pytest.fixture
def shared() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two SO_REUSEPORT listeners on one loopback port."""
    first = bind_reuse_port(loopback())
    second = bind_reuse_port(loopback(first.getsockname()[1]))
    yield first, second
    first.close()
    second.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.e2e
class TestBindReusePort:
    """bind_reuse_port's sockets share a port with each other and with nothing else."""

    @LINUX
    def test_two_sockets_on_one_port_both_take_connections(
            self, shared: tuple[socket.socket, socket.socket]) -> None:
        """The kernel spreads 50 connections over two listeners on one port, each getting some."""
        port = shared[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5)
                   for _ in range(CONNECTIONS)]
        try:
            taken = accept_all(list(shared), CONNECTIONS)
        finally:
            for client in clients:
                client.close()
        assert sum(taken) == CONNECTIONS and min(taken) >= 1, taken

    def test_socket_is_listening_non_blocking_with_both_options(
            self, shared: tuple[socket.socket, socket.socket]) -> None:
        """The socket listens, does not block, and has SO_REUSEADDR and SO_REUSEPORT set."""
        sock = shared[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sock.getblocking() is False

    def test_a_socket_without_reuse_port_cannot_join(
            self, shared: tuple[socket.socket, socket.socket]) -> None:
        """A socket bound as Twisted binds it (SO_REUSEADDR only) gets "address already in use" on the shared port."""
        with socket.socket() as plain:
            plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError) as raised:
                plain.bind(("127.0.0.1", shared[0].getsockname()[1]))
        assert raised.value.errno == errno.EADDRINUSE

    @LINUX
    def test_a_port_held_without_reuse_port_is_refused_and_nothing_leaks(self) -> None:
        """Binding a port another socket holds without SO_REUSEPORT raises EADDRINUSE and leaves no socket open."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            before = open_fds()
            with pytest.raises(OSError) as raised:
                bind_reuse_port(loopback(holder.getsockname()[1]))
            assert open_fds() == before
        assert raised.value.errno == errno.EADDRINUSE

    def test_ipv6_loopback(self) -> None:
        """An IPv6 interface gets an IPv6 socket."""
        try:
            sock = bind_reuse_port(TCPEndpoint(port=0, interface="::1", backlog=None, ipv6=True))
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback here: {exc}")
        with sock:
            assert sock.family == socket.AF_INET6
            assert sock.getsockname()[0] == "::1"


class AdoptingReactor:
    """Records adoptStreamPort calls, keeping its own duplicate of the
    descriptor as a real reactor does."""

    def __init__(self) -> None:
        self.adopted: list[tuple[socket.socket, int, Any]] = []

    def adoptStreamPort(self, fileno: int, family: int, factory: Any) -> str:
        self.adopted.append((socket.fromfd(fileno, family, socket.SOCK_STREAM), family, factory))
        return "the port"


@pytest.mark.e2e
class TestReusePortEndpoint:
    """The endpoint hands the reactor its socket, or fails as Twisted's TCP endpoint fails."""

    def test_hands_the_reactor_a_shared_listening_socket(self) -> None:
        """listen() adopts a listening SO_REUSEPORT socket of the right family with the factory, closing its copy."""
        reactor, factory = AdoptingReactor(), Factory()
        before = open_fds() if sys.platform == "linux" else None
        result = ReusePortEndpoint(reactor, loopback()).listen(factory)
        assert self.result_of(result) == "the port"
        [(sock, family, adopted_factory)] = reactor.adopted
        with sock:
            assert (family, adopted_factory) == (socket.AF_INET, factory)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert os.get_blocking(sock.fileno()) is False
            if before is not None:
                assert open_fds() == before + 1  # the reactor's duplicate only

    def test_a_busy_port_fails_with_cannot_listen(self) -> None:
        """A port held without SO_REUSEPORT fails listen() with CannotListenError carrying the socket error."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = ReusePortEndpoint(AdoptingReactor(), loopback(port)).listen(Factory())
            failure = self.result_of(result)
        assert failure.check(CannotListenError)
        assert (failure.value.interface, failure.value.port) == ("127.0.0.1", port)
        assert failure.value.socketError.errno == errno.EADDRINUSE

    @staticmethod
    def result_of(deferred: Any) -> Any:
        """An already-fired Deferred's result (or Failure), taken off it."""
        results: list[Any] = []
        deferred.addBoth(results.append)
        [result] = results
        return result


# --- real chatd processes ----------------------------------------------------------

# chatd as run() runs it, with reuse_port forced on past the --redis check.
SHARING_CHATD = """
import dataclasses, sys
from twisted.internet import task
from chatd.config import parse_config
from chatd.server import install_reactor, main
config = dataclasses.replace(parse_config(sys.argv[1:], {}), reuse_port=True)
install_reactor(config.reactor)
task.react(main, [config])
"""
SHARING_COMMAND = [sys.executable, "-c", SHARING_CHATD]


@pytest.fixture
def placeholder() -> Iterator[socket.socket]:
    """A free loopback port held with SO_REUSEPORT, so that chatd processes
    can be given a fixed port that nothing else takes meanwhile; close it
    before connecting, or it takes its share of the connections."""
    sock = bind_reuse_port(loopback())
    yield sock
    sock.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes to kill at the end, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_sharing(*args: str, listen: tuple[str, ...]) -> RunningServer:
    return start_chatd(*args, listen=listen, command=SHARING_COMMAND)


def start_until(command: list[str], marker: str, log: Path,
                timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start ``command`` (stderr to ``log``) and wait for a stdout line
    containing ``marker``."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    for _ in range(1000):  # lines; chatd prints a handful before serving
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
        line = process.stdout.readline() if ready else b""
        if marker.encode() in line:
            return process
        if not line:
            break
    process.kill()
    process.wait(10)
    raise RuntimeError(f"no {marker!r} from {command}: {log.read_text()}")


def rooms_of(clients: list[LineClient]) -> set[frozenset[str]]:
    """Each client's room, as the nicks its WHO lists."""
    found = set()
    for client in clients:
        client.send("WHO")
        lines = client.read_until("OK WHO")
        found.add(frozenset(nick for line in lines if line.startswith("USERS ")
                            for nick in line.split()[1:]))
    return found


@pytest.mark.e2e
class TestChatdProcesses:
    """chatd processes with --reuse-port serve one port together."""

    @LINUX
    @pytest.mark.parametrize("reactor", ["default", "asyncio"])
    def test_two_processes_share_one_port(
            self, chatd_factory: Any, placeholder: socket.socket, reactor: str) -> None:
        """Two chatd processes listen on one port, each prints its listening line, and 50 logins go to both."""
        port = placeholder.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        servers = [chatd_factory("--reactor", reactor, listen=(description,),
                                 command=SHARING_COMMAND) for _ in range(2)]
        placeholder.close()
        for server in servers:
            assert server.ports == [("127.0.0.1", port, description)]
        clients = [LineClient("127.0.0.1", port) for _ in range(CONNECTIONS)]
        try:
            for number, client in enumerate(clients):
                client.login(f"u{number}")
            rooms = rooms_of(clients)
        finally:
            for client in clients:
                client.close()
        # No Redis between them: two rooms, one per process, together everyone.
        assert len(rooms) == 2, rooms
        first, second = rooms
        assert not first & second
        assert first | second == {f"u{number}" for number in range(CONNECTIONS)}

    def test_web_port_is_shared_too(self, placeholder: socket.socket, tmp_path: Path,
                                    processes: list[subprocess.Popen[bytes]]) -> None:
        """--web tcp: endpoints are bound with SO_REUSEPORT: two processes serve the page on one port."""
        port = placeholder.getsockname()[1]
        for number in range(2):
            processes.append(start_until(
                [*SHARING_COMMAND, "--listen", "tcp:0:interface=127.0.0.1",
                 "--web", f"tcp:{port}:interface=127.0.0.1"],
                "serving the page on", tmp_path / f"chatd-{number}.log"))
        placeholder.close()
        for _ in range(10):
            status, _headers, body = http_get(port, "/healthz")
            assert (status, body.strip()) == (200, b"ok")
        # A chatd without --reuse-port cannot join them.
        plain = subprocess.run([*chatd_command(), "--listen", "tcp:0:interface=127.0.0.1",
                                "--web", f"tcp:{port}:interface=127.0.0.1"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=20)
        assert plain.returncode == 1
        assert plain.stderr.splitlines()[-1] == (
            f"chatd: cannot listen on tcp:{port}:interface=127.0.0.1:backlog={BACKLOG}: "
            f"Address already in use")

    def test_busy_port_is_the_usual_one_line(self) -> None:
        """A port held without SO_REUSEPORT gives the usual "cannot listen" line and exit status 1."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = subprocess.run([*SHARING_COMMAND, "--listen", f"tcp:{port}:interface=127.0.0.1"],
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                    timeout=20, cwd=ROOT)
        assert result.returncode == 1
        assert result.stderr == (f"chatd: cannot listen on tcp:{port}:interface=127.0.0.1: "
                                 f"Address already in use\n")
        assert result.stdout == ""

    def test_twistd_service_binds_with_reuse_port(
            self, placeholder: socket.socket, processes: list[subprocess.Popen[bytes]]) -> None:
        """``twistd chatd``'s service tree binds its listeners with SO_REUSEPORT too."""
        port = placeholder.getsockname()[1]
        script = TWISTD_SERVICE.replace("PORT", str(port))
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        processes.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready and process.stdout.readline() == b"running\n"
        placeholder.close()
        client = LineClient("127.0.0.1", port)
        try:
            assert client.read_line().startswith("HELLO chatd/")
        finally:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


# make_service as twistd calls it, with reuse_port forced on past the --redis check.
TWISTD_SERVICE = """
import dataclasses
from twisted.internet import reactor
from chatd.config import parse_config
from chatd.service import make_service
config = dataclasses.replace(parse_config(["--listen", "tcp:PORT:interface=127.0.0.1"], {}),
                             reuse_port=True)
top = make_service(config)
reactor.callWhenRunning(top.startService)
reactor.callWhenRunning(print, "running", flush=True)
reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
reactor.run()
"""
