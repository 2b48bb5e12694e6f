"""``twistd chatd``: chatd as a twistd plugin, the way Twisted services run.

This directory must have no ``__init__.py`` (Twisted's plugin convention).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    """Hands every argument to chatd's own parser, so both share one CLI."""

    def parseOptions(self, options: Any = None) -> None:
        import sys

        from chatd.config import ConfigError, parse_config

        try:
            self["config"] = parse_config(sys.argv[1:] if options is None else options,
                                          prog="twistd chatd")
        except ConfigError as exc:
            raise usage.UsageError(str(exc)) from None


@implementer(IServiceMaker, IPlugin)
class ChatServiceMaker:
    tapname = "chatd"
    description = "A one-room chat server with a line protocol (see docs/protocol.md)."
    options = Options

    def makeService(self, options: Options) -> Any:
        from chatd.service import make_service

        return make_service(options["config"])


serviceMaker = ChatServiceMaker()
