"""One connection's life: connected, then logged in, then closed.

``Session.handle_line`` is the whole server as one connection sees it: parse
the line, check the sender may do it, ask the room, and answer.  Every
refusal is a ``ChatError`` turned into ``ERR <code> <text>`` here and only
here.  Pure: the transport is reached through the two callables it is given.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from chatd import __version__, wire
from chatd.errors import ChatError, ErrorCode
from chatd.room import Room

GREETING = "welcome to chatd; log in with NICK <name>, or send HELP"
DEFAULT_QUIT_REASON = "leaving"
CONNECTION_LOST = "connection lost"

HELP_TEXT = (
    "NICK <name>          log in, or change your nick once logged in",
    "SAY <text>           speak to everyone in the room",
    "TELL <nick> <text>   speak privately to one user",
    "WALL <text>          alert every connection (operators only if the server has an operator password)",
    "WHO                  list who is in the room",
    "OPER <password>      become an operator",
    "PING [token]         the server answers PONG [token]",
    "QUIT [reason]        leave",
    "HELP                 this text",
    "Nicks: 1-20 ASCII letters, digits, '_' or '-', starting with a letter; unique ignoring case.",
)


class Session:
    """The per-connection state machine; the room's ``Member``."""

    __slots__ = ("room", "nick", "is_oper", "closed", "write", "_close", "_oper_password",
                 "__weakref__")

    def __init__(
        self,
        room: Room,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        *,
        oper_password: str | None = None,
    ) -> None:
        self.room = room
        self.nick: str | None = None
        self.is_oper = False
        self.closed = False
        # Bytes to this connection: the room's ``Member.write``.  The
        # transport's own callable, not a method wrapping it, because the
        # outbox calls it once per member per turn.
        self.write = write
        self._close = close
        self._oper_password = oper_password

    def send(self, message: wire.Message) -> None:
        """One message to this connection, after the broadcasts it is due."""
        self.room.send(self, message)

    # --- life cycle ---

    def connected(self) -> None:
        """Greet the connection; it now hears WALLs."""
        self.room.connect(self)
        self.send(wire.Hello(f"chatd/{__version__}", GREETING))

    def disconnected(self, reason: str = CONNECTION_LOST) -> None:
        """The transport is gone; the others hear PART if we were in."""
        self.closed = True
        self.room.disconnect(self, reason)

    def close(self, reason: str) -> None:
        """``BYE <reason>``, PART to the others, then close the transport."""
        if self.closed:
            return
        self.send(wire.Bye(reason))
        self.disconnected(reason)
        self._close()

    # --- input ---

    def handle_line(self, raw: bytes) -> None:
        """Act on one line (its LF removed); errors become ``ERR`` lines."""
        if self.closed:
            return
        try:
            message = wire.parse_client_line(raw)
            if message is not None:
                self._dispatch(message)
        except ChatError as error:
            self.reject(error)

    def reject(self, error: ChatError) -> None:
        """Tell the peer what was wrong; the connection stays open."""
        self.send(wire.Error(error.code, error.text))

    def _dispatch(self, message: wire.ClientMessage) -> None:
        match message:
            case wire.Nick(name=name):
                if self.nick is None:
                    self.room.login(self, name)
                else:
                    self.room.rename(self, name)
            case wire.Say(text=text):
                self.room.say(self._in(), text)
            case wire.Tell(nick=nick, text=text):
                self.room.tell(self._in(), nick, text)
            case wire.Wall(text=text):
                self._in()
                if self._oper_password is not None and not self.is_oper:
                    raise ChatError(ErrorCode.NOT_PERMITTED,
                                    "only operators may WALL on this server; use OPER <password>")
                assert self.nick is not None
                self.room.wall(self.nick, text)
            case wire.Who():
                self.room.who(self)
            case wire.Oper(password=password):
                self._oper(password)
            case wire.Ping(token=token):
                self.send(wire.Pong(token))
            case wire.Quit(reason=reason):
                self.close(reason or DEFAULT_QUIT_REASON)
            case wire.Help():
                for line in HELP_TEXT:
                    self.send(wire.HelpLine(line))
                self.send(wire.Ok("HELP"))

    def _in(self) -> Session:
        """This session, if logged in; protocol v1 reserves the verb otherwise."""
        if self.nick is None:
            raise ChatError(ErrorCode.NEED_NICK, "log in first with NICK <name>")
        return self

    def _oper(self, password: str) -> None:
        self._in()
        if self._oper_password is None:
            raise ChatError(ErrorCode.NOT_PERMITTED, "this server has no operator password")
        if not hmac.compare_digest(password.encode(), self._oper_password.encode()):
            self.room.log.info("failed OPER by {nick}", nick=self.nick)
            raise ChatError(ErrorCode.NOT_PERMITTED, "wrong operator password")
        self.is_oper = True
        self.room.log.info("{nick} is now an operator", nick=self.nick)
        self.send(wire.Ok("OPER"))
