"""Argument types shared by chatd's command lines (``chatd``, ``chatd-bench``
and ``chat-tui``), so every program refuses a bad number in the same words."""

from __future__ import annotations

import argparse


def _number(text: str, kind: type[int] | type[float], what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number above 0."""
    value = float(_number(text, float, "a number"))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: let the system pick, for servers)."""
    value = int(_number(text, int, "a port number"))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def remote_port(text: str) -> int:
    """A TCP port to connect to, 1-65535."""
    value = port(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port to connect to (1-65535)")
    return value
