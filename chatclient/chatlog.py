"""The chat log: every line shown, appended to one file per server, as irssi's
autolog does (``chat-tui --log`` or ``--log-dir DIR``).

Each line is its time as the protocol writes it (UTC, ISO 8601 with
milliseconds: the server's time when the line had one, the local clock
otherwise), a space, and the line as plain mode prints it::

    2026-11-25T14:03:07.120Z <ann> hello there
    2026-11-25T14:03:09.871Z --> bob joined.

What is logged is what the view shows, with one exception: the replay of
the first login (lines said before this client came, which an earlier
session may have logged already).  The lines missed while disconnected,
replayed after a reconnect, are logged: they fill the gap.

The names and the wording are pure functions; ``ChatLog`` is the file edge.
It opens the file on the first line to log, creating the directory (mode
0700) if needed, and writes each batch of lines at once.  A failure is
reported once, in words, and ends logging: a full disk never stops the chat.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TextIO

from chatclient import render
from chatclient.state import Line, Replay
from chatd import wire

_UNSAFE = re.compile(r"[^a-z0-9._-]")


def default_directory(environ: Mapping[str, str], home: Path) -> Path:
    """Where ``--log`` writes: ``$XDG_STATE_HOME/chatd/logs``, else
    ``~/.local/state/chatd/logs`` (the XDG base directory rule: a relative
    ``XDG_STATE_HOME`` is ignored)."""
    state = environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else home / ".local" / "state"
    return base / "chatd" / "logs"


def file_name(host: str, port: int) -> str:
    """The log file of one server, safe on any file system: the host in lower
    case with anything but letters, digits, ``.``, ``_`` and ``-`` made ``_``,
    then the port (``localhost-8123.log``, ``__1-8123.log`` for ``::1``)."""
    safe = _UNSAFE.sub("_", host.lower()) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]  # no hidden file, no "." or ".."
    return f"{safe}-{port}.log"


def logged(line: Line) -> bool:
    """Whether a shown line goes to the log: all but the first login's replay."""
    return line.replay is not Replay.EARLIER


def entry(line: Line) -> str:
    """One line of the log, without its newline."""
    return f"{wire.format_time(line.when)} {render.plain_text(line)}"


def _open_append(path: Path) -> TextIO:
    """Open ``path`` to append, created private (0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(descriptor, "a", encoding="utf-8", errors="replace")


class ChatLog:
    """One server's log file; ``record`` is ``chatclient.client.Recorder``."""

    def __init__(self, directory: Path, name: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = directory / name
        self._clock = clock
        self._file: TextIO | None = None
        self.failed = False

    def record(self, lines: Iterable[Line]) -> str | None:
        """Append the lines to log; the problem in words if that failed, after
        which nothing more is written."""
        if self.failed:
            return None
        text = "".join(entry(line) + "\n" for line in lines if logged(line))
        if not text:
            return None
        try:
            if self._file is None:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._file = _open_append(self.path)
                text = f"--- log opened {wire.format_time(self._clock())}\n" + text
            self._file.write(text)
            self._file.flush()
        except (OSError, ValueError) as error:
            self.failed = True
            self._drop()
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            return f"Could not write the chat log {self.path} ({reason}); logging stopped."
        return None

    def close(self) -> None:
        """Say the log is closed, and close the file (errors are ignored now:
        there is nobody left to tell)."""
        if self._file is not None and not self.failed:
            try:
                self._file.write(f"--- log closed {wire.format_time(self._clock())}\n")
            except (OSError, ValueError):
                pass
        self._drop()

    def _drop(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass
