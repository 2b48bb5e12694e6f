"""Which page origins may open the WebSocket: the cross-site hijacking guard.

Browsers apply no same-origin rule to WebSockets: any page a user visits
could open ``ws://chat-host/ws`` with the user's network position and read
the room.  Every browser sends ``Origin`` with the handshake, so the server
compares it with an allow-list: the origins the page itself is served from
on loopback, and those the operator names (``--web-origin``).  A missing
``Origin`` is allowed (only browsers send one, and the attack needs a
browser); ``null`` (sandboxed frames, ``file:`` pages) is not.  Comparing
with the ``Host`` header instead would pass under DNS rebinding, where both
name the attacker's host.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class OriginError(ValueError):
    """Not an origin a browser could send."""


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in lower case, with the scheme's default port
    left out, as browsers write it; ``OriginError`` for anything else."""
    text = text.strip()
    # urlsplit silently drops TAB, CR and LF anywhere, and an empty user
    # (``http://@host``) leaves ``username`` empty, not None: both would
    # pass as the origin they hide.
    if not text.isprintable() or "@" in text:
        raise OriginError("an origin is scheme://host[:port], nothing more")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise OriginError(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OriginError("an origin starts with http:// or https://")
    if not parts.hostname:
        raise OriginError("an origin names a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise OriginError("an origin is scheme://host[:port], nothing more")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def loopback_origins(scheme: str, port: int) -> list[str]:
    """The origins of a page served on ``port`` and opened on this machine."""
    return [normalize_origin(f"{scheme}://{host}:{port}") for host in LOOPBACK_HOSTS]


class OriginPolicy:
    """The allow-list, grown as the web listeners start."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = {normalize_origin(origin) for origin in allowed}

    def allow(self, origins: Iterable[str]) -> None:
        self._allowed.update(normalize_origin(origin) for origin in origins)

    @property
    def allowed(self) -> list[str]:
        return sorted(self._allowed)

    def permits(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header may open ``/ws``."""
        if origin is None:
            return True
        try:
            return normalize_origin(origin) in self._allowed
        except OriginError:
            return False
