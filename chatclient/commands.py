"""What the user typed, as protocol messages or local actions.

Pure: a line of input in, one ``Outcome`` out.  A plain line is ``SAY``; a
line starting with ``/`` is a command; ``//text`` says a line that starts with
``/``.  Messages are built with ``chatd.wire``'s own classes, which validate
themselves, so a line the server would refuse for its shape is caught here
with a usage hint instead of a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chatd import wire
from chatd.errors import ChatError
from chatd.nicks import NICK_RULES, is_valid_nick


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message to the server."""

    message: wire.ClientMessage


@dataclass(frozen=True, slots=True)
class Local:
    """Something the client does itself: ``clear`` or ``help``."""

    action: str


@dataclass(frozen=True, slots=True)
class Problem:
    """The line cannot be sent; tell the user why, in words."""

    text: str


Outcome = Send | Local | Problem


@dataclass(frozen=True, slots=True)
class Command:
    """One slash command: its usage line and what it does."""

    usage: str
    summary: str
    build: Callable[[str], Outcome]


def _say(rest: str) -> Outcome:
    return Send(wire.Say(rest))


def _nick(rest: str) -> Outcome:
    name = rest.strip()
    if not name:
        return Problem("Usage: /nick NAME")
    if not is_valid_nick(name):
        return Problem(f"“{name}” cannot be used as a nick: {NICK_RULES}.")
    return Send(wire.Nick(name))


def _msg(rest: str) -> Outcome:
    nick, _, text = rest.strip().partition(" ")
    text = text.lstrip(" ")
    return Send(wire.Tell(nick, text))


def _wall(rest: str) -> Outcome:
    return Send(wire.Wall(rest))


def _who(rest: str) -> Outcome:
    return Send(wire.Who())


def _oper(rest: str) -> Outcome:
    return Send(wire.Oper(rest.strip()))


def _quit(rest: str) -> Outcome:
    return Send(wire.Quit(rest.strip() or None))


def _local(action: str) -> Callable[[str], Outcome]:
    return lambda rest: Local(action)


COMMANDS: dict[str, Command] = {
    "/msg": Command("/msg NICK TEXT", "say TEXT privately to NICK", _msg),
    "/tell": Command("/tell NICK TEXT", "the same as /msg", _msg),
    "/nick": Command("/nick NAME", "change your nick", _nick),
    "/wall": Command("/wall TEXT", "alert everyone connected (may need /oper)", _wall),
    "/who": Command("/who", "list who is in the room", _who),
    "/oper": Command("/oper PASSWORD", "become an operator", _oper),
    "/help": Command("/help", "this list of commands and keys", _local("help")),
    "/clear": Command("/clear", "clear the chat pane (the room is not affected)", _local("clear")),
    "/quit": Command("/quit [REASON]", "leave (Ctrl-C or Ctrl-D on an empty line too)", _quit),
}

HELP_LINES = (
    "Type a line and press Enter to say it to the room.",
    *(f"{cmd.usage:<18} {cmd.summary}" for cmd in COMMANDS.values()),
    f"{'//TEXT':<18} say a line that starts with /",
    "Keys: Tab completes nicks and commands; Up/Down recall what you typed;",
    "PageUp/PageDown or the mouse wheel scroll; Ctrl-End jumps to the newest line;",
    "F2 shows or hides the member list; Ctrl-C quits.",
)


def parse_input(line: str) -> Outcome | None:
    """What one typed line means; None for a blank line (nothing to do)."""
    line = wire.clean_text(line.rstrip("\r\n"))
    if not line.strip():
        return None
    if line.startswith("//"):
        return _build(_say, line[1:], "/")
    if not line.startswith("/"):
        return _build(_say, line, "")
    name, _, rest = line.partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        return Problem(f"There is no command {name}. Type /help for the list, "
                       f"or start the line with // to say it as it is.")
    return _build(command.build, rest, command.usage)


def _build(build: Callable[[str], Outcome], rest: str, usage: str) -> Outcome:
    """Run a builder; a message that refuses its arguments becomes a usage hint."""
    try:
        return build(rest)
    except (ChatError, ValueError):
        return Problem(f"Usage: {usage}" if usage.startswith("/") else
                       "That line cannot be sent.")


def completions(before_cursor: str, nicks: Iterable[str]) -> tuple[int, list[str]]:
    """Tab completion: how many characters to replace, and the candidates.

    The word under the cursor is completed: a command when it is the first
    word and starts with ``/``, otherwise a nick (ignoring case).  A nick at
    the start of the line gets ``: `` after it, the usual way to address
    someone.
    """
    start = before_cursor.rfind(" ") + 1
    word = before_cursor[start:]
    if start == 0 and word.startswith("/") and not word.startswith("//"):
        return len(word), [name + " " for name in COMMANDS if name.startswith(word.lower())]
    if not word:
        return 0, []
    folded = word.casefold()
    suffix = ": " if start == 0 else " "
    found = sorted((n for n in nicks if n.casefold().startswith(folded)), key=str.casefold)
    return len(word), [n + suffix for n in found]


# A paste of more lines than this is confirmed first (WeeChat asks too), so
# a stray paste of a log file does not flood the room.
PASTE_ASK_OVER = 5


def paste_lines(before: str, pasted: str, after: str = "") -> list[str]:
    """The lines a bracketed paste makes of the input line: the text before
    the cursor, the pasted text and the text after it, cut at every line end
    (CRLF, CR or LF: terminals differ), blank lines left out.

    Each becomes its own ``SAY``, taken as text even if it starts with ``/``:
    pasting a snippet must not run commands.
    """
    text = (before + pasted + after).replace("\r\n", "\n").replace("\r", "\n")
    return [line for line in text.split("\n") if line.strip()]
