"""chatclient.chatlog: file names, what is logged and how, and a failing disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chatclient.chatlog import ChatLog, default_directory, entry, file_name, logged
from chatclient.client import Client
from chatclient.state import ClientState, Kind, Line, Replay
from chatd import wire

NOON = 1_795_000_000.0  # 2026-11-18T...: any fixed moment


def line(kind: Kind, text: str, **kwargs: object) -> Line:
    return ClientState("h", clock=lambda: NOON).add(kind, text, **kwargs)  # type: ignore[arg-type]


class TestNames:
    def test_default_directory_follows_xdg_state_home(self) -> None:
        """--log writes to $XDG_STATE_HOME/chatd/logs, else ~/.local/state/chatd/logs."""
        home = Path("/home/ann")
        assert default_directory({"XDG_STATE_HOME": "/st"}, home) == Path("/st/chatd/logs")
        assert default_directory({}, home) == home / ".local/state/chatd/logs"
        assert default_directory({"XDG_STATE_HOME": "rel"}, home) == home / ".local/state/chatd/logs"

    @pytest.mark.parametrize(("host", "port", "name"), [
        ("localhost", 8123, "localhost-8123.log"),
        ("Chat.Example.ORG", 6697, "chat.example.org-6697.log"),
        ("::1", 8123, "__1-8123.log"),
        ("../../etc/passwd", 1, "_._.._etc_passwd-1.log"),
        ("..", 2, "_.-2.log"),
    ])
    def test_one_safe_file_per_server(self, host: str, port: int, name: str) -> None:
        """The file name is the host (lower case, no path separators or colons,
        never hidden) and the port."""
        assert file_name(host, port) == name


class TestEntries:
    def test_an_entry_is_the_iso_time_and_the_plain_text(self) -> None:
        """Each logged line starts with its time as the wire writes it."""
        said = line(Kind.SAY, "hello there", nick="ann", when=wire.parse_time(
            "2026-11-25T14:03:07.120Z"))
        assert entry(said) == "2026-11-25T14:03:07.120Z <ann> hello there"
        assert entry(line(Kind.ERROR, "Nobody called zed is here.")).endswith(
            "Z !! Nobody called zed is here.")

    def test_the_first_login_replay_is_not_logged_but_missed_lines_are(self) -> None:
        """Lines said before I came (and their markers) stay out of the log; lines
        missed while disconnected, and live lines, go in."""
        assert not logged(line(Kind.SAY, "old", nick="bob", replay=Replay.EARLIER))
        assert not logged(line(Kind.HISTORY, "history", replay=Replay.EARLIER))
        assert logged(line(Kind.SAY, "gap", nick="bob", replay=Replay.MISSED))
        assert logged(line(Kind.HISTORY, "missed while disconnected", replay=Replay.MISSED))
        assert logged(line(Kind.JOIN, "bob joined.", nick="bob"))


class TestFile:
    def test_lines_are_appended_to_a_private_file_in_a_private_directory(
            self, tmp_path: Path) -> None:
        """The directory is made (0700), the file is 0600, and a second run appends."""
        directory = tmp_path / "state" / "logs"
        for text in ("first", "second"):
            log = ChatLog(directory, "h-1.log", clock=lambda: 0.0)
            assert log.record([line(Kind.SAY, text, nick="ann")]) is None
            log.close()
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "h-1.log").stat().st_mode) == 0o600
        text = (directory / "h-1.log").read_text()
        assert text.splitlines() == [
            "--- log opened 1970-01-01T00:00:00.000Z",
            f"{wire.format_time(NOON)} <ann> first",
            "--- log closed 1970-01-01T00:00:00.000Z",
            "--- log opened 1970-01-01T00:00:00.000Z",
            f"{wire.format_time(NOON)} <ann> second",
            "--- log closed 1970-01-01T00:00:00.000Z",
        ]

    def test_nothing_to_log_creates_nothing(self, tmp_path: Path) -> None:
        """A run that showed only the first login's replay leaves no file behind."""
        log = ChatLog(tmp_path / "logs", "h-1.log")
        assert log.record([line(Kind.SAY, "old", nick="bob", replay=Replay.EARLIER)]) is None
        log.close()
        assert not (tmp_path / "logs").exists()

    def test_a_directory_that_cannot_be_made_is_one_problem_then_silence(
            self, tmp_path: Path) -> None:
        """If the log cannot be opened the problem is said once; later lines are dropped quietly."""
        (tmp_path / "file").write_text("not a directory")
        log = ChatLog(tmp_path / "file" / "logs", "h-1.log")
        problem = log.record([line(Kind.INFO, "hello")])
        assert problem is not None and problem.startswith(
            f"Could not write the chat log {tmp_path}/file/logs/h-1.log (")
        assert problem.endswith("); logging stopped.")
        assert log.record([line(Kind.INFO, "again")]) is None and log.failed

    @pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
    def test_a_full_disk_is_one_problem(self, tmp_path: Path) -> None:
        """A write that fails after the file opened (no space left) is reported once."""
        (tmp_path / "h-1.log").symlink_to("/dev/full")
        log = ChatLog(tmp_path, "h-1.log")
        problem = log.record([line(Kind.INFO, "hello")])
        assert problem is not None and "No space left on device" in problem
        assert log.record([line(Kind.INFO, "again")]) is None
        log.close()


class TestClientLogging:
    def test_a_failing_log_becomes_one_error_line_and_is_dropped(self) -> None:
        """The client shows the log's problem once, as an error line, and stops
        asking the log; the chat goes on."""
        calls: list[list[str]] = []

        def failing(lines: list[Line]) -> str | None:
            calls.append([item.text for item in lines])
            return "Could not write the chat log x (disk full); logging stopped."

        shown: list[Line] = []
        client = Client(ClientState("h:1", clock=lambda: 0.0), lambda message: True,
                        shown.extend, log=failing)
        client.message_received(wire.Hello("chatd/1.1.0", "hi"))
        client.message_received(wire.Said("bob", "still here"))
        assert [(item.kind, item.text) for item in shown] == [
            (Kind.INFO, "Connected to h:1 (chatd/1.1.0)."),
            (Kind.ERROR, "Could not write the chat log x (disk full); logging stopped."),
            (Kind.SAY, "still here"),
        ]
        assert calls == [["Connected to h:1 (chatd/1.1.0)."]]

    def test_every_line_shown_is_given_to_the_log(self) -> None:
        """Room lines, local problems and notes all reach the log, in order."""
        logged_lines: list[str] = []

        def keep(lines: list[Line]) -> str | None:
            logged_lines.extend(entry(item).split(" ", 1)[1] for item in lines)
            return None

        client = Client(ClientState("h:1", clock=lambda: 0.0), lambda message: True, log=keep)
        client.message_received(wire.Joined("bob"))
        client.submit("/frob")
        client.message_received(wire.Walled("bob", "fire"))
        assert logged_lines == [
            "--> bob joined.",
            "!! There is no command /frob. Type /help for the list, or start the line "
            "with // to say it as it is.",
            "!!! WALL from bob: fire"]
