"""The arrows of docs/architecture.md, read from the imports themselves.

Data flows one way (transport -> framer -> limits -> dialect -> session ->
room -> bus -> fan-out -> outbox -> transport), and the pure core does no
I/O.  These tests read every module's imports with ``ast`` (those under
``if TYPE_CHECKING`` too: a type-only import is still a dependency), so a
change that breaks an arrow fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Modules with no I/O and no event loop: plain Python, tested without sockets.
PURE = [
    "chatd.argtypes", "chatd.bus", "chatd.config", "chatd.connection", "chatd.dialects.irc",
    "chatd.dialects.line",
    "chatd.errors", "chatd.events", "chatd.fanout", "chatd.framing", "chatd.history", "chatd.hub",
    "chatd.limits", "chatd.nicks", "chatd.node", "chatd.origins", "chatd.outbox", "chatd.room",
    "chatd.redisbus", "chatd.session", "chatd.stats", "chatd.tcp_endpoint", "chatd.wire",
    "chatclient.client", "chatclient.commands", "chatclient.state",
]
IO_FRAMEWORKS = ("twisted", "prompt_toolkit", "asyncio", "socket", "redis")


def module_path(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    package = path / "__init__.py"
    return package if package.exists() else path.with_suffix(".py")


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports, as absolute dotted names."""
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    package = module if module_path(module).name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def touches(imports: set[str], *prefixes: str) -> list[str]:
    return sorted(name for name in imports
                  if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes))


class TestPureCore:
    """The core is plain Python."""

    @pytest.mark.parametrize("module", PURE)
    def test_pure_module_imports_no_io_framework(self, module: str) -> None:
        """A pure module imports neither Twisted nor prompt_toolkit (nor asyncio or sockets)."""
        assert touches(imports_of(module), *IO_FRAMEWORKS) == []

    def test_every_chatd_module_is_classified(self) -> None:
        """Each chatd module is either pure or a known edge, so a new one is placed knowingly."""
        edges = {"chatd.server", "chatd.service", "chatd.__main__", "chatd.__init__",
                 "chatd.transports.tcp", "chatd.transports._twisted", "chatd.transports.reuseport",
                 "chatd.transports.web", "chatd.transports.websocket", "chatd.transports.redis",
                 "chatd.metrics",
                 "chatd.transports.__init__", "chatd.dialects.__init__"}
        modules = {".".join(path.relative_to(ROOT).with_suffix("").parts)
                   for path in (ROOT / "chatd").rglob("*.py") if "bench" not in path.parts}
        assert modules - edges - set(PURE) == set()


class TestArrows:
    """Each layer knows only the layers below it."""

    def test_room_imports_no_dialect_and_no_transport(self) -> None:
        """The room speaks events, not words: it imports no dialect, grammar or transport."""
        assert touches(imports_of("chatd.room"),
                       "chatd.dialects", "chatd.wire", "chatd.transports",
                       "chatd.connection", "chatd.fanout", "chatd.outbox") == []

    @pytest.mark.parametrize("module", ["chatd.events", "chatd.bus", "chatd.fanout", "chatd.history",
                                        "chatd.outbox"])
    def test_below_the_room_there_are_no_words(self, module: str) -> None:
        """Events, the bus, the fan-out and the outbox import no dialect or grammar."""
        assert touches(imports_of(module), "chatd.dialects", "chatd.wire",
                       "chatd.session", "chatd.transports") == []

    def test_dialects_import_no_transport(self) -> None:
        """A dialect reaches its connection only through its Peer protocol."""
        for path in (ROOT / "chatd" / "dialects").glob("*.py"):
            module = "chatd.dialects." + path.stem
            assert touches(imports_of(module), "chatd.transports", "chatd.connection",
                           "chatd.hub", "chatd.node") == [], module

    def test_session_imports_no_dialect(self) -> None:
        """The session keeps state and raises ChatError; the words are its dialect's."""
        assert touches(imports_of("chatd.session"), "chatd.dialects", "chatd.wire") == []

    def test_twisted_internals_are_read_in_one_module(self) -> None:
        """Only chatd.transports._twisted names Twisted's private buffer fields."""
        offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "chatd").rglob("*.py")
                     if path.name != "_twisted.py"
                     and any(field in path.read_text(encoding="utf-8")
                             for field in ("dataBuffer", "_tempDataLen"))]
        assert offenders == []

    def test_client_imports_no_server_internals(self) -> None:
        """chat-tui shares the grammar, nick rule and framer, and nothing of the server."""
        for path in (ROOT / "chatclient").glob("*.py"):
            module = "chatclient." + path.stem
            imported = touches(imports_of(module), "chatd")
            allowed = {"chatd", "chatd.wire", "chatd.nicks", "chatd.framing", "chatd.errors",
                       "chatd.argtypes", "chatd.__version__"}
            assert [name for name in imported
                    if name not in allowed and name.rpartition(".")[0] not in allowed] == [], module
