"""chat-tui and protocol 1.1 against the real chatd, through a pipe input:
the history after login, the missed lines after a dropped connection (shown
once, none twice), and the chat log.

A dropped connection is made by a relay between the client and chatd that
the test cuts and opens again, so the server (and its history) lives on
and lines are said while the client is away, with no race.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input

from chatclient.chatlog import ChatLog, file_name
from chatclient.connection import Backoff, Connection
from chatclient.state import ClientState, Kind, Link, Replay
from chatclient.ui import build_app
from chatd import wire
from tests.client_support import wait_until
from tests.support import LineClient, RunningServer
from tests.test_ui import CTRL_C, BellOutput, Running, peer, run

ENTRY = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.*)")


class Relay:
    """A loopback TCP relay to chatd that can be cut (every connection through
    it dropped, new ones refused) and opened again on the same port."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self._listener = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._listener is not None
        self._listener.close()
        await self._listener.wait_closed()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.server.host, self.server.port)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@asynccontextmanager
async def chatting(port: int, nick: str, log: ChatLog | None = None) -> AsyncIterator[Running]:
    """The real view, logged in as ``nick`` on the local ``port``, torn down afterwards."""
    with create_pipe_input() as keys:
        screen = BellOutput()
        with create_app_session(input=keys, output=screen):
            connection = Connection("127.0.0.1", port, backoff=Backoff(initial=0.05, maximum=0.1))
            await connection.open()
            state = ClientState(f"127.0.0.1:{port}", nick=nick)
            view = build_app(state, connection.send, connection.close, input=keys, output=screen,
                             log=log.record if log is not None else None)
            connection.start(view.client)
            task = asyncio.ensure_future(view.app.run_async())
            try:
                yield Running(view, keys, screen, task)
            finally:
                if not task.done():
                    view.app.exit()
                    await asyncio.wait_for(task, 10)
                await connection.close(grace=0)


def replayed(app: Running, replay: Replay) -> list[str]:
    return [line.text for line in app.state.lines
            if line.replay is replay and line.kind is not Kind.HISTORY]


def said(client: LineClient, *texts: str) -> list[str]:
    """``SAY`` each text and read every line up to the PING barrier (its
    ``PONG`` may have an ``@<time>`` prefix)."""
    client.send(*(f"SAY {text}" for text in texts), "PING said")
    lines = []
    while wire.split_time(line := client.read_line())[1] != "PONG said":
        lines.append(line)
    return lines


@pytest.mark.e2e
class TestHistoryView:
    def test_the_history_after_login_is_dimmed_between_markers_and_never_rings(
            self, chatd_server: RunningServer) -> None:
        """Lines said before I came show, oldest first, between "── history ──" and
        "── end of history (2 lines) ──", as replays; a mention among them rings no bell."""
        bob = peer(chatd_server, "bob")
        said(bob, "ann: are you coming?", "second line")

        async def main() -> None:
            async with chatting(chatd_server.port, "ann") as app:
                await app.see("── end of history (2 lines) ──")
                await app.see("── history ──")
                assert replayed(app, Replay.EARLIER) == ["ann: are you coming?", "second line"]
                assert not any(line.mention for line in app.state.lines)
                assert app.screen.bells == 0
                await asyncio.to_thread(said, bob, "ann: now?")
                await app.see("ann: now?")
                assert app.state.lines[-1].replay is None and app.state.lines[-1].mention
                assert app.screen.bells == 1
                await app.quit_with(CTRL_C)
        run(main)
        bob.close()


@pytest.mark.e2e
class TestReconnect:
    def test_a_dropped_connection_shows_the_missed_lines_once_and_logs_them(
            self, chatd_server: RunningServer, tmp_path: Path) -> None:
        """After a drop the client shows only what was said while it was away,
        between the missed-lines markers, and nothing twice; the log has every
        live line at the server's time and the missed lines, not the first replay."""
        bob = peer(chatd_server, "bob")
        said(bob, "before ann came")
        bob.send("TIME ON")  # to read the server's time of bob's lines
        assert bob.read_line().endswith(" OK TIME ON")

        async def main() -> tuple[int, list[str]]:
            relay = Relay(chatd_server)
            await relay.open()
            log = ChatLog(tmp_path, file_name("127.0.0.1", relay.port))
            async with chatting(relay.port, "ann", log) as app:
                await app.see("── end of history (1 line) ──")
                heard = await asyncio.to_thread(said, bob, "seen live")
                await app.see("seen live")
                await relay.cut()
                await wait_until(lambda: app.state.link is not Link.CONNECTED, what="the drop")
                heard += await asyncio.to_thread(said, bob, "missed one", "missed two")
                await relay.open()
                await app.see("── end of missed lines (2 lines) ──")
                await app.see("── missed while disconnected ──")
                assert replayed(app, Replay.MISSED) == ["missed one", "missed two"]
                texts = [line.text for line in app.state.lines]
                for text in ("before ann came", "seen live", "missed one", "missed two"):
                    assert texts.count(text) == 1, text
                heard += await asyncio.to_thread(said, bob, "after")
                await app.see("after")
                await app.quit_with(CTRL_C)
            log.close()
            return relay.port, heard

        port, heard = asyncio.run(asyncio.wait_for(main(), 30))
        bob.close()
        entries = (tmp_path / f"127.0.0.1-{port}.log").read_text().splitlines()
        assert entries[0].startswith("--- log opened ") and entries[-1].startswith("--- log closed ")
        body = [ENTRY.fullmatch(entry) for entry in entries[1:-1]]
        assert all(body), entries
        chat = [(match.group(1), match.group(2)) for match in body if match is not None
                and ("<bob>" in match.group(2) or "missed" in match.group(2))]
        assert [text for _, text in chat] == [
            "<bob> seen live", "-- missed while disconnected --", "<bob> missed one",
            "<bob> missed two", "-- end of missed lines (2 lines) --", "<bob> after"]
        # bob's own lines, with the @<time> the server stamped: the log has those times.
        stamps = {line: when for when, line in map(wire.split_time, heard)
                  if line.startswith("SAY bob ")}
        assert {text: when for when, text in chat if text.startswith("<bob>")} == {
            f"<bob> {line.removeprefix('SAY bob ')}": when for line, when in stamps.items()}
        assert not any("before ann came" in entry for entry in entries)
