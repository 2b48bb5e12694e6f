"""The real chatd program, spoken to as nc and telnet would."""

from __future__ import annotations

import pytest

from tests.support import LineClient, RunningServer

pytestmark = pytest.mark.e2e


def test_two_users_chat_over_lf_and_crlf(chatd_server: RunningServer) -> None:
    """An nc user (LF) and a telnet user (CRLF) hear each other's SAY."""
    ann = LineClient(chatd_server.host, chatd_server.port)
    bob = LineClient(chatd_server.host, chatd_server.port, newline=b"\r\n")
    assert ann.login("ann")[-3:] == ["JOIN ann", "USERS ann", "OK WHO 1"]
    assert bob.login("bob")[-3:] == ["JOIN bob", "USERS ann bob", "OK WHO 2"]
    assert ann.read_line() == "JOIN bob"
    bob.send("SAY hello  there")
    assert ann.read_line() == "SAY bob hello  there"
    assert bob.read_line() == "SAY bob hello  there"
    bob.send("QUIT gone")
    assert bob.read_line() == "BYE gone"
    assert ann.read_line() == "PART bob gone"
