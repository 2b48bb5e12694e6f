"""The client's behaviour, shared by the full-screen view and plain mode.

``Client`` joins the pure pieces: connection events and server messages go to
``ClientState``; typed lines go through ``commands.parse_input`` and out by
the ``send`` callable it is given, and every change is reported to the
``on_lines`` callable it is given.  It does no I/O itself, so it is tested
with a recording ``send`` and no socket or terminal.  Whatever draws the
session builds its ``Client`` with its own ``on_lines``, so the two are
wired once, at construction.

Against a chatd 1.1 server, each login (the automatic one after a reconnect
too) is followed by ``TIME ON`` and ``HISTORY <history>`` (no ``HISTORY``
when ``history`` is 0); against an older server, by neither.  A chat log,
if given, is a callable that records every line shown and answers with a
problem in words the first time it cannot: that becomes one error line and
the log is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from chatclient import commands
from chatclient.state import ClientState, Line, Link, Phase
from chatd import wire
from chatd.nicks import NICK_RULES, is_valid_nick

Send = Callable[[wire.ClientMessage], bool]
Listener = Callable[[list[Line]], None]
Recorder = Callable[[list[Line]], str | None]  # a chat log: the problem, if it failed

QUIT = "quit"
HISTORY_LINES = 50  # what the full-screen view asks after each login


def _ignore(lines: list[Line]) -> None:
    pass


class Client:
    """One chat session, whatever draws it."""

    def __init__(self, state: ClientState, send: Send, on_lines: Listener = _ignore, *,
                 history: int = HISTORY_LINES, log: Recorder | None = None) -> None:
        self.state = state
        self._send = send
        self._on_lines = on_lines
        self._history = history
        self._log = log

    def _emit(self, lines: list[Line]) -> None:
        """Log the new lines, then tell the view something changed (``lines``
        may be empty)."""
        if lines and self._log is not None:
            problem = self._log(lines)
            if problem is not None:
                self._log = None  # one error line, then no more logging
                lines = [*lines, self.state.problem(problem)]
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

    def message_received(self, message: wire.ServerMessage, stamp: str | None = None) -> None:
        """One server line and its ``@<time>``, if it had one."""
        state = self.state
        was_in = state.logged_in
        lines = state.apply(message, stamp)
        if state.logged_in and not was_in and state.speaks_1_1:
            self._after_login()
        self._emit(lines)

    def _after_login(self) -> None:
        """Protocol 1.1: time on every line, then what was said before."""
        if self._send(wire.Time(wire.TIME_ON)):
            self.state.time_asked()
        if self._history > 0 and self._send(wire.History(str(self._history))):
            self.state.history_asked()

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
        elif isinstance(message, wire.Nick):
            state.renaming(message.name)
        return []

    def quit(self, reason: str | None = None) -> None:
        """Say goodbye to the server; the view then waits for BYE or a timeout."""
        if self.state.quitting:
            return
        self.state.quitting = True
        self._send(wire.Quit(reason))
