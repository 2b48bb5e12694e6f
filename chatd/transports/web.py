"""The web door: chatd's own page, its WebSocket, and the operations endpoints.

One twisted.web site per ``--web`` listener serves exactly these paths,
and nothing else (no directory listing, 404 for the rest):

* ``/``, ``/chat.js``, ``/chat.css``, ``/favicon.svg``: the page, shipped as
  package data (``chatd/static``) and read once at start;
* ``/ws``: the room, over WebSocket (``chatd.transports.websocket``);
* ``/healthz``: 200 while serving, 503 once shutting down;
* ``/metrics``: the Prometheus text format (``chatd.metrics``).

``--metrics`` listeners serve only the last two.  Every response carries
a strict Content-Security-Policy (no inline script, connections only to
itself, Trusted Types so no script can turn text into HTML), ``nosniff``
and ``no-referrer``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.web import server
from twisted.web.resource import Resource

from chatd import metrics
from chatd.node import Node
from chatd.origins import OriginPolicy
from chatd.transports.websocket import REASONS, WebSocketDoor

SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
     "require-trusted-types-for 'script'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
PAGE_FILES = {
    b"": ("index.html", "text/html; charset=utf-8"),
    b"chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    b"chat.css": ("chat.css", "text/css; charset=utf-8"),
    b"favicon.svg": ("favicon.svg", "image/svg+xml"),
}
HTTP_TIMEOUT = 60  # seconds an HTTP connection may idle (a WebSocket stops it)


def _plain(request: server.Request, code: int, text: str) -> bytes:
    request.setResponseCode(code, REASONS.get(code))
    request.setHeader("content-type", "text/plain; charset=utf-8")
    return (text + "\n").encode("utf-8")


class Fixed(Resource):
    """One file's bytes, read once; GET and HEAD only."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self._body = body
        self._type = content_type

    def render_GET(self, request: server.Request) -> bytes:
        if request.postpath:
            return _plain(request, 404, "not found")
        request.setHeader("content-type", self._type)
        request.setHeader("cache-control", "no-cache")
        return self._body

    def render_HEAD(self, request: server.Request) -> bytes:
        """GET's headers, no body (twisted.web would warn as it dropped one)."""
        body = self.render_GET(request)
        request.setHeader("content-length", str(len(body)))
        return b""


class Health(Resource):
    """200 while the node serves, 503 once it is shutting down."""

    isLeaf = True

    def __init__(self, node: Node) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self._node = node

    def render_GET(self, request: server.Request) -> bytes:
        if request.postpath:
            return _plain(request, 404, "not found")
        if self._node.hub.closing:
            return _plain(request, 503, "shutting down")
        return _plain(request, 200, "ok")


class Metrics(Resource):
    isLeaf = True

    def __init__(self, node: Node) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated
        self._registry = metrics.registry_for(node)

    def render_GET(self, request: server.Request) -> bytes:
        if request.postpath:
            return _plain(request, 404, "not found")
        request.setHeader("content-type", CONTENT_TYPE_LATEST)
        return metrics.render(self._registry)


class Root(Resource):
    """The named children and nothing else."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Resource is unannotated

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        return NotFound()  # type: ignore[no-untyped-call]  # Resource is unannotated

    def render_GET(self, request: server.Request) -> bytes:
        return _plain(request, 404, "not found")


class NotFound(Resource):
    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        return _plain(request, 404, "not found")


class SecureRequest(server.Request):
    """Every response, errors included, with the security headers."""

    def process(self) -> None:
        for name, value in SECURITY_HEADERS:
            self.setHeader(name, value)  # type: ignore[no-untyped-call]  # unannotated
        super().process()  # type: ignore[no-untyped-call]  # unannotated


class QuietSite(server.Site):
    """chatd logs connections itself; no access log line per request."""

    noisy = False

    def log(self, request: Any) -> None:
        pass


def page_files() -> dict[bytes, tuple[bytes, str]]:
    """The page's files that exist in the package, by path."""
    folder = resources.files("chatd").joinpath("static")
    found = {}
    for path, (name, content_type) in PAGE_FILES.items():
        item = folder.joinpath(name)
        if item.is_file():
            found[path] = (item.read_bytes(), content_type)
    return found


def operations_root(node: Node) -> Root:
    root = Root()
    root.putChild(b"healthz", Health(node))
    root.putChild(b"metrics", Metrics(node))
    return root


def web_site(node: Node, origins: OriginPolicy, reactor: Any) -> tuple[server.Site, WebSocketDoor]:
    """The whole web door: page, ``/ws``, ``/healthz``, ``/metrics``."""
    root = operations_root(node)
    for path, (body, content_type) in page_files().items():
        root.putChild(path, Fixed(body, content_type))
    door = WebSocketDoor(node, origins, reactor, trust_proxy=node.config.web_trust_proxy)
    root.putChild(b"ws", door)
    return _site(root, reactor), door


def metrics_site(node: Node, reactor: Any) -> server.Site:
    """Only ``/healthz`` and ``/metrics``."""
    return _site(operations_root(node), reactor)


def _site(root: Resource, reactor: Any) -> server.Site:
    site = QuietSite(root, timeout=HTTP_TIMEOUT, reactor=reactor)  # type: ignore[no-untyped-call]
    site.requestFactory = SecureRequest
    return site
