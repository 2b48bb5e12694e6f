"""The hub through the pure core: admission, registration deadlines and
shutdown, over recording fake links on a clock the tests advance."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.testing import MemoryReactorClock

from chatd.hub import counts_per_address
from chatd.node import Node
from tests.builders import Peer, connect, make_node

FULL = "BYE server is full, try again later"
TOO_MANY = "BYE too many connections from your address"


def clock(node: Node) -> MemoryReactorClock:
    """The clock ``make_node`` gave the node."""
    return cast(MemoryReactorClock, node.clock)


class TestMaxClients:
    """--max-clients."""

    def test_past_max_clients_gets_hello_then_bye_and_is_closed(self) -> None:
        """The connection past --max-clients reads HELLO, then BYE, and its link is closed."""
        node = make_node(max_clients=2)
        Peer(node, "10.0.0.1")
        Peer(node, "10.0.0.2")
        third = Peer(node, "10.0.0.3")
        lines = third.lines()
        assert lines[0].startswith("HELLO chatd/")
        assert lines[1:] == [FULL]
        assert third.link.calls == ["close"]

    def test_a_refused_connection_counts_until_it_closes(self) -> None:
        """A refused connection stays in the hub until the transport reports it gone."""
        node = make_node(max_clients=1)
        first = Peer(node, "10.0.0.1")
        refused = Peer(node, "10.0.0.2")
        assert len(node.hub) == 2
        refused.lose()
        assert len(node.hub) == 1
        first.lose()
        assert len(node.hub) == 0
        assert "close" not in Peer(node, "10.0.0.3").link.calls

    def test_a_refused_connection_gets_no_registration_deadline(self) -> None:
        """A refused connection still open when the deadline would pass hears nothing more."""
        node = make_node(max_clients=1, register_timeout=30)
        Peer(node, "10.0.0.1").login("ann")
        refused = connect(node)
        clock(node).advance(1000)
        assert refused.lines() == []
        assert refused.link.calls == ["close"]


class TestPerAddress:
    """--max-per-ip, its release, and the loopback exemption."""

    def test_the_connection_past_the_cap_is_refused(self) -> None:
        """The connection past --max-per-ip from one address gets BYE; another address does not."""
        node = make_node(max_per_ip=2)
        Peer(node, "10.1.1.1")
        Peer(node, "10.1.1.1")
        extra = Peer(node, "10.1.1.1")
        other = Peer(node, "10.1.1.2")
        assert extra.lines()[-1] == TOO_MANY
        assert extra.link.calls == ["close"]
        assert other.link.calls == []

    def test_a_slot_is_released_when_a_connection_closes(self) -> None:
        """A lost connection no longer counts against its address."""
        node = make_node(max_per_ip=1)
        first = Peer(node, "10.1.1.1")
        assert Peer(node, "10.1.1.1").link.calls == ["close"]
        first.lose()
        again = Peer(node, "10.1.1.1")
        assert again.link.calls == []
        assert again.lines()[1:] == []

    def test_a_refused_connection_releases_no_slot(self) -> None:
        """Closing the refused extra connection does not free the slot the first one holds."""
        node = make_node(max_per_ip=1)
        Peer(node, "10.1.1.1")
        extra = Peer(node, "10.1.1.1")
        extra.lose()
        assert Peer(node, "10.1.1.1").lines()[-1] == TOO_MANY

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5", "::1"])
    def test_loopback_is_exempt(self, host: str) -> None:
        """Loopback connections are not capped per address by default."""
        node = make_node(max_per_ip=1)
        peers = [Peer(node, host) for _ in range(3)]
        assert [peer.link.calls for peer in peers] == [[], [], []]

    @pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
    def test_loopback_is_capped_with_limit_loopback(self, host: str) -> None:
        """With --limit-loopback, loopback addresses are capped like any other."""
        node = make_node(max_per_ip=1, limit_loopback=True)
        Peer(node, host)
        extra = Peer(node, host)
        assert extra.lines()[-1] == TOO_MANY

    def test_ipv4_mapped_loopback_is_exempt(self) -> None:
        """127.0.0.1 seen through a dual-stack IPv6 listener (::ffff:127.0.0.1) is exempt too."""
        node = make_node(max_per_ip=1)
        peers = [Peer(node, "::ffff:127.0.0.1") for _ in range(2)]
        assert [peer.link.calls for peer in peers] == [[], []]

    def test_ipv4_mapped_address_shares_the_ipv4_slot(self) -> None:
        """One IPv4 client counts once whether it came in over tcp or a dual-stack tcp6."""
        node = make_node(max_per_ip=1)
        Peer(node, "10.1.1.1")
        assert Peer(node, "::ffff:10.1.1.1").lines()[-1] == TOO_MANY

    @pytest.mark.parametrize(("host", "limit_loopback", "counts"), [
        (None, False, False), (None, True, False),
        ("10.0.0.1", False, True), ("2001:db8::1", False, True),
        ("127.0.0.1", False, False), ("127.0.0.1", True, True),
        ("not-an-address", False, True),
    ])
    def test_which_hosts_count(self, host: str | None, limit_loopback: bool,
                               counts: bool) -> None:
        """Unknown hosts never count, loopback counts only when limited, anything else counts."""
        assert counts_per_address(host, limit_loopback) is counts


class TestRegistrationDeadline:
    """--register-timeout."""

    def test_an_unregistered_connection_is_closed_at_the_deadline(self) -> None:
        """No NICK within --register-timeout: BYE registration timeout, and the link closes."""
        node = make_node(register_timeout=30)
        idle = connect(node)
        clock(node).advance(29)
        assert idle.lines() == []
        assert idle.link.calls == []
        clock(node).advance(2)
        assert idle.lines() == ["BYE registration timeout: no NICK"]
        assert idle.link.calls == ["close"]

    def test_a_registered_connection_is_not_closed(self) -> None:
        """A connection that logged in before the deadline stays open and hears nothing of it."""
        node = make_node(register_timeout=30)
        ann = connect(node).login("ann")
        ann.lines()
        clock(node).advance(1000)
        assert ann.lines() == []
        assert ann.link.calls == []

    def test_logging_in_cancels_the_deadline(self) -> None:
        """Once logged in, no registration timer is left pending on the clock."""
        node = make_node(register_timeout=30)
        connect(node).login("ann")
        assert clock(node).getDelayedCalls() == []

    def test_logging_in_after_a_flood_pause_cancels_the_deadline(self) -> None:
        """A NICK held back by flood lag still cancels the deadline once it is handled."""
        node = make_node(register_timeout=30, flood_burst=1, flood_rate=1.0)
        peer = connect(node)
        peer.send("PING a", "NICK ann")
        clock(node).advance(1.0)
        assert "OK NICK ann" in peer.lines()
        assert clock(node).getDelayedCalls() == []
        clock(node).advance(1000)
        assert peer.link.calls == ["pause", "resume"]

    def test_a_connection_gone_before_the_deadline_leaves_nothing_behind(self) -> None:
        """Losing an unregistered connection cancels its deadline."""
        node = make_node(register_timeout=30)
        connect(node).lose()
        assert len(node.hub) == 0
        assert clock(node).getDelayedCalls() == []


class TestShutdown:
    """WALL *, BYE, and done once all are closed or grace has passed."""

    def test_wall_then_bye_to_everyone(self) -> None:
        """Every connection, logged in or not, reads WALL * first and BYE last, and is closed."""
        node = make_node()
        peers = [connect(node).login("ann"), connect(node).login("bob"), connect(node)]
        for peer in peers:
            peer.lines()
        node.shutdown(lambda: None)
        for peer in peers:
            lines = peer.lines()
            assert lines[0] == "WALL * server shutting down"
            assert lines[-1] == "BYE server shutting down"
            assert all(line.startswith("PART ") for line in lines[1:-1]), lines
            assert peer.link.calls == ["close"]

    def test_a_reason_replaces_the_default(self) -> None:
        """shutdown(reason=...) is what WALL and BYE say."""
        node = make_node()
        peer = connect(node)
        node.shutdown(lambda: None, reason="maintenance")
        assert peer.lines() == ["WALL * maintenance", "BYE maintenance"]

    def test_done_at_once_when_nobody_is_connected(self) -> None:
        """With no connections, done is called at once and nothing is scheduled."""
        node = make_node()
        done: list[None] = []
        node.shutdown(lambda: done.append(None))
        assert done == [None]
        assert clock(node).getDelayedCalls() == []

    def test_done_once_when_the_last_connection_closes(self) -> None:
        """done is called exactly once, when the last connection is lost, and not again later."""
        node = make_node()
        peers = [connect(node).login("ann"), connect(node)]
        done: list[None] = []
        node.shutdown(lambda: done.append(None))
        assert done == []
        peers[0].lose()
        assert done == []
        peers[1].lose()
        assert done == [None]
        clock(node).advance(100)
        assert done == [None]
        assert all("abort" not in peer.link.calls for peer in peers)

    def test_after_grace_the_rest_are_aborted_and_done_is_called(self) -> None:
        """After grace, whoever is still connected is aborted and done is called once."""
        node = make_node()
        gone, lingering = connect(node).login("ann"), connect(node).login("bob")
        done: list[None] = []
        node.shutdown(lambda: done.append(None), grace=3.0)
        gone.lose()
        clock(node).advance(2.9)
        assert done == []
        assert lingering.link.calls == ["close"]
        clock(node).advance(0.2)
        assert done == [None]
        assert lingering.link.calls == ["close", "abort"]
        assert gone.link.calls == ["close"]

    def test_a_loss_reported_after_grace_calls_nothing_twice(self) -> None:
        """The transport's loss after grace neither calls done again nor aborts again."""
        node = make_node()
        lingering = connect(node).login("ann")
        done: list[None] = []
        node.shutdown(lambda: done.append(None), grace=3.0)
        clock(node).advance(3.1)
        lingering.lose()
        clock(node).advance(100)
        assert done == [None]
        assert lingering.link.calls == ["close", "abort"]
        assert len(node.hub) == 0
