"""A real IRC client in the room: WeeChat, with its default settings, beside
a v1 user.

WeeChat runs headless (Debian's ``weechat-headless``, which ``make test``
installs as root), driven as its user would drive it through its FIFO
(what is typed into a buffer: ``irc.chatd.#chat *hello``), and what it
shows is read from its logger's files, one per buffer, as a user reads its
window.  Skips, saying why, without WeeChat.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LineClient, RunningServer, start_chatd, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("weechat-headless") is None,
                       reason="weechat-headless is not installed (make test installs Debian's "
                              "weechat-headless when run as root)"),
]


class WeeChat:
    """One ``weechat-headless`` process with a home of its own."""

    def __init__(self, home: Path, port: int, nick: str) -> None:
        self.home = home
        self.logs = home / "logs"
        setup = "; ".join([
            "/set fifo.file.enabled on",
            f"/set logger.file.path {self.logs}",
            "/set logger.file.flush_delay 0",
            f"/server add chatd 127.0.0.1/{port} -notls",
            f"/set irc.server.chatd.nicks {nick}",
            "/connect chatd",
        ])
        self.process = subprocess.Popen(
            ["weechat-headless", "--dir", str(home), "--run-command", setup],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TZ": "UTC"})
        self.fifo = home / f"weechat_fifo_{self.process.pid}"
        wait_until(self.fifo.exists, timeout=15, what="WeeChat's FIFO")

    def type(self, buffer: str, text: str) -> None:
        """``text`` typed into ``buffer`` (``irc.chatd.#chat``, ``irc.server.chatd``)."""
        with open(self.fifo, "w", encoding="utf-8") as fifo:
            fifo.write(f"{buffer} *{text}\n")

    def shown(self, buffer: str) -> list[list[str]]:
        """What ``buffer`` shows so far: its log's lines as (time, prefix, text)."""
        path = self.logs / f"{buffer}.weechatlog"
        if not path.exists():
            return []
        return [line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines()]

    def wait_shown(self, buffer: str, prefix: str, text: str) -> list[str]:
        """The line of ``buffer`` with this prefix and text, once it is shown."""
        def found() -> list[str] | None:
            return next((line for line in self.shown(buffer)
                         if line[1:] == [prefix, text]), None)
        wait_until(found, timeout=10, what=f"{buffer} showing {prefix} {text}", interval=0.05)
        line = found()
        assert line is not None
        return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = start_chatd("--irc", "tcp:0:interface=127.0.0.1", "--irc-server-name", "irc.test",
                          listeners=2)
    yield running
    running.stop()


@pytest.fixture
def weechat(tmp_path: Path) -> Iterator[list[WeeChat]]:
    started: list[WeeChat] = []
    yield started
    for client in started:
        client.stop()


def test_weechat_joins_chats_renames_and_quits_beside_a_v1_user(
        server: RunningServer, weechat: list[WeeChat], tmp_path: Path) -> None:
    bob = LineClient(server.host, server.port)
    bob.login("bob")
    bob.send("TIME ON", "SAY said before wendy came", "TIME OFF")
    echo = bob.read_until("OK TIME OFF")[1]  # @<time> SAY bob said before wendy came
    said_at = echo.split(" ")[0].removeprefix("@")

    wendy = WeeChat(tmp_path / "weechat", server.ports[1][1], "wendy")
    weechat.append(wendy)
    assert bob.read_line() == "JOIN wendy"
    channel = "irc.chatd.#chat"
    wendy.wait_shown(channel, "-->", "wendy (wendy@chatd) has joined #chat")
    # server-time: the line said before she came is shown as bob's, at its time.
    before = wendy.wait_shown(channel, "bob", "said before wendy came")
    assert before[0] == said_at[:19].replace("T", " ")

    wendy.type(channel, "hello from weechat, ünïcödé")
    assert bob.read_line() == "SAY wendy hello from weechat, ünïcödé"
    wendy.type(channel, "/me waves")
    assert bob.read_line() == "SAY wendy * waves"

    bob.send("SAY hi wendy", "SAY * bows", "TELL wendy a word in private")
    wendy.wait_shown(channel, "bob", "hi wendy")
    wendy.wait_shown(channel, " *", "bob bows")
    wendy.wait_shown("irc.chatd.bob", "bob", "a word in private")
    assert bob.read_until("OK TELL") == ["SAY bob hi wendy", "SAY bob * bows", "OK TELL wendy"]
    # WeeChat shows its own line once: the server did not send it back.
    assert [line[1:] for line in wendy.shown(channel) if line[1] == "wendy"] == [
        ["wendy", "hello from weechat, ünïcödé"]]

    wendy.type(channel, "/nick wenda")
    assert bob.read_line() == "RENAME wendy wenda"
    wendy.wait_shown(channel, "--", "You are now known as wenda")
    wendy.type(channel, "/quit off for lunch")
    assert bob.read_line() == "PART wenda off for lunch"
    wait_until(lambda: wendy.process.poll() is not None, what="WeeChat exiting after /quit")
    bob.send("WHO")
    assert bob.read_until("OK WHO") == ["USERS bob", "OK WHO 1"]
    bob.close()
