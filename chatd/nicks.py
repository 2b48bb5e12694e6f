"""What a nick is: the one rule every dialect, the room and the bus share.

Protocol v1: "a nick is 1-20 ASCII letters, digits, '_' or '-', starting with
a letter; nicks are unique ignoring case."  Written once, here.
"""

from __future__ import annotations

import re
from typing import Final

NICK_MAX: Final = 20
SERVER_NICK: Final = "*"
_NICK_RE: Final = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{NICK_MAX - 1}}}")
NICK_RULES: Final = (
    f"a nick is 1-{NICK_MAX} ASCII letters, digits, '_' or '-', starting with a letter"
)


def is_valid_nick(name: str) -> bool:
    """True for the nicks protocol v1 allows: ``[A-Za-z][A-Za-z0-9_-]{0,19}``."""
    return _NICK_RE.fullmatch(name) is not None


def nick_key(name: str) -> str:
    """The identity of a nick: nicks are unique ignoring case.

    A nick already in lower case is its own key: the room, the bus and the
    roster then share one string per member instead of each folding its own.
    """
    folded = name.casefold()
    return name if folded == name else folded
