"""The one chat room: who is in it, their nicks, and who hears what.

Pure: members are reached only through ``Member.write`` (bytes, already
encoded) by way of the ``Outbox``, so the room is tested with recording fakes
and no sockets.
"""

from __future__ import annotations

from typing import Any, Protocol

from chatd import wire
from chatd.errors import ChatError, ErrorCode
from chatd.outbox import Outbox


class Member(Protocol):
    """A connection as the room sees it."""

    nick: str | None

    def write(self, data: bytes) -> None: ...


class EventLog(Protocol):
    """The part of ``twisted.logger.Logger`` the room uses; kept abstract so
    the room does not import Twisted."""

    def info(self, format: str, **kwargs: Any) -> None: ...


class _NoLog:
    def info(self, format: str, **kwargs: Any) -> None:
        pass


class Room:
    """Logged-in members keyed by case-folded nick, and every connection."""

    def __init__(
        self,
        outbox: Outbox | None = None,
        *,
        max_line: int = 1024,
        log: EventLog | None = None,
        log_messages: bool = False,
    ) -> None:
        self.outbox = outbox if outbox is not None else Outbox()
        self.max_line = max_line
        self.log: EventLog = log if log is not None else _NoLog()
        self.log_messages = log_messages
        self._members: dict[str, Member] = {}
        self._connections: dict[Member, None] = {}

    # --- who is here ---

    @property
    def nicks(self) -> list[str]:
        """Logged-in nicks, in the order they logged in (a rename moves a
        nick to the end)."""
        return [m.nick for m in self._members.values() if m.nick is not None]

    @property
    def connections(self) -> list[Member]:
        """Every open connection, logged in or not."""
        return list(self._connections)

    def __len__(self) -> int:
        return len(self._members)

    def find(self, nick: str) -> Member | None:
        """The member with this nick, ignoring case."""
        return self._members.get(wire.nick_key(nick))

    # --- sending ---

    def send(self, member: Member, message: wire.Message) -> None:
        """One line to one member, in order after its broadcasts."""
        self.outbox.send(member, wire.encode(message))

    def broadcast(self, message: wire.Message) -> None:
        """One line to every logged-in member, encoded once."""
        self.outbox.broadcast(wire.encode(message))

    # --- connections ---

    def connect(self, member: Member) -> None:
        """A connection opened; it hears WALLs but nothing else until NICK."""
        self._connections[member] = None

    def disconnect(self, member: Member, reason: str) -> None:
        """A connection closed for ``reason``; the others hear PART if it had
        logged in.  Calling it twice is harmless."""
        self._connections.pop(member, None)
        if member.nick is not None and self.find(member.nick) is member:
            self._leave(member, reason)

    def _leave(self, member: Member, reason: str) -> None:
        assert member.nick is not None
        del self._members[wire.nick_key(member.nick)]
        self.outbox.remove(member)
        if self.log_messages:  # a QUIT reason is the user's own text
            self.log.info("{nick} left ({reason})", nick=member.nick, reason=reason)
        else:
            self.log.info("{nick} left", nick=member.nick)
        self.broadcast(wire.Parted(member.nick, reason))

    # --- commands ---

    def login(self, member: Member, nick: str) -> None:
        """Protocol v1: ``OK NICK`` to the sender, ``JOIN`` to everyone (sender
        included), then the ``WHO`` reply to the sender."""
        key = wire.nick_key(nick)
        if key in self._members:
            raise ChatError(ErrorCode.NICK_TAKEN, f"{nick} is already taken; choose another nick")
        self._members[key] = member
        member.nick = nick
        self.outbox.add(member)
        self.log.info("{nick} logged in", nick=nick)
        self.send(member, wire.Ok("NICK", nick))
        self.broadcast(wire.Joined(nick))
        self.who(member)

    def rename(self, member: Member, new: str) -> None:
        """``OK NICK`` to the sender and ``RENAME`` to everyone.  Changing only
        the case of one's own nick is a rename; the same nick is just OK."""
        old = member.nick
        assert old is not None
        if new == old:
            self.send(member, wire.Ok("NICK", new))
            return
        key, old_key = wire.nick_key(new), wire.nick_key(old)
        if key != old_key and key in self._members:
            raise ChatError(ErrorCode.NICK_TAKEN, f"{new} is already taken; choose another nick")
        del self._members[old_key]
        self._members[key] = member
        member.nick = new
        self.log.info("{old} is now {new}", old=old, new=new)
        self.send(member, wire.Ok("NICK", new))
        self.broadcast(wire.Renamed(old, new))

    def say(self, member: Member, text: str) -> None:
        """Everyone logged in, the sender included, hears the line."""
        assert member.nick is not None
        if self.log_messages:
            self.log.info("<{nick}> {text}", nick=member.nick, text=text)
        self.broadcast(wire.Said(member.nick, text))

    def tell(self, member: Member, nick: str, text: str) -> None:
        """``TELL`` to the one user, ``OK TELL`` to the sender."""
        assert member.nick is not None
        target = self.find(nick)
        if target is None or target.nick is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"nobody called {nick} is here")
        if self.log_messages:
            self.log.info("<{nick}> to {to}: {text}", nick=member.nick, to=target.nick, text=text)
        self.send(target, wire.Told(member.nick, text))
        self.send(member, wire.Ok("TELL", target.nick))

    def wall(self, nick: str, text: str) -> None:
        """Every connection, logged in or not, gets ``WALL``; ``*`` is the
        server.  Pending broadcasts go first, so nobody sees them reordered."""
        if self.log_messages:
            self.log.info("WALL from {nick}: {text}", nick=nick, text=text)
        else:
            self.log.info("WALL from {nick}", nick=nick)
        self.outbox.flush()
        data = wire.encode(wire.Walled(nick, text))
        for member in list(self._connections):
            member.write(data)

    def who(self, member: Member) -> None:
        """``USERS`` lines within the line limit, then ``OK WHO <count>``."""
        lines = wire.users_lines(self.nicks, self.max_line)
        lines.append(wire.encode(wire.Ok("WHO", str(len(self._members)))))
        self.outbox.send(member, b"".join(lines))
