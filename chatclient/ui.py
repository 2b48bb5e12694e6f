"""The full-screen view: layout, key bindings and style.  Thin by design.

The view reads ``ClientState`` on every render and owns only what is about
looking: the scroll position (``Viewport``), whether the member list shows,
and which field has the focus.  Typed lines go to ``Client``; everything else
the view shows comes back through the state (prompt_toolkit's
``text-editor.py`` pattern: the UI pulls, it does not own).

The chat pane is a custom ``UIControl`` that draws the rows
``chatclient.viewport`` picks: only those that fit, bottom-up from the
anchored row, so a 10,000-line transcript costs no more to draw than a
screenful, and scrolling back does not jump when lines arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

from prompt_toolkit.application import Application
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition, has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples, fragment_list_width
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout import (
    ConditionalContainer,
    Float,
    FloatContainer,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.controls import FormattedTextControl, UIContent, UIControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import SearchToolbar, TextArea

from chatclient import commands, render
from chatclient.client import HISTORY_LINES, QUIT, Client, Recorder, Send
from chatclient.state import ClientState, Line, Link, Phase
from chatclient.viewport import Viewport
from chatd.nicks import NICK_RULES

MEMBERS_WIDTH = 18
# Under this many columns the member list hides itself, so the chat text
# keeps its width (at 30 columns it would leave 11); F2 still shows it.
NARROW_COLUMNS = 60
WHEEL_LINES = 3  # screen rows the mouse wheel scrolls
NICK_HINT = NICK_RULES[0].upper() + NICK_RULES[1:] + "."  # under the login field

STYLE = Style.from_dict({
    "time": "#808080",
    "sep": "#606060",
    "nick.own": "bold #ffffff",
    "nick.c0": "#ff5f5f", "nick.c1": "#5fd75f", "nick.c2": "#d7af00", "nick.c3": "#5f87ff",
    "nick.c4": "#d75fd7", "nick.c5": "#00d7d7", "nick.c6": "#ff8700", "nick.c7": "#87d7ff",
    "nick.c8": "#afaf5f", "nick.c9": "#af87ff", "nick.c10": "#ff87af", "nick.c11": "#87ffaf",
    "text.own": "#bcbcbc",
    "mention": "bg:#5f5f00 bold",
    "quiet": "#707070",
    "replay": "#6c6c6c",  # lines replayed by HISTORY, whatever they are
    "mark.history": "#5f87af", "history": "#87afd7",
    "mark.join": "#5f875f", "mark.part": "#875f5f", "mark.rename": "#707070",
    "mark.info": "#5f87af", "info": "#87afd7",
    "mark.error": "bold #ff5f5f", "error": "#ff8787",
    "mark.tell-out": "#d787ff",
    "private.label": "italic #d787ff", "private": "#e4c4ff",
    "wall": "bold #ffffff bg:#af0000",
    "wall.from": "bold",
    "marker": "reverse bold #d7af00",
    "status": "bg:#303030 #d0d0d0",
    "status.ok": "bg:#303030 #87d787 bold",
    "status.bad": "bg:#303030 #ff5f5f bold",
    "status.keys": "bg:#303030 #8a8a8a",
    "members": "#bcbcbc", "members.title": "bold underline",
    "members.sep": "#606060",
    "prompt": "bold #87afd7",
    "paste": "bold #ffaf00",
    "login.title": "bold", "login.help": "#8a8a8a", "login.error": "bold #ff5f5f",
})


class TranscriptControl(UIControl):
    """The chat pane: draws the viewport's rows; the wheel scrolls it by rows."""

    def __init__(self, viewport: Viewport) -> None:
        self.viewport = viewport

    def create_content(self, width: int, height: int) -> UIContent:
        rows = self.viewport.rows(width, height)
        return UIContent(get_line=lambda i: rows[i], line_count=len(rows), show_cursor=False)

    def is_focusable(self) -> bool:
        return False

    def mouse_handler(self, mouse_event: MouseEvent) -> object:
        if mouse_event.event_type == MouseEventType.SCROLL_UP:
            self.viewport.scroll_up(WHEEL_LINES)
            return None
        if mouse_event.event_type == MouseEventType.SCROLL_DOWN:
            self.viewport.scroll_down(WHEEL_LINES)
            return None
        return NotImplemented


class NickCompleter(Completer):
    """Tab completion of commands and of the nicks in the room."""

    def __init__(self, state: ClientState) -> None:
        self.state = state

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        length, candidates = commands.completions(
            document.text_before_cursor, self.state.members.values())
        for candidate in candidates:
            yield Completion(candidate, start_position=-length, display=candidate.rstrip(": "))


class ChatView:
    """The prompt_toolkit application around one ``Client``.

    The view builds its ``Client`` (around ``state`` and ``send``) with its
    own ``on_lines``, so the client reports to it from the first event; the
    connection's listener is then ``view.client``."""

    def __init__(self, state: ClientState, send: Send, leave: Callable[[], Awaitable[None]], *,
                 bell: bool = True, members: bool = True,
                 input: Input | None = None, output: Output | None = None,
                 history: int = HISTORY_LINES, log: Recorder | None = None) -> None:
        self.state = state
        self.client = Client(state, send, self.on_lines, history=history, log=log)
        self.viewport = Viewport(self.state)
        self.show_members = members  # on a terminal of NARROW_COLUMNS or more
        self.show_members_narrow = False  # below that
        self.bell = bell
        self._leave = leave
        self._leaving: asyncio.Task[None] | None = None
        # A paste of many lines waiting for the user's y/n.
        self.pending_paste: list[str] | None = None
        self.login_field = TextArea(
            multiline=False, prompt=[("class:prompt", "Choose a nick: ")], width=40,
            accept_handler=self._login_accepted)
        # Ctrl-R searches the input history backwards, as in a shell (and
        # Ctrl-S forwards); the toolbar shows the search while it runs.
        self.search_toolbar = SearchToolbar()
        self.input_field = TextArea(
            multiline=False, prompt=self._prompt, history=InMemoryHistory(),
            completer=NickCompleter(self.state), complete_while_typing=False,
            accept_handler=self._line_accepted, search_field=self.search_toolbar)
        self.app: Application[None] = Application(
            layout=Layout(self._layout(), focused_element=self._wanted_focus()),
            key_bindings=self._key_bindings(), style=STYLE, full_screen=True,
            mouse_support=True, input=input, output=output)

    # --- layout ---

    def _layout(self) -> FloatContainer:
        login = Condition(lambda: self.state.show_login)
        members = Condition(self.members_visible)
        scrolled = Condition(lambda: self.viewport.scrolled)
        pane = VSplit([
            Window(TranscriptControl(self.viewport)),
            ConditionalContainer(VSplit([
                Window(width=1, char="│", style="class:members.sep"),
                Window(FormattedTextControl(self._members_text), width=MEMBERS_WIDTH,
                       style="class:members"),
            ]), filter=members),
        ])
        chat = HSplit([
            pane,
            ConditionalContainer(Window(FormattedTextControl(self._marker_text), height=1,
                                        style="class:marker"), filter=scrolled),
            self._status_bar(),
            self.input_field,
            self.search_toolbar,
        ])
        login_screen = HSplit([
            Window(height=Dimension(weight=1)),
            VSplit([Window(width=4), HSplit([
                Window(FormattedTextControl(self._login_title), height=3),
                self.login_field,
                Window(FormattedTextControl(self._login_error), height=Dimension(min=3),
                       wrap_lines=True),
            ])]),
            Window(height=Dimension(weight=2)),
            self._status_bar(),
        ])
        body = HSplit([ConditionalContainer(login_screen, filter=login),
                       ConditionalContainer(chat, filter=~login)])
        return FloatContainer(body, floats=[
            Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=8))])

    def _status_bar(self) -> Window:
        return Window(FormattedTextControl(self._status_bar_text), height=1,
                      style="class:status")

    def _status_bar_text(self) -> StyleAndTextTuples:
        """The status on the left; the key hints on the right when they fit."""
        left, right = self._status_text(), self._keys_text()
        width = self.app.output.get_size().columns
        used = fragment_list_width(left) + fragment_list_width(right)
        if used >= width:
            return left
        return left + [("class:status", " " * (width - used))] + right

    # --- what the layout pulls from the state ---

    def _prompt(self) -> StyleAndTextTuples:
        if self.pending_paste is not None:
            return [("class:paste", f"Paste {len(self.pending_paste)} lines? y/n ")]
        return [("class:prompt", f"{self.state.nick or ''}> ")]

    def _narrow(self) -> bool:
        return self.app.output.get_size().columns < NARROW_COLUMNS

    def members_visible(self) -> bool:
        """Whether the member list is drawn: the user's choice for this
        width (hidden by default on a narrow terminal)."""
        return self.show_members_narrow if self._narrow() else self.show_members

    def toggle_members(self) -> None:
        """F2: show or hide the member list, at the width the terminal has now."""
        if self._narrow():
            self.show_members_narrow = not self.show_members_narrow
        else:
            self.show_members = not self.show_members

    def pasted(self, data: str) -> None:
        """A bracketed paste into the input line: one line is edited as
        usual; several are said one by one, and over ``PASTE_ASK_OVER`` the
        user is asked first."""
        buffer = self.input_field.buffer
        document = buffer.document
        lines = commands.paste_lines(document.text_before_cursor, data,
                                     document.text_after_cursor)
        if "\n" not in data.replace("\r", "\n").strip("\n") or len(lines) <= 1:
            buffer.insert_text(data.replace("\r", "").replace("\n", ""))
            return
        buffer.reset()
        if len(lines) > commands.PASTE_ASK_OVER:
            self.pending_paste = lines
        else:
            self.client.say_lines(lines)

    def answer_paste(self, yes: bool) -> None:
        """The user's answer to "Paste N lines?"."""
        lines, self.pending_paste = self.pending_paste, None
        if yes and lines:
            self.client.say_lines(lines)

    def _status_text(self) -> StyleAndTextTuples:
        state = self.state
        parts: StyleAndTextTuples = [("class:status", f" {state.server} │ ")]
        if state.logged_in:
            parts.append(("class:status", f"logged in as {state.nick} │ "
                                          f"{len(state.members)} in the room │ "))
        elif state.phase is Phase.LOGGING_IN:
            parts.append(("class:status", f"logging in as {state.wanted_nick}… │ "))
        else:
            parts.append(("class:status", "not logged in │ "))
        if state.link is Link.CONNECTED:
            oper = " (operator)" if state.is_oper else ""
            parts.append(("class:status.ok", "connected" + oper))
        else:
            detail = f" — {state.link_detail}" if state.link_detail else ""
            parts.append(("class:status.bad", state.link.value + detail))
        return parts

    def _keys_text(self) -> StyleAndTextTuples:
        if self.state.show_login:
            return [("class:status.keys", "Enter log in · Ctrl-C quit ")]
        return [("class:status.keys", "PgUp/PgDn scroll · F2 · /help ")]

    def _members_text(self) -> StyleAndTextTuples:
        names = self.state.sorted_members()
        text: StyleAndTextTuples = [("class:members.title", f" {len(names)} here"), ("", "\n")]
        for name in names:
            style = render.nick_style(name, self.state.is_me(name))
            text += [("", " "), (style, name[:MEMBERS_WIDTH - 1]), ("", "\n")]
        return text

    def _marker_text(self) -> StyleAndTextTuples:
        unseen, below = self.viewport.unseen(), self.viewport.below()
        if unseen:
            noun = "message" if unseen == 1 else "messages"
            return [("", f" ▼ {unseen} new {noun} below — PageDown to read, Ctrl-End to jump ")]
        return [("", f" ▲ scrolled back ({below} more below) — PageDown or Ctrl-End to return ")]

    def _login_title(self) -> StyleAndTextTuples:
        version = f" ({self.state.server_version})" if self.state.server_version else ""
        return [("class:login.title", f"chat-tui — {self.state.server}{version}\n"),
                ("class:login.help", "Pick a nick to join the room (no password needed).\n")]

    def _login_error(self) -> StyleAndTextTuples:
        if self.state.login_error:
            return [("class:login.error", self.state.login_error)]
        if self.state.phase is Phase.LOGGING_IN:
            return [("class:login.help", f"Logging in as {self.state.wanted_nick}…")]
        return [("class:login.help", NICK_HINT)]

    # --- events ---

    def on_lines(self, lines: list[Line]) -> None:
        """The state changed: fix the focus, ring for alerts, redraw."""
        self._refocus()
        if self.bell and any(line.alerts for line in lines):
            self.app.output.bell()
        self.app.invalidate()

    def _wanted_focus(self) -> TextArea:
        return self.login_field if self.state.show_login else self.input_field

    def _refocus(self) -> None:
        wanted = self._wanted_focus()
        if not self.app.layout.has_focus(wanted):
            self.app.layout.focus(wanted)

    def _login_accepted(self, buffer: object) -> bool:
        self.client.login(self.login_field.text)
        return True  # keep the text, so a refused nick can be edited

    def _line_accepted(self, buffer: object) -> bool:
        if self.client.submit(self.input_field.text) == QUIT:
            self.leave()
        return False

    def leave(self) -> None:
        """Quit: QUIT to the server, wait briefly for BYE, then exit."""
        if self._leaving is not None:
            return
        self.client.quit()
        self.app.invalidate()
        self._leaving = asyncio.ensure_future(self._finish())

    async def _finish(self) -> None:
        try:
            await self._leave()
        finally:
            if self.app.is_running:
                self.app.exit()

    # --- keys ---

    def _key_bindings(self) -> KeyBindings:
        keys = KeyBindings()
        chatting = Condition(lambda: not self.state.show_login)
        empty_input = (Condition(lambda: not self.input_field.text) & has_focus(self.input_field)
                       | Condition(lambda: not self.login_field.text)
                       & has_focus(self.login_field))

        @keys.add("pageup", filter=chatting)
        def _(event: KeyPressEvent) -> None:
            """Scroll the chat pane back one screen of rows."""
            self.viewport.page_up()

        @keys.add("pagedown", filter=chatting)
        def _(event: KeyPressEvent) -> None:
            """Scroll the chat pane forward one screen of rows."""
            self.viewport.page_down()

        asking = Condition(lambda: self.pending_paste is not None)

        @keys.add(Keys.BracketedPaste, filter=chatting & ~asking)
        def _(event: KeyPressEvent) -> None:
            """Several pasted lines are said one by one, not joined into one."""
            self.pasted(event.data)

        @keys.add("y", filter=asking, eager=True)
        @keys.add("Y", filter=asking, eager=True)
        def _(event: KeyPressEvent) -> None:
            """Yes: say the pasted lines."""
            self.answer_paste(True)

        @keys.add("n", filter=asking, eager=True)
        @keys.add("N", filter=asking, eager=True)
        @keys.add("escape", filter=asking, eager=True)
        def _(event: KeyPressEvent) -> None:
            """No: forget the paste."""
            self.answer_paste(False)

        @keys.add(Keys.Any, filter=asking, eager=True)
        @keys.add(Keys.BracketedPaste, filter=asking, eager=True)
        def _(event: KeyPressEvent) -> None:
            """Anything else waits for the answer."""

        @keys.add("c-end", filter=chatting)
        def _(event: KeyPressEvent) -> None:
            """Jump to the newest line."""
            self.viewport.to_bottom()

        @keys.add("f2")
        def _(event: KeyPressEvent) -> None:
            """Show or hide the member list."""
            self.toggle_members()

        @keys.add("c-c")
        @keys.add("c-q")
        def _(event: KeyPressEvent) -> None:
            """Leave cleanly."""
            self.leave()

        @keys.add("c-d", filter=empty_input)
        def _(event: KeyPressEvent) -> None:
            """Ctrl-D on an empty line leaves, as in a shell."""
            self.leave()

        return keys


def build_app(state: ClientState, send: Send, leave: Callable[[], Awaitable[None]], *,
              bell: bool = True, members: bool = True, input: Input | None = None,
              output: Output | None = None, history: int = HISTORY_LINES,
              log: Recorder | None = None) -> ChatView:
    """The full-screen view of a session on ``state``: ``send`` sends a
    message, ``leave`` closes the connection; ``history`` lines are asked
    after each login (protocol 1.1), and ``log`` records the lines shown."""
    return ChatView(state, send, leave, bell=bell, members=members, input=input, output=output,
                    history=history, log=log)
