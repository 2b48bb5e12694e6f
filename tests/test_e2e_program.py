"""The chatd program as an operator runs it: signals, bad starts, entry
points, logging and TLS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatd import __version__
from tests.support import (
    LineClient,
    RunningServer,
    chatd_command,
    start_twistd,
    wait_room_empty,
    wait_until,
)

pytestmark = pytest.mark.e2e

SHUTDOWN = "server shutting down"
FEW_SECONDS = 5.0


def run_chatd(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run chatd to completion (for starts that must fail)."""
    return subprocess.run([*chatd_command(), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


class TestShutdown:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
    def test_signal_says_wall_and_bye_then_exits_zero(
            self, chatd_server: RunningServer, sig: signal.Signals) -> None:
        """On SIGTERM or SIGINT every connection gets WALL * and BYE then EOF, and chatd exits 0 within seconds."""
        lurker = LineClient(chatd_server.host, chatd_server.port)
        assert lurker.read_line().startswith("HELLO ")
        ann = LineClient(chatd_server.host, chatd_server.port)
        bob = LineClient(chatd_server.host, chatd_server.port, newline=b"\r\n")
        ann.login("ann")
        bob.login("bob")
        assert ann.read_line() == "JOIN bob"
        lurker.send("PING ready")
        assert lurker.read_line() == "PONG ready"

        started = time.monotonic()
        chatd_server.process.send_signal(sig)
        for client in (lurker, ann, bob):
            lines = client.lines_until_eof()
            assert lines[0] == f"WALL * {SHUTDOWN}"
            assert lines[-1] == f"BYE {SHUTDOWN}"
            # Members closed before this one may be announced on the way out.
            assert all(line.startswith("PART ") for line in lines[1:-1]), lines
        assert chatd_server.process.wait(FEW_SECONDS) == 0
        assert time.monotonic() - started < FEW_SECONDS
        assert "Traceback" not in chatd_server.log()

    def test_idle_server_exits_zero_on_sigterm(self, chatd_server: RunningServer) -> None:
        """A running server with no connections left exits 0 promptly on SIGTERM."""
        # A HELLO proves the reactor runs.
        probe = LineClient(chatd_server.host, chatd_server.port)
        assert probe.read_line().startswith("HELLO ")
        probe.close()
        wait_room_empty(chatd_server.host, chatd_server.port)
        chatd_server.process.send_signal(signal.SIGTERM)
        assert chatd_server.process.wait(FEW_SECONDS) == 0

    def test_sigterm_as_soon_as_it_listens_is_graceful(self, tmp_path: Path) -> None:
        """A SIGTERM that arrives once chatd listens, even before it has said so, still ends in exit status 0."""
        with socket.socket() as finder:
            finder.bind(("127.0.0.1", 0))
            port = finder.getsockname()[1]
        # Hold chatd inside the window deterministically: its stdout is a
        # pipe we filled, so the "listening on" print blocks right after
        # listen() and before the reactor runs.
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        for _ in range(1024):
            try:
                os.write(write_end, b"x" * 4096)
            except BlockingIOError:
                break
        os.set_blocking(write_end, True)
        with open(tmp_path / "stderr.log", "wb") as log:
            process = subprocess.Popen(
                [*chatd_command(), "--listen", f"tcp:{port}:interface=127.0.0.1"],
                stdout=write_end, stderr=log, stdin=subprocess.DEVNULL)
        os.close(write_end)
        try:
            def listening() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return True
                except OSError:
                    return False

            wait_until(listening, 20, what="chatd listening")
            process.send_signal(signal.SIGTERM)
            # Let the blocked print finish, then read to EOF.
            deadline = time.monotonic() + FEW_SECONDS
            for _ in range(100_000):
                ready, _, _ = select.select([read_end], [], [],
                                            max(deadline - time.monotonic(), 0))
                if not ready or not os.read(read_end, 65536):
                    break
            assert process.wait(FEW_SECONDS) == 0
        finally:
            os.close(read_end)
            if process.poll() is None:
                process.kill()
                process.wait(FEW_SECONDS)


class TestBadStart:
    @pytest.mark.parametrize("how", ["port", "listen"])
    def test_port_in_use_is_one_clear_line(self, busy_port: int, how: str) -> None:
        """A port already in use gives a one-line 'cannot listen' message, no traceback and a non-zero exit."""
        args = (["--host", "127.0.0.1", "--port", str(busy_port)] if how == "port"
                else ["--listen", f"tcp:{busy_port}:interface=127.0.0.1"])
        result = run_chatd(*args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"chatd: cannot listen on tcp:{busy_port}:")
        assert first.endswith(": Address already in use")
        assert result.stdout == ""

    def test_port_in_use_prints_nothing_else(self, busy_port: int) -> None:
        """A port already in use puts exactly one line on stderr."""
        result = run_chatd("--host", "127.0.0.1", "--port", str(busy_port))
        assert len(result.stderr.splitlines()) == 1, result.stderr

    @pytest.mark.parametrize(("args", "message"), [
        (["--bogus"], "chatd: error: unrecognized arguments: --bogus"),
        (["--port", "x"], "chatd: error: argument --port: 'x' is not a port number"),
        (["--port", "70000"], "chatd: error: argument --port: '70000' is not a port number (0-65535)"),
        (["--max-line", "0"], "chatd: error: argument --max-line: '0' must be at least 1"),
        (["--log-format", "xml"], "chatd: error: argument --log-format: invalid choice: 'xml'"),
        (["--listen", "bogus:1"], "chatd: bad listen endpoint 'bogus:1': "),
        (["--oper-password-file", "/nonexistent/oper"],
         "chatd: cannot read the operator password file /nonexistent/oper: "),
    ])
    def test_bad_option_exits_non_zero_without_traceback(
            self, args: list[str], message: str) -> None:
        """A bad option or setting exits non-zero with chatd's own message and no traceback."""
        result = run_chatd(*args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert any(line.startswith(message) for line in result.stderr.splitlines()), result.stderr

    def test_empty_password_file_is_refused(self, tmp_path: Path) -> None:
        """An empty operator password file is refused at start, not treated as no password."""
        empty = tmp_path / "oper"
        empty.write_text("\n")
        result = run_chatd("--oper-password-file", str(empty))
        assert result.returncode != 0
        assert result.stderr.strip() == f"chatd: the operator password file {empty} is empty"

    def test_help_and_version(self) -> None:
        """--help documents the default port 8123 and --version prints the version; both exit 0."""
        help_ = run_chatd("--help")
        assert help_.returncode == 0 and "8123" in help_.stdout
        version = run_chatd("--version")
        assert version.returncode == 0 and version.stdout.strip() == f"chatd {__version__}"


def chat_once(server: RunningServer) -> None:
    """Two users log in and hear each other: the server works."""
    ann = LineClient(server.host, server.port)
    bob = LineClient(server.host, server.port, newline=b"\r\n")
    try:
        ann.login("ann")
        bob.login("bob")
        assert ann.read_line() == "JOIN bob"
        bob.send("SAY up and running")
        assert ann.read_line() == bob.read_line() == "SAY bob up and running"
    finally:
        ann.close()
        bob.close()


class TestEntryPoints:
    def test_python_dash_m_chatd(self, chatd_factory: Callable[..., RunningServer]) -> None:
        """``python -m chatd`` runs the same server and stops cleanly on SIGTERM."""
        server = chatd_factory(command=[sys.executable, "-m", "chatd"])
        chat_once(server)
        assert server.stop() == 0

    def test_host_and_port_options(self, chatd_factory: Callable[..., RunningServer]) -> None:
        """--host 127.0.0.1 --port 0 listens on loopback only, on a free port."""
        server = chatd_factory("--host", "127.0.0.1", "--port", "0", listen=(), listeners=1)
        assert server.ports[0][0] == "127.0.0.1" and server.port > 0
        chat_once(server)

    def test_twistd_plugin(self) -> None:
        """``twistd -n chatd --port P`` serves the room and shuts down with WALL and BYE on SIGTERM."""
        server = start_twistd("--host", "127.0.0.1", "--port", "0")
        try:
            chat_once(server)
            ann = LineClient(server.host, server.port)
            ann.login("ann")
            server.process.send_signal(signal.SIGTERM)
            assert ann.lines_until_eof() == [f"WALL * {SHUTDOWN}", f"BYE {SHUTDOWN}"]
            # twistd re-raises the stopping signal on itself once it has shut
            # down cleanly (Twisted's convention), so -SIGTERM is a clean exit.
            assert server.process.wait(FEW_SECONDS) in (0, -signal.SIGTERM)
            assert "Traceback" not in server.log()
            assert "Server Shut Down." in server.log()
        finally:
            server.stop(signal.SIGKILL)


def records(log: str) -> list[dict[str, object]]:
    """The JSON log records in ``log``: each line is one plain JSON object."""
    found = []
    for line in log.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict)
            found.append(record)
    return found


def chat_privately(server: RunningServer) -> None:
    """ann says, tells and WALLs distinctive texts, bob quits with one; then
    the server stops."""
    ann = LineClient(server.host, server.port)
    bob = LineClient(server.host, server.port)
    ann.login("ann")
    bob.login("bob")
    ann.send("SAY said-phrase-1", "TELL bob told-phrase-2", "WALL walled-phrase-3")
    assert bob.read_lines(3) == [
        "SAY ann said-phrase-1", "TELL ann told-phrase-2", "WALL ann walled-phrase-3"]
    bob.send("QUIT quit-phrase-4")
    assert bob.read_line() == "BYE quit-phrase-4"
    assert ann.read_until("PART bob")[-1] == "PART bob quit-phrase-4"
    ann.close()
    bob.close()
    assert server.stop() == 0


class TestLogging:
    def test_listening_is_logged_once(self, chatd_factory: Callable[..., RunningServer]) -> None:
        """The log says "listening on" once per port, without Twisted's own "starting on" and
        "Port ... Closed" lines repeating it."""
        server = chatd_factory()
        assert server.stop() == 0
        log = server.log()
        assert log.count("listening on") == 1
        assert "starting on" not in log and "Closed)" not in log

    def test_json_log_format(self, chatd_factory: Callable[..., RunningServer]) -> None:
        """--log-format json writes one JSON object per stderr line, with chatd's events in it."""
        server = chatd_factory("--log-format", "json")
        chat_once(server)
        assert server.stop() == 0
        found = records(server.log())
        texts = [record.get("log_format", "") for record in found
                 if record.get("log_namespace") == "chatd"]
        assert "{nick} logged in" in texts
        assert {"ann", "bob"} <= {record.get("nick") for record in found}

    def test_message_text_is_not_logged_by_default(
            self, chatd_factory: Callable[..., RunningServer]) -> None:
        """Without --log-messages, what users SAY, TELL, WALL and QUIT with is not in the log."""
        server = chatd_factory()
        chat_privately(server)
        log = server.log()
        assert "ann logged in" in log
        for phrase in ("said-phrase-1", "told-phrase-2", "walled-phrase-3", "quit-phrase-4"):
            assert phrase not in log

    def test_log_messages_logs_message_text(
            self, chatd_factory: Callable[..., RunningServer]) -> None:
        """With --log-messages, SAY, TELL, WALL and QUIT texts are logged."""
        server = chatd_factory("--log-messages")
        chat_privately(server)
        log = server.log()
        for phrase in ("said-phrase-1", "told-phrase-2", "walled-phrase-3", "quit-phrase-4"):
            assert phrase in log


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class TestTLS:
    def test_tls_and_plain_clients_share_the_room(
            self, tmp_path: Path, chatd_factory: Callable[..., RunningServer]) -> None:
        """A verified TLS client on an ssl: listener and a plain TCP client chat in one room."""
        key, cert = self_signed(tmp_path)
        server = chatd_factory(listen=(
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            "tcp:0:interface=127.0.0.1",
        ))
        ports = {description.split(":")[0]: port for _, port, description in server.ports}
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", ports["ssl"]), timeout=10)
        secure = LineClient("127.0.0.1", ports["ssl"],
                            sock=context.wrap_socket(raw, server_hostname="127.0.0.1"))
        plain = LineClient("127.0.0.1", ports["tcp"])
        try:
            assert isinstance(secure.sock, ssl.SSLSocket)
            assert secure.sock.version() is not None  # the handshake happened
            assert secure.login("sec") == ["OK NICK sec", "JOIN sec", "USERS sec", "OK WHO 1"]
            assert plain.login("plain")[-2:] == ["USERS sec plain", "OK WHO 2"]
            assert secure.read_line() == "JOIN plain"
            secure.send("SAY over tls")
            assert plain.read_line() == secure.read_line() == "SAY sec over tls"
            plain.send("TELL sec over tcp")
            assert secure.read_line() == "TELL plain over tcp"
            assert plain.read_line() == "OK TELL sec"
            secure.send("QUIT done")
            assert secure.lines_until_eof() == ["BYE done"]
            assert plain.read_line() == "PART sec done"
        finally:
            secure.close()
            plain.close()
