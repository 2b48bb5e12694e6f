"""Plain line mode end to end: the chat-tui program with piped input, real chatd."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatd import __version__
from tests.client_support import free_port
from tests.support import LineClient, RunningServer

CHAT_TUI = Path(sys.executable).with_name("chat-tui")
STAMP = re.compile(r"^\d\d:\d\d ", re.MULTILINE)


def chat_tui(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the installed chat-tui with ``stdin`` piped in (so: plain mode)."""
    return subprocess.run([str(CHAT_TUI), *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


class TestPlainMode:
    @pytest.mark.e2e
    def test_lines_sent_and_events_printed(self, chatd_server: RunningServer) -> None:
        """Each input line is sent with the slash mapping; events print as text; QUIT at EOF."""
        bob = LineClient(chatd_server.host, chatd_server.port)
        bob.login("bob")
        result = chat_tui(chatd_server.host, str(chatd_server.port), "--nick", "bot",
                          stdin="hello there\n/msg bob psst\n//slashed\n/frob\n/wall heads up\n")
        assert result.returncode == 0, result.stderr
        printed = STAMP.sub("", result.stdout).splitlines()
        # A local refusal prints at once; server events print as they come back.
        printed.remove("!! There is no command /frob. Type /help for the list, "
                       "or start the line with // to say it as it is.")
        assert printed == [
            f"-- Connected to {chatd_server.host}:{chatd_server.port} (chatd/{__version__}).",
            "--> You joined the room as bot.",
            "-- In the room (2): bob, bot",
            "<bot> hello there",
            "[private to bob] psst",
            "<bot> /slashed",
            "!!! WALL from bot: heads up",
            "-- Disconnected: leaving.",
        ]
        assert bob.read_until("PART") == [
            "JOIN bot", "SAY bot hello there", "TELL bot psst", "SAY bot /slashed",
            "WALL bot heads up", "PART bot leaving"]
        bob.close()

    @pytest.mark.e2e
    def test_history_n_prints_the_replay_first_between_markers(
            self, chatd_server: RunningServer) -> None:
        """--history 2 prints the last two lines said before the login, marked, before
        anything this run says; without --history nothing is replayed."""
        bob = LineClient(chatd_server.host, chatd_server.port)
        bob.login("bob")
        bob.send("SAY one", "SAY two", "SAY three")
        bob.sync()
        address = (chatd_server.host, str(chatd_server.port))
        result = chat_tui(*address, "--nick", "bot", "--history", "2", stdin="hello\n")
        assert result.returncode == 0, result.stderr
        assert STAMP.sub("", result.stdout).splitlines()[2:] == [
            "-- In the room (2): bob, bot",
            "-- history --",
            "<bob> two",
            "<bob> three",
            "-- end of history (2 lines) --",
            "<bot> hello",
            "-- Disconnected: leaving.",
        ]
        result = chat_tui(*address, "--nick", "bot", stdin="")
        assert result.returncode == 0 and "history" not in result.stdout
        bob.close()

    @pytest.mark.e2e
    def test_log_writes_the_lines_shown_under_xdg_state_home(
            self, chatd_server: RunningServer, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        """--log appends what was printed, with ISO times, to
        $XDG_STATE_HOME/chatd/logs/<host>-<port>.log; --log-dir DIR writes there instead."""
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        address = (chatd_server.host, str(chatd_server.port))
        assert chat_tui(*address, "--nick", "bot", "--log", stdin="logged line\n").returncode == 0
        assert chat_tui(*address, "--nick", "bot", "--log-dir", str(tmp_path / "elsewhere"),
                        stdin="other\n").returncode == 0
        name = f"{chatd_server.host}-{chatd_server.port}.log"
        logged = (tmp_path / "state" / "chatd" / "logs" / name).read_text().splitlines()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z <bot> logged line",
                            logged[4]), logged
        assert [entry.split(" ", 1)[1] for entry in logged[1:-1]] == [
            f"-- Connected to {chatd_server.host}:{chatd_server.port} (chatd/{__version__}).",
            "--> You joined the room as bot.", "-- In the room (1): bot", "<bot> logged line",
            "-- Disconnected: leaving."]
        assert "<bot> other" in (tmp_path / "elsewhere" / name).read_text()

    @pytest.mark.e2e
    def test_quit_command_ends_early(self, chatd_server: RunningServer) -> None:
        """/quit in the input leaves with its reason; later lines are not sent."""
        result = chat_tui(chatd_server.host, str(chatd_server.port), "--nick", "bot",
                          stdin="/quit done here\nnever said\n")
        assert result.returncode == 0
        assert "never said" not in result.stdout
        assert result.stdout.rstrip().endswith("-- Disconnected: done here.")

    @pytest.mark.e2e
    def test_refused_nick_exits_1(self, chatd_server: RunningServer) -> None:
        """A taken nick in plain mode is one line on stderr and exit status 1."""
        bob = LineClient(chatd_server.host, chatd_server.port)
        bob.login("bob")
        result = chat_tui(chatd_server.host, str(chatd_server.port), "--nick", "bob")
        assert result.returncode == 1
        assert result.stderr == ("chat-tui: could not log in as bob: bob is already taken; "
                                 "please choose another nick.\n")
        bob.close()

    def test_missing_nick_is_a_usage_error(self) -> None:
        """Plain mode without --nick says so and exits 2, before connecting."""
        result = chat_tui("127.0.0.1", str(free_port()))
        assert result.returncode == 2 and "needs --nick" in result.stderr


class TestStartupErrors:
    def test_refused_connection(self) -> None:
        """A refused connection is one line and exit status 1, not a traceback."""
        port = free_port()
        result = chat_tui("127.0.0.1", str(port), "--nick", "bot")
        assert result.returncode == 1
        assert result.stderr == (f"chat-tui: cannot connect: connection refused by "
                                 f"127.0.0.1:{port} (is chatd running there?)\n")

    def test_bad_arguments(self) -> None:
        """An invalid nick or port is refused by the argument parser (exit 2)."""
        assert chat_tui("localhost", "--nick", "9x").returncode == 2
        assert "not a port number" in chat_tui("localhost", "99999").stderr

    @pytest.mark.e2e
    def test_tls_against_plain_server_fails_cleanly(self, chatd_server: RunningServer) -> None:
        """--tls against a plain TCP server is a one-line TLS error, exit 1."""
        result = chat_tui(chatd_server.host, str(chatd_server.port), "--tls", "--nick", "bot")
        assert result.returncode == 1
        assert result.stderr.startswith("chat-tui: cannot connect:")
        assert "Traceback" not in result.stderr
