"""The one error type of chatd: it mirrors the wire's ``ERR <code> <text>`` line."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every error code a server may send, as protocol v1 defines them."""

    UNKNOWN_COMMAND = "unknown-command"
    NEED_NICK = "need-nick"
    BAD_NICK = "bad-nick"
    NICK_TAKEN = "nick-taken"
    NO_SUCH_USER = "no-such-user"
    MISSING_ARGUMENT = "missing-argument"
    LINE_TOO_LONG = "line-too-long"
    BAD_ENCODING = "bad-encoding"
    FLOOD = "flood"
    NOT_PERMITTED = "not-permitted"
    BAD_ARGUMENT = "bad-argument"  # protocol 1.1: HISTORY and TIME


class ChatError(Exception):
    """A request the server refuses; the connection stays open.

    Raised anywhere in the pure core; only the session turns it into an
    ``ERR`` line, so the text is written for the person at the other end.
    """

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
