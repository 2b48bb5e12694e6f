"""The WebSocket's Origin allow-list (``chatd/origins.py``): pure, no I/O."""

from __future__ import annotations

import pytest

from chatd.origins import OriginError, OriginPolicy, loopback_origins, normalize_origin


class TestNormalizeOrigin:
    """Origins are compared as ``scheme://host[:port]``, the way browsers write them."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("http://example.org", "http://example.org"),
        ("https://chat.example.org", "https://chat.example.org"),
        ("http://example.org:8080", "http://example.org:8080"),
        ("HTTP://Example.ORG:8080", "http://example.org:8080"),
        ("HtTpS://CHAT.example.org", "https://chat.example.org"),
        ("http://example.org:80", "http://example.org"),
        ("https://example.org:443", "https://example.org"),
        ("http://example.org:443", "http://example.org:443"),
        ("https://example.org:80", "https://example.org:80"),
        ("http://example.org/", "http://example.org"),
        ("  http://example.org  ", "http://example.org"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[::1]", "http://[::1]"),
        ("http://[::1]:80", "http://[::1]"),
        ("http://[FE80::AB]:8080", "http://[fe80::ab]:8080"),
    ])
    def test_normal_form(self, text: str, expected: str) -> None:
        """Scheme and host are lower-cased, the scheme's default port is left
        out, IPv6 keeps its brackets, and a bare trailing slash is dropped."""
        assert normalize_origin(text) == expected

    def test_normal_form_is_a_fixed_point(self) -> None:
        """Normalizing a normalized origin changes nothing."""
        for text in ("HTTP://Example.ORG:80", "https://[::1]:8443", "http://localhost:8080/"):
            once = normalize_origin(text)
            assert normalize_origin(once) == once

    @pytest.mark.parametrize("text", [
        "",
        "null",
        "NULL",
        "example.org",
        "example.org:8080",
        "//example.org",
        "ftp://example.org",
        "ws://example.org",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "http://:8080",
        "http://example.org/chat",
        "http://example.org/?x=1",
        "http://example.org?x=1",
        "http://example.org#top",
        "http://user@example.org",
        "http://user:secret@example.org",
        "http://@example.org",
        "http://:secret@example.org",
        "http://exam\tple.org",
        "http://example.org:80\n80",
        "http://example.org:99999",
        "http://example.org:port",
        "http://[::1",
    ])
    def test_anything_else_is_an_origin_error(self, text: str) -> None:
        """What no browser sends as an Origin raises ``OriginError`` (a ValueError)."""
        with pytest.raises(OriginError):
            normalize_origin(text)
        assert issubclass(OriginError, ValueError)

    def test_the_loopback_origins_of_a_port(self) -> None:
        """A page served on a port is opened as 127.0.0.1, localhost or [::1] on it."""
        assert sorted(loopback_origins("http", 8080)) == [
            "http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080"]
        assert sorted(loopback_origins("https", 443)) == [
            "https://127.0.0.1", "https://[::1]", "https://localhost"]


class TestOriginPolicy:
    """Which handshakes may open ``/ws``."""

    def test_a_missing_origin_is_permitted(self) -> None:
        """No Origin header means no browser, so no cross-site page to fear."""
        assert OriginPolicy().permits(None)
        assert OriginPolicy(["https://chat.example.org"]).permits(None)

    def test_only_listed_origins_are_permitted(self) -> None:
        """An origin on the list passes; another host, port or scheme does not."""
        policy = OriginPolicy(["https://chat.example.org"])
        assert policy.permits("https://chat.example.org")
        assert not policy.permits("https://evil.example.org")
        assert not policy.permits("http://chat.example.org")
        assert not policy.permits("https://chat.example.org:8443")
        assert not policy.permits("https://chat.example.org.evil.example")
        assert not OriginPolicy().permits("https://chat.example.org")

    def test_case_and_default_ports_do_not_matter(self) -> None:
        """The header is compared in normal form, whatever its case or default port."""
        policy = OriginPolicy(["HTTPS://Chat.Example.ORG:443", "http://localhost:80"])
        assert policy.permits("https://chat.example.org")
        assert policy.permits("https://chat.example.org:443")
        assert policy.permits("HTTPS://CHAT.EXAMPLE.ORG")
        assert policy.permits("http://LOCALHOST")
        assert policy.permits("http://localhost:80")
        assert not policy.permits("http://localhost:8080")

    def test_ipv6_loopback(self) -> None:
        """``[::1]`` with its port passes once allowed; another port does not."""
        policy = OriginPolicy()
        policy.allow(loopback_origins("http", 8080))
        assert policy.permits("http://[::1]:8080")
        assert policy.permits("http://127.0.0.1:8080")
        assert policy.permits("http://localhost:8080")
        assert not policy.permits("http://[::1]:8081")
        assert not policy.permits("http://[::2]:8080")
        assert not policy.permits("https://[::1]:8080")

    def test_null_is_refused(self) -> None:
        """``Origin: null`` (sandboxed frames, ``file:`` pages) never passes."""
        policy = OriginPolicy()
        policy.allow(loopback_origins("http", 8080))
        assert not policy.permits("null")
        assert not policy.permits("NULL")

    @pytest.mark.parametrize("garbage", [
        "", " ", "*", "localhost:8080", "http://localhost:8080/ws", "http://localhost:8080 x",
        "http://u@localhost:8080", "http://@localhost:8080", "http://localhost:99999",
        "ws://localhost:8080", "\x00", "http://localhost:8080\r\nX-Evil: 1",
        "http://local\thost:8080", "http://localhost:80\n80", "http://:x@localhost:8080",
    ])
    def test_garbage_is_refused_not_raised(self, garbage: str) -> None:
        """A header that is no origin at all is refused, quietly (no exception)."""
        policy = OriginPolicy()
        policy.allow(loopback_origins("http", 8080))
        assert not policy.permits(garbage)

    def test_allow_grows_the_list(self) -> None:
        """Origins added as listeners start are permitted from then on, in normal form."""
        policy = OriginPolicy(["https://chat.example.org"])
        assert not policy.permits("http://127.0.0.1:9000")
        policy.allow(loopback_origins("http", 9000))
        assert policy.permits("http://127.0.0.1:9000")
        assert policy.allowed == sorted([
            "https://chat.example.org", "http://127.0.0.1:9000", "http://localhost:9000",
            "http://[::1]:9000"])

    def test_an_invalid_allowed_origin_is_an_error(self) -> None:
        """The list itself must hold origins (``--web-origin`` checks the same way)."""
        with pytest.raises(OriginError):
            OriginPolicy(["chat.example.org"])
        with pytest.raises(OriginError):
            OriginPolicy().allow(["https://chat.example.org/path"])
