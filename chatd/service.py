"""chatd as a Twisted ``Service`` tree, for ``twistd chatd``."""

from __future__ import annotations

from typing import Any

from twisted.application import internet, service, strports

from chatd.config import Config
from chatd.transports.reuseport import reuse_port_endpoint
from chatd.transports.tcp import ChatFactory


class ChatService(service.MultiService):
    """Listeners plus a graceful ``WALL``/``BYE`` when twistd stops."""

    def __init__(self, factory: ChatFactory) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # MultiService is unannotated
        self.factory = factory

    def stopService(self) -> Any:
        drained = self.factory.shutdown()
        drained.addCallback(lambda _: service.MultiService.stopService(self))
        return drained


def make_service(config: Config) -> ChatService:
    """One listening service per endpoint, sharing one factory and room."""
    from twisted.internet import reactor

    factory = ChatFactory(config, reactor)
    top = ChatService(factory)
    for description in config.listen:
        if config.reuse_port:  # what strports.service does, on chatd's SO_REUSEPORT endpoint
            internet.StreamServerEndpointService(reuse_port_endpoint(reactor, description),
                                                 factory).setServiceParent(top)
        else:
            strports.service(description, factory).setServiceParent(top)
    return top
