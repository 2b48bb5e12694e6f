"""One connection's state: who it is logged in as, whether it is an operator,
whether it is closed, and whether it is waiting for the bus.

The session knows the rules a connection must follow (log in before you
speak; only operators WALL where there is a password) and raises
``ChatError`` when they are broken; it knows no protocol words.  Its
dialect calls it with commands and hears back, through ``Replies``, what the
room answered, to put in the dialect's own words.

A nick claim may be answered later (by a bus on Redis): until then the session
is ``waiting``, and its connection holds that connection's further lines, in
order, until ``ready`` is called.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Protocol

from chatd.bus import Done
from chatd.errors import ChatError, ErrorCode
from chatd.events import Stamped
from chatd.room import CONNECTION_LOST, Room

DEFAULT_QUIT_REASON = "leaving"


class Replies(Protocol):
    """What a session tells its connection, for the dialect to word."""

    def nick_ok(self, nick: str) -> None:
        """A login or rename to ``nick`` succeeded."""

    def refused(self, error: ChatError) -> None:
        """A request was refused; the connection stays open."""

    def welcome(self, nicks: list[str]) -> None:
        """Logged in and announced: show the roster."""

    def goodbye(self, reason: str) -> None:
        """The server is about to close this connection."""

    def hang_up(self) -> None:
        """Close the transport, once what was written has gone."""

    def ready(self) -> None:
        """The session stopped waiting: held lines may go on."""


class Session:
    """The per-connection state machine; the room's ``Member``."""

    __slots__ = ("room", "nick", "is_oper", "closed", "waiting", "dialect", "write",
                 "joined", "_replies")

    def __init__(
        self,
        room: Room,
        replies: Replies,
        *,
        dialect: str,
        write: Callable[[bytes], None],
    ) -> None:
        self.room = room
        self.nick: str | None = None
        self.is_oper = False
        self.closed = False
        self.waiting = False
        # What the fan-out needs: which encoder, and the transport's own
        # write callable (not a method wrapping it: the outbox calls it once
        # per member per turn).
        self.dialect = dialect
        self.write = write
        # The seq of this connection's own JOIN: HISTORY replays only what
        # was said before it (a rename does not move it).
        self.joined: int | None = None
        self._replies = replies

    # --- commands ---

    def change_nick(self, nick: str) -> None:
        """Log in as ``nick``, or rename to it once logged in."""
        self.waiting = True
        try:
            if self.nick is None:
                self.room.login(self, nick)
            else:
                self.room.rename(self, nick)
        except BaseException:
            self.waiting = False
            raise

    def say(self, text: str) -> None:
        nick = self._logged_in()
        self.room.say(nick, text, self._until_heard())

    def tell(self, nick: str, text: str) -> str:
        """Speak to one user; the target's nick, as the room knows it."""
        sender = self._logged_in()
        done = self._until_heard()
        try:
            return self.room.tell(sender, nick, text, done)
        except BaseException:
            self.waiting = False  # refused: nothing to wait for
            raise

    def _until_heard(self) -> Done | None:
        """With a bus on Redis, hold this connection's next lines until what
        it said comes back from the room's log (section 9 of the protocol)."""
        if not self.room.echoes_later:
            return None
        self.waiting = True
        return self._done_waiting

    def wall(self, text: str) -> None:
        nick = self._logged_in()
        if self.room.oper_password is not None and not self.is_oper:
            raise ChatError(ErrorCode.NOT_PERMITTED,
                            "only operators may WALL on this server; use OPER <password>")
        self.room.wall(nick, text, self._until_heard())

    def who(self) -> list[str]:
        return self.room.nicks

    def history(self, count: int) -> list[Stamped]:
        """Up to ``count`` of the last lines said before this session logged
        in, oldest first; none when the room keeps no history."""
        self._logged_in()
        history = self.room.history
        if history is None or self.joined is None:
            return []
        return history.before(self.joined, count)

    def oper(self, password: str) -> None:
        self._logged_in()
        expected = self.room.oper_password
        if expected is None:
            raise ChatError(ErrorCode.NOT_PERMITTED, "this server has no operator password")
        if not hmac.compare_digest(password.encode(), expected.encode()):
            self.room.log.info("failed OPER by {nick}", nick=self.nick)
            raise ChatError(ErrorCode.NOT_PERMITTED, "wrong operator password")
        self.is_oper = True
        self.room.log.info("{nick} is now an operator", nick=self.nick)

    def _logged_in(self) -> str:
        """This session's nick; protocol v1 reserves the verb otherwise."""
        if self.nick is None:
            raise ChatError(ErrorCode.NEED_NICK, "log in first with NICK <name>")
        return self.nick

    # --- life cycle ---

    def close(self, reason: str) -> None:
        """``BYE <reason>``, PART to the others, then close the transport."""
        if self.closed:
            return
        self._replies.goodbye(reason)
        self.disconnected(reason)
        self._replies.hang_up()

    def disconnected(self, reason: str = CONNECTION_LOST) -> None:
        """The transport is gone; the others hear PART if we were in."""
        self.closed = True
        self.room.leave(self, reason)

    # --- the room's answers (``room.Member``) ---

    def logged_in(self, nick: str) -> None:
        self.nick = nick
        self._replies.nick_ok(nick)

    def renamed(self, nick: str) -> None:
        self.nick = nick
        self._replies.nick_ok(nick)
        self._done_waiting()

    def moved(self, nick: str) -> None:
        self.nick = nick

    def refused(self, error: ChatError) -> None:
        self._replies.refused(error)
        self._done_waiting()

    def welcome(self, nicks: list[str], seq: int) -> None:
        self.joined = seq
        self._replies.welcome(nicks)
        self._done_waiting()

    def _done_waiting(self) -> None:
        if self.waiting:
            self.waiting = False
            self._replies.ready()
