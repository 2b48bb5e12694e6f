"""A ``tcp:`` or ``tcp6:`` endpoint description as the numbers a socket needs.

``--reuse-port`` binds its listening sockets itself (Twisted cannot set
SO_REUSEPORT, twisted#9101), so it has to read the description it was
given.  It reads it as Twisted's ``serverFromString`` does, so one string
means the same listener with and without ``--reuse-port``: ``:`` separates
the arguments, ``name=value`` names one, a backslash takes the next
character as it is (``interface=\\:\\:1``), and each kind takes its
positional arguments in Twisted's order.

Pure: strings in, a frozen ``TCPEndpoint`` or a ``ValueError`` out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Twisted's own argument order: endpoints._parseTCP(port, interface, backlog)
# and _TCP6ServerParser._parseServer(port, backlog, interface).
_ARGUMENTS = {"tcp": ("port", "interface", "backlog"), "tcp6": ("port", "backlog", "interface")}
_DEFAULT_INTERFACE = {"tcp": "", "tcp6": "::"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPEndpoint:
    """Where one TCP listener binds; ``backlog`` is None when the
    description names none (the caller picks its own default)."""

    port: int
    interface: str  # "" is every IPv4 interface, as for Twisted
    backlog: int | None
    ipv6: bool


def split_description(description: str) -> tuple[list[str], dict[str, str]]:
    """The positional and named arguments of a description, its kind first,
    split as Twisted's ``endpoints._parse`` splits them."""
    positional: list[str] = []
    named: dict[str, str] = {}
    name: str | None = None  # set once this argument's first "=" is read
    current = ""
    chars = iter(description)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("it ends in a lone backslash")
            current += escaped
        elif char == ":":
            _add(positional, named, name, current)
            name, current = None, ""
        elif char == "=" and name is None:  # a later "=" is part of the value
            name, current = current, ""
        else:
            current += char
    _add(positional, named, name, current)
    return positional, named


def _add(positional: list[str], named: dict[str, str], name: str | None, value: str) -> None:
    if name is None:
        positional.append(value)
    else:
        named[name] = value


def parse_tcp_endpoint(description: str) -> TCPEndpoint:
    """``tcp:PORT[:interface=ADDR][:backlog=N]`` or ``tcp6:...`` as a
    ``TCPEndpoint``; anything else, or an argument Twisted would not take,
    raises ``ValueError`` with a message for the operator."""
    positional, named = split_description(description)
    kind = positional.pop(0) if positional else ""
    if kind not in _ARGUMENTS:
        raise ValueError(f"{kind or description!r} is not a tcp: or tcp6: endpoint")
    arguments = _bind(_ARGUMENTS[kind], positional, named)
    if "port" not in arguments:
        raise ValueError("it names no port")
    interface = arguments.get("interface", _DEFAULT_INTERFACE[kind])
    backlog = arguments.get("backlog")
    return TCPEndpoint(
        port=_number(arguments["port"], "port", 0, 65535),
        interface=interface,
        backlog=None if backlog is None else _number(backlog, "backlog", 1, None),
        ipv6=kind == "tcp6" or is_ipv6_address(interface),
    )


def _bind(names: tuple[str, ...], positional: list[str], named: dict[str, str]) -> dict[str, str]:
    """Positional and named arguments by name, as a Python call binds them."""
    if len(positional) > len(names):
        raise ValueError(f"it has {len(positional)} unnamed arguments; at most "
                         f"{len(names)} ({', '.join(names)})")
    arguments = dict(zip(names, positional, strict=False))
    for name, value in named.items():
        if name not in names:
            raise ValueError(f"unknown argument {name!r} (tcp endpoints take {', '.join(names)})")
        if name in arguments:
            raise ValueError(f"{name} is given twice")
        arguments[name] = value
    return arguments


def _number(text: str, what: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{what} {text!r} is out of range ({bounds})")
    return value


def is_ipv6_address(interface: str) -> bool:
    """Whether Twisted's ``tcp:`` would listen on IPv6 for this interface:
    an IPv6 literal, maybe with a ``%scope``."""
    try:
        ipaddress.IPv6Address(interface.partition("%")[0])
    except ValueError:
        return False
    return True
