"""Shared fixtures: a real ``chatd`` on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support import RunningServer, start_chatd


@pytest.fixture
def chatd_factory() -> Iterator[Callable[..., RunningServer]]:
    """Start real ``chatd`` processes (arguments as for ``start_chatd``);
    every one is stopped when the test ends."""
    started: list[RunningServer] = []

    def start(*args: str, **kwargs: object) -> RunningServer:
        server = start_chatd(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def chatd_server(chatd_factory: Callable[..., RunningServer]) -> RunningServer:
    """One real ``chatd`` with default settings on 127.0.0.1."""
    return chatd_factory()


# A real redis-server, and chatd nodes on it (tests of a room on many nodes).
from tests.redis_support import nodes, redis_server  # noqa: E402,F401
