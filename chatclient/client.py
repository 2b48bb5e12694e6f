"""The client's behaviour, shared by the full-screen view and plain mode.

``Client`` joins the pure pieces: connection events and server messages go to
``ClientState``; typed lines go through ``commands.parse_input`` and out by
the ``send`` callable it is given, and every change is reported to the
``on_lines`` callable it is given.  It does no I/O itself, so it is tested
with a recording ``send`` and no socket or terminal.  Whatever draws the
session builds its ``Client`` with its own ``on_lines``, so the two are
wired once, at construction.
"""

from __future__ import annotations

from collections.abc import Callable

from chatclient import commands
from chatclient.state import ClientState, Line, Link, Phase
from chatd import wire
from chatd.nicks import NICK_RULES, is_valid_nick

Send = Callable[[wire.ClientMessage], bool]
Listener = Callable[[list[Line]], None]

QUIT = "quit"


def _ignore(lines: list[Line]) -> None:
    pass


class Client:
    """One chat session, whatever draws it."""

    def __init__(self, state: ClientState, send: Send, on_lines: Listener = _ignore) -> None:
        self.state = state
        self._send = send
        self._on_lines = on_lines

    def _emit(self, lines: list[Line]) -> None:
        """Tell the view something changed (``lines`` may be empty)."""
        self._on_lines(lines)

    # --- the connection's listener interface ---

    def connection_made(self) -> None:
        """A fresh connection: log in again by ourselves if we know who we are."""
        state = self.state
        state.connected()
        if state.wanted_nick and state.auto_login:
            state.start_login(state.wanted_nick, auto=True)
            self._send(wire.Nick(state.wanted_nick))
        self._emit([])

    def message_received(self, message: wire.ServerMessage) -> None:
        self._emit(self.state.apply(message))

    def connection_lost(self, reason: str) -> None:
        self._emit(self.state.connection_lost(reason))

    def reconnecting(self, delay: float, attempt: int, failure: str | None) -> None:
        self._emit(self.state.retrying(delay, attempt, failure))

    # --- the user ---

    def login(self, text: str) -> None:
        """The nick typed at the login prompt; a bad one is refused here."""
        state = self.state
        name = text.strip()
        if not name:
            state.login_error = "Please type a nick."
        elif not is_valid_nick(name):
            state.login_error = f"“{name}” cannot be used as a nick: {NICK_RULES}."
        elif state.link is not Link.CONNECTED:
            state.login_error = "Not connected to the server yet; try again in a moment."
        elif state.phase is Phase.NEED_NICK:
            state.login_error = None
            state.start_login(name)
            self._send(wire.Nick(name))
        self._emit([])

    def submit(self, text: str) -> str | None:
        """One line typed in the chat view; ``QUIT`` when the user is leaving."""
        outcome = commands.parse_input(text)
        lines: list[Line] = []
        action = None
        match outcome:
            case None:
                pass
            case commands.Problem(text=problem):
                lines.append(self.state.problem(problem))
            case commands.Local(action="clear"):
                self.state.clear()
            case commands.Local(action="help"):
                lines.extend(self.state.note(line) for line in commands.HELP_LINES)
            case commands.Send(message=wire.Quit(reason=reason)):
                self.quit(reason)
                action = QUIT
            case commands.Send(message=message):
                lines.extend(self._send_typed(message))
        self._emit(lines)
        return action

    def say_lines(self, lines: list[str]) -> None:
        """Say each line as its own message, in order (a paste).  The
        server's flood control may delay them; it drops none."""
        problems: list[Line] = []
        for line in lines:
            problems.extend(self._send_typed(wire.Say(line)))
            if problems:
                break  # not logged in or not connected: the rest would fail alike
        self._emit(problems)

    def _send_typed(self, message: wire.ClientMessage) -> list[Line]:
        state = self.state
        if not state.logged_in:
            return [state.problem("Not logged in right now (see the status bar); "
                                  "that line was not sent.")]
        if not self._send(message):
            return [state.problem("Not connected; that line was not sent.")]
        if isinstance(message, wire.Tell):
            state.telling(message.nick, message.text)
        return []

    def quit(self, reason: str | None = None) -> None:
        """Say goodbye to the server; the view then waits for BYE or a timeout."""
        if self.state.quitting:
            return
        self.state.quitting = True
        self._send(wire.Quit(reason))
