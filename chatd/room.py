"""The one chat room: its rules, and who hears which event.

The room decides; it never reads a clock and never writes a byte.  A command
becomes an event published to the ``Bus``; the room hears every event back
from the bus (its own and, later, other nodes') and tells its ``Audience``
(the fan-out) who gets it.  Nick ownership is the bus's, so the room keeps
only a mirror of the roster, built from the events in the bus's order.

Protocol v1, section 9: every logged-in user sees the broadcasts in the same
order; a user hears only broadcasts made after its own ``JOIN``; a reply comes
after every broadcast its connection was owed.  The first two hold because
all broadcasts reach the audience through ``_hear`` in bus order; the third is
the outbox's.
"""

from __future__ import annotations

from typing import Any, Protocol

from chatd.bus import Bus, Done
from chatd.errors import ChatError, ErrorCode
from chatd.events import Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.history import History
from chatd.nicks import SERVER_NICK, nick_key
from chatd.stats import Stats

CONNECTION_LOST = "connection lost"


class Member(Protocol):
    """A connection's session, as the room sees it.

    The room answers a nick claim through these calls; it never sets the
    member's nick itself.
    """

    @property
    def nick(self) -> str | None: ...

    @property
    def closed(self) -> bool: ...

    def logged_in(self, nick: str) -> None:
        """The claim of ``nick`` succeeded; ``JOIN`` follows."""

    def renamed(self, nick: str) -> None:
        """The member is now called ``nick``; ``RENAME`` follows, if it changed."""

    def refused(self, error: ChatError) -> None:
        """A nick claim (login or rename) failed."""

    def moved(self, nick: str) -> None:
        """The room renamed the member to ``nick`` (a collision after a
        split); the ``RENAME`` everyone hears says so."""

    def welcome(self, nicks: list[str], seq: int) -> None:
        """The member's own ``JOIN`` (stamped ``seq``) went out; ``nicks`` is
        the roster to show it.  ``seq`` is the member's history cut-off."""


class Audience(Protocol):
    """The fan-out, as the room sees it: who hears what, never the words."""

    def add(self, member: Any) -> None: ...
    def remove(self, member: Any) -> None: ...
    def broadcast(self, stamped: Stamped, speaker: Any = None) -> None: ...
    def tell(self, member: Any, stamped: Stamped) -> None: ...
    def wall(self, stamped: Stamped) -> None: ...


class EventLog(Protocol):
    """The part of ``twisted.logger.Logger`` the room uses; kept abstract so
    the room does not import Twisted."""

    def info(self, format: str, **kwargs: Any) -> None: ...


class NullLog:
    """A log that keeps nothing (tests, and a room without a logger)."""

    def info(self, format: str, **kwargs: Any) -> None:
        pass


class Room:
    """The members on this node, the roster of the whole room, and the rules."""

    def __init__(self, bus: Bus, audience: Audience, *, log: EventLog | None = None,
                 log_messages: bool = False, oper_password: str | None = None,
                 history: History | None = None, stats: Stats | None = None) -> None:
        self._bus = bus
        # Whether what is said is heard back only later (a bus on Redis):
        # the speaker's connection then waits for it, so its next reply
        # still comes after its own line, as on one server.
        self.echoes_later = not bus.synchronous
        self.stats = stats if stats is not None else Stats()
        # What was said, for HISTORY; it hears the bus itself (None: off).
        self.history = history
        # With a password, only operators may WALL (the session enforces it).
        self.oper_password = oper_password
        self._audience = audience
        self.log: EventLog = log if log is not None else NullLog()
        self.log_messages = log_messages
        self._local: dict[str, Member] = {}
        self._roster: dict[str, str] = {}
        # Nicks claimed for connections that closed before the claim was
        # answered: given back once their JOIN has been heard, so the log
        # reads JOIN then PART and the roster forgets them.
        self._orphans: set[str] = set()
        bus.subscribe(self._hear)

    # --- who is here ---

    @property
    def nicks(self) -> list[str]:
        """Every nick in the room, in the order they logged in (a rename
        moves a nick to the end)."""
        return list(self._roster.values())

    def __len__(self) -> int:
        return len(self._roster)

    def find(self, nick: str) -> Member | None:
        """The member on this node with this nick, ignoring case."""
        return self._local.get(nick_key(nick))

    # --- nicks: claimed through the bus, answered later ---

    def login(self, member: Member, nick: str) -> None:
        """Claim ``nick`` for ``member``.  Protocol v1: ``OK NICK`` to the
        sender, ``JOIN`` to everyone (sender included), then the ``WHO`` reply
        to the sender."""
        self._bus.claim(nick, lambda ok: self._claimed(member, nick, ok))

    def _claimed(self, member: Member, nick: str, ok: bool) -> None:
        if not ok:
            member.refused(_taken(nick))
            return
        if member.closed:  # gone while the claim was out
            self._orphans.add(nick_key(nick))
            return
        self._local[nick_key(nick)] = member
        self._audience.add(member)  # before its JOIN, which it hears too
        self.stats.logins += 1
        self.log.info("{nick} logged in", nick=nick)
        member.logged_in(nick)

    def rename(self, member: Member, new: str) -> None:
        """``OK NICK`` to the sender and ``RENAME`` to everyone.  Changing only
        the case of one's own nick is a rename; the same nick is just OK."""
        old = member.nick
        assert old is not None
        if new == old:
            member.renamed(new)
            return
        self._bus.rename(old, new, lambda ok: self._renamed(member, old, new, ok))

    def _renamed(self, member: Member, old: str, new: str, ok: bool) -> None:
        if not ok:
            member.refused(_taken(new))
            return
        if self._local.get(nick_key(old)) is member:
            del self._local[nick_key(old)]
            self._local[nick_key(new)] = member
        self.log.info("{old} is now {new}", old=old, new=new)
        member.renamed(new)

    def leave(self, member: Member, reason: str) -> None:
        """``member``'s connection closed for ``reason``; the others hear PART
        if it had logged in.  Calling it twice is harmless."""
        nick = member.nick
        if nick is None or self._local.get(nick_key(nick)) is not member:
            return
        del self._local[nick_key(nick)]
        self._audience.remove(member)
        if self.log_messages:  # a QUIT reason is the user's own text
            self.log.info("{nick} left ({reason})", nick=nick, reason=reason)
        else:
            self.log.info("{nick} left", nick=nick)
        self._bus.release(nick, reason)

    # --- speaking ---

    def say(self, nick: str, text: str, done: Done | None = None) -> None:
        """Everyone logged in, the sender included, hears the line."""
        if self.log_messages:
            self.log.info("<{nick}> {text}", nick=nick, text=text)
        self._bus.publish(Said(nick, text), done)

    def tell(self, nick: str, to: str, text: str, done: Done | None = None) -> str:
        """``text`` from ``nick`` to the one user called ``to``; the target's
        nick as the room knows it, for the sender's ``OK TELL``."""
        target = self._roster.get(nick_key(to))
        if target is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"nobody called {to} is here")
        if self.log_messages:
            self.log.info("<{nick}> to {to}: {text}", nick=nick, to=target, text=text)
        self._bus.publish(Told(nick, target, text), done)
        return target

    def wall(self, nick: str, text: str, done: Done | None = None) -> None:
        """Every connection, logged in or not, gets ``WALL``; ``*`` is the server."""
        if self.log_messages:
            self.log.info("WALL from {nick}: {text}", nick=nick, text=text)
        else:
            self.log.info("WALL from {nick}", nick=nick)
        self._bus.publish(Walled(nick, text), done)

    # --- the bus, in its order ---

    def _hear(self, stamped: Stamped) -> None:
        """Keep the roster and route one event; every event passes here once."""
        event = stamped.event
        audience = self._audience
        if type(event) is Said:  # the hot path first
            # The speaker, if it is on this node: a dialect that does not
            # echo (IRC) leaves it out.
            audience.broadcast(stamped, self._local.get(nick_key(event.nick)))
        elif type(event) is Joined:
            key = nick_key(event.nick)
            self._roster[key] = event.nick
            audience.broadcast(stamped)
            member = self._local.get(key)
            if member is not None:
                member.welcome(self.nicks, stamped.seq)
                notice = self._bus.notice
                if notice is not None:  # what those already here were told
                    audience.tell(member, Stamped(stamped.seq, stamped.time,
                                                  Walled(SERVER_NICK, notice)))
            elif key in self._orphans:
                self._orphans.discard(key)
                self._bus.release(event.nick, CONNECTION_LOST)
        elif type(event) is Parted:
            self._roster.pop(nick_key(event.nick), None)
            audience.broadcast(stamped)
        elif type(event) is Renamed:
            old_key, new_key = nick_key(event.old), nick_key(event.new)
            self._roster.pop(old_key, None)
            self._roster[new_key] = event.new
            member = self._local.get(old_key)
            if member is not None and old_key != new_key:
                # Not asked for (an asked rename moved the member already):
                # the room settled a collision after a split by renaming ours.
                del self._local[old_key]
                self._local[new_key] = member
                member.moved(event.new)
            audience.broadcast(stamped)
        elif type(event) is Told:
            member = self._local.get(nick_key(event.target))
            if member is not None:
                audience.tell(member, stamped)
        elif type(event) is Walled:
            audience.wall(stamped)


def _taken(nick: str) -> ChatError:
    return ChatError(ErrorCode.NICK_TAKEN, f"{nick} is already taken; choose another nick")
