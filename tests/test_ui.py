"""chatclient.ui driven through a pipe input against the real chatd.

The keyboard is ``create_pipe_input``; the screen is a ``DummyOutput`` that
records bells.  Assertions are on the state, the input buffer and the rows
the chat pane last drew, not on terminal bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from chatclient.connection import Backoff, Connection
from chatclient.state import ClientState, Kind, Phase
from chatclient.ui import ChatView, build_app
from tests.client_support import wait_until
from tests.support import LineClient, RunningServer

PAGE_UP, PAGE_DOWN, CTRL_END = "\x1b[5~", "\x1b[6~", "\x1b[1;5F"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"  # what a terminal sends around a paste
F2, UP, TAB, CTRL_C, CTRL_D, CTRL_R = "\x1bOQ", "\x1b[A", "\t", "\x03", "\x04", "\x12"


class BellOutput(DummyOutput):
    """A screen that counts bells."""

    def __init__(self) -> None:
        self.bells = 0

    def bell(self) -> None:
        self.bells += 1


@dataclass
class Running:
    """An app under test: its view, keyboard, screen and the task running it."""

    view: ChatView
    keys: PipeInput
    screen: BellOutput
    task: asyncio.Future[None]

    @property
    def state(self) -> ClientState:
        return self.view.state

    def type(self, text: str) -> None:
        self.keys.send_text(text)

    async def see(self, text: str) -> None:
        """Wait until the chat pane has drawn a row containing ``text``."""
        await wait_until(lambda: any(text in row for row in self.view.viewport.shown),
                         what=f"{text!r} on screen")

    async def quit_with(self, key: str) -> None:
        self.type(key)
        await asyncio.wait_for(self.task, 10)


@asynccontextmanager
async def running(server: RunningServer, nick: str | None = None) -> AsyncIterator[Running]:
    """The real client view connected to ``server``, torn down afterwards."""
    with create_pipe_input() as keys:
        screen = BellOutput()
        with create_app_session(input=keys, output=screen):
            connection = Connection(server.host, server.port, backoff=Backoff(initial=0.05))
            await connection.open()
            state = ClientState(f"{server.host}:{server.port}", nick=nick)
            view = build_app(state, connection.send, connection.close, input=keys, output=screen)
            connection.start(view.client)
            task = asyncio.ensure_future(view.app.run_async())
            try:
                yield Running(view, keys, screen, task)
            finally:
                if not task.done():
                    view.app.exit()
                    await asyncio.wait_for(task, 10)
                await connection.close(grace=0)


def run(test: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))  # type: ignore[arg-type]


def peer(server: RunningServer, nick: str) -> LineClient:
    """A raw-socket user (as nc would be), logged in."""
    client = LineClient(server.host, server.port)
    client.login(nick)
    return client


@pytest.mark.e2e
class TestChatting:
    def test_login_say_receive_wall_and_quit(self, chatd_server: RunningServer) -> None:
        """Log in at the prompt, see my JOIN, talk with an nc user, get a WALL, quit with Ctrl-C."""
        bob = peer(chatd_server, "bob")

        async def main() -> None:
            async with running(chatd_server) as app:
                assert app.state.show_login
                app.type("ann\r")
                await app.see("You joined the room as ann.")
                assert app.view.app.layout.has_focus(app.view.input_field)
                app.type("hello bob\r")
                assert await asyncio.to_thread(bob.read_until, "SAY ann") == [
                    "JOIN ann", "SAY ann hello bob"]
                await asyncio.to_thread(bob.send, "SAY hi ann", "WALL fire drill",
                                        "TELL ann psst")
                await app.see("psst")
                kinds = [(line.kind, line.mention) for line in app.state.lines][-3:]
                assert kinds == [(Kind.SAY, True), (Kind.WALL, False), (Kind.TELL_IN, False)]
                assert app.screen.bells == 3
                await app.see("WALL │ bob: fire drill")
                await app.quit_with(CTRL_C)
            assert await asyncio.to_thread(bob.read_until, "PART") == [
                "SAY bob hi ann", "WALL bob fire drill", "OK TELL ann", "PART ann leaving"]
        run(main)
        bob.close()

    def test_refused_nick_asks_again(self, chatd_server: RunningServer) -> None:
        """A taken nick is explained next to the prompt, which then accepts another."""
        bob = peer(chatd_server, "bob")

        async def main() -> None:
            async with running(chatd_server) as app:
                app.type("BOB\r")
                await wait_until(lambda: app.state.login_error is not None, what="refusal")
                assert app.state.login_error == (
                    "BOB is already taken; please choose another nick.")
                assert app.state.show_login
                app.type("\x01\x0bann\r")  # Ctrl-A Ctrl-K: the usual Emacs keys
                await wait_until(lambda: app.state.phase is Phase.IN, what="login")
                assert app.state.nick == "ann"
                await app.quit_with(CTRL_D)
        run(main)
        bob.close()

    def test_commands_history_and_completion(self, chatd_server: RunningServer) -> None:
        """Slash commands work, Up recalls, Tab completes nicks and commands, F2 toggles."""
        bob = peer(chatd_server, "bob")

        async def main() -> None:
            async with running(chatd_server, nick="ann") as app:
                await app.see("In the room (2): ann, bob")
                app.type("/msg bob psst\r")
                await app.see("(private to bob) psst")
                app.type("/frob\r")
                await app.see("There is no command /frob.")
                app.type("/nick anna\r")
                await app.see("You are now known as anna.")
                app.type(UP)
                await wait_until(lambda: app.view.input_field.text == "/nick anna", what="Up")
                app.type("\x01\x0bb" + TAB)
                await wait_until(lambda: app.view.input_field.text == "bob: ", what="nick Tab")
                app.type("\x01\x0b/wh" + TAB)
                await wait_until(lambda: app.view.input_field.text == "/who ", what="cmd Tab")
                app.type("\r")
                await wait_until(lambda: app.state.lines[-1].text.startswith("In the room"),
                                 what="WHO reply")
                app.type(F2)
                await wait_until(lambda: not app.view.show_members, what="F2")
                app.type("/clear\r")
                await wait_until(lambda: not app.state.lines, what="clear")
                app.type("/quit see you\r")
                await asyncio.wait_for(app.task, 10)
            assert await asyncio.to_thread(bob.read_until, "PART") == [
                "JOIN ann", "TELL ann psst", "RENAME ann anna", "PART anna see you"]
        run(main)
        bob.close()


@pytest.mark.e2e
class TestScrolling:
    def test_scroll_back_through_many_lines(
            self, chatd_factory: Callable[..., RunningServer]) -> None:
        """PageUp scrolls back, new lines show a marker instead of a jump, Ctrl-End returns."""
        server = chatd_factory("--no-flood-limit")
        bob = peer(server, "bob")

        async def main() -> None:
            async with running(server, nick="ann") as app:
                await app.see("In the room")
                await asyncio.to_thread(bob.send, *(f"SAY line {n}" for n in range(1, 1001)))
                await app.see("line 1000")
                for _ in range(3):
                    app.type(PAGE_UP)
                await wait_until(lambda: app.view.viewport.scrolled and
                                 "line 1000" not in "".join(app.view.viewport.shown),
                                 what="scrolled")
                before = list(app.view.viewport.shown)
                await asyncio.to_thread(bob.send, "SAY one more")
                await wait_until(lambda: app.view.viewport.unseen() == 1, what="marker")
                assert app.view.viewport.shown == before
                app.type(PAGE_DOWN)
                await wait_until(lambda: app.view.viewport.shown != before, what="PageDown")
                app.type(CTRL_END)
                await app.see("one more")
                assert not app.view.viewport.scrolled
                await app.quit_with(CTRL_C)
        run(main)
        bob.close()

    def test_reconnect_keeps_the_view(self, chatd_factory: Callable[..., RunningServer]) -> None:
        """After the server restarts, the view says so and logs back in under the same nick."""
        from tests.client_support import free_port
        listen = (f"tcp:{free_port()}:interface=127.0.0.1",)
        server = chatd_factory(listen=listen)

        async def main() -> None:
            async with running(server, nick="ann") as app:
                await app.see("You joined the room as ann.")
                await asyncio.to_thread(server.stop)
                await app.see("The server closed the connection")  # it wraps at 80 columns
                assert not app.state.show_login
                await asyncio.to_thread(chatd_factory, listen=listen)
                await wait_until(lambda: sum("You joined" in line.text
                                             for line in app.state.lines) == 2, what="relogin")
                assert app.state.logged_in and app.state.nick == "ann"
                await app.quit_with(CTRL_C)
        run(main)


@pytest.mark.e2e
class TestPasting:
    def test_a_paste_of_three_lines_says_three_lines(self, chatd_server: RunningServer) -> None:
        """A bracketed paste of three lines (CRLF, as some terminals paste) is said as three
        SAYs in order, the text typed before it starting the first; the input is left empty."""
        bob = peer(chatd_server, "bob")

        async def main() -> None:
            async with running(chatd_server, nick="ann") as app:
                await app.see("You joined the room as ann.")
                app.type("note: " + PASTE_START + "line one\r\nline two\r\n/line three"
                         + PASTE_END)
                assert await asyncio.to_thread(bob.read_until, "SAY ann /line three") == [
                    "JOIN ann", "SAY ann note: line one", "SAY ann line two",
                    "SAY ann /line three"]
                assert app.view.input_field.text == ""
                await app.quit_with(CTRL_C)
        run(main)
        bob.close()

    def test_a_long_paste_is_said_only_after_yes(self, chatd_server: RunningServer) -> None:
        """Over five pasted lines the prompt asks first: n forgets them, y says them all."""
        bob = peer(chatd_server, "bob")
        lines = [f"row {index}" for index in range(7)]

        async def main() -> None:
            async with running(chatd_server, nick="ann") as app:
                await app.see("You joined the room as ann.")
                app.type(PASTE_START + "\n".join(lines) + PASTE_END)
                await wait_until(lambda: app.view.pending_paste is not None, what="question")
                assert app.view._prompt() == [("class:paste", "Paste 7 lines? y/n ")]
                app.type("n")
                await wait_until(lambda: app.view.pending_paste is None, what="answer")
                app.type(PASTE_START + "\n".join(lines) + PASTE_END)
                await wait_until(lambda: app.view.pending_paste is not None, what="question")
                app.type("xy")  # a stray key waits for the answer
                got = await asyncio.to_thread(bob.read_until, "SAY ann row 6")
                assert got == ["JOIN ann"] + [f"SAY ann {line}" for line in lines]
                assert app.view.input_field.text == ""
                await app.quit_with(CTRL_C)
        run(main)
        bob.close()


class SizedOutput(DummyOutput):
    """A screen of a given width."""

    def __init__(self, columns: int) -> None:
        self.columns = columns

    def get_size(self) -> Size:
        return Size(rows=24, columns=self.columns)


class TestNarrowTerminal:
    """The member list gives way on a narrow terminal."""

    def test_member_list_hides_itself_under_sixty_columns_and_f2_shows_it(self) -> None:
        """At 30 columns the list is hidden; F2 shows it; at 80 columns it shows and F2 hides."""
        with create_pipe_input() as keys:
            for columns, shown in ((30, False), (80, True)):
                view = build_app(ClientState("h:1"), lambda message: True, nothing,
                                 input=keys, output=SizedOutput(columns))
                assert view.members_visible() is shown
                view.toggle_members()
                assert view.members_visible() is not shown


async def nothing() -> None:
    """A leave that has nothing to close."""


@pytest.mark.e2e
class TestInputHistorySearch:
    def test_ctrl_r_finds_an_earlier_line(self, chatd_server: RunningServer) -> None:
        """Ctrl-R then a few letters brings back the latest earlier line containing them."""

        async def main() -> None:
            async with running(chatd_server, nick="ann") as app:
                await app.see("You joined the room as ann.")
                app.type("hello one\r")
                app.type("second thing\r")
                await app.see("second thing")
                app.type(CTRL_R + "ello")
                await wait_until(lambda: app.view.search_toolbar.control.buffer.text == "ello",
                                 what="the search to be typed")
                app.type("\r")  # ends the search, keeping the line found to edit or send
                await wait_until(lambda: app.view.input_field.text == "hello one",
                                 what="the line found")
                assert app.view.app.layout.has_focus(app.view.input_field)
                await app.quit_with(CTRL_C)
        run(main)
