"""One room on several chatd nodes sharing a real redis-server.

Every test starts its own redis-server (``redis_server``) and its own chatd
nodes on it (``nodes``: a lease of 3 s, a heartbeat every second), then
talks to them over raw loopback sockets.  A line said on one node reaches
another node's users asynchronously: ``sync()`` (PING/PONG) vouches only
for what a client's own node owed it, so every wait across nodes reads
until the expected line arrives, bounded by the client's timeout.  "Nothing
else arrived" across nodes is checked with a marker line said after the
fact: the stream has one order, so whatever came before the marker was
there to be seen.  Nothing sleeps for a fixed time, except that a pause of
Redis past every lease lasts as long as it must (the experiment's length).

Figures (kill -9 to PART, split and resume times) are printed; run with -s.
One test is a strict xfail, naming the gap and where a fix would go.
"""

from __future__ import annotations

import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from chatd.nicks import nick_key
from chatd.redisbus import MISSED, NODE_DOWN, SPLIT, WHOLE
from chatd.tcp_endpoint import TCPEndpoint
from chatd.transports.reuseport import bind_reuse_port
from tests.redis_support import RedisServer, free_port
from tests.support import LineClient, RunningServer, chatd_command, wait_until
from tests.test_e2e_load import DEADLINE, Crowd

pytestmark = [pytest.mark.e2e]

Nodes = Callable[..., RunningServer]
SPLIT_WALL = f"WALL * {SPLIT}"
WHOLE_WALLS = (f"WALL * {WHOLE}", f"WALL * {MISSED}")
# Lease 3 s and a heartbeat every second: a dead node's users are reaped
# within lease + beat; the rest is slack for a loaded machine.
PART_BOUND = 8.0
# split_after is 1.5 s, counted from Redis's last answer; a Redis that hangs
# is noticed when a command times out (1.5 s, issued at most a beat after
# the last answer): told within 2.5 s, and the rest is slack.
SPLIT_BOUND = 3.5
SHUTDOWN = "server shutting down"


class Peer(LineClient):
    """A LineClient that keeps every line it read, for checks made later."""

    def __init__(self, server: RunningServer, timeout: float = 10.0) -> None:
        super().__init__(server.host, server.port, timeout=timeout)
        self.heard: list[str] = []

    def read_line(self) -> str:
        line = super().read_line()
        self.heard.append(line)
        return line

    def read_until_any(self, *prefixes: str) -> list[str]:
        """Lines up to and including the first that starts with one of ``prefixes``."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(prefixes):
                return lines

    def read_until_line(self, wanted: str) -> list[str]:
        """Lines up to and including the one equal to ``wanted``."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line == wanted:
                return lines

    def who(self) -> list[str]:
        """The room as this client's node lists it, in its order."""
        self.send("WHO")
        lines = self.read_until("OK WHO ")
        nicks = [nick for line in lines if line.startswith("USERS ") for nick in line.split()[1:]]
        assert int(lines[-1].split()[2]) == len(nicks), lines
        return nicks

    def says(self, count: int) -> list[str]:
        """The next ``count`` SAY lines, skipping anything else."""
        said: list[str] = []
        while len(said) < count:
            line = self.read_line()
            if line.startswith("SAY "):
                said.append(line)
        return said


@pytest.fixture
def connect() -> Iterator[Callable[..., Peer]]:
    """Open Peers to a node (HELLO read); all are closed after the test."""
    opened: list[Peer] = []

    def make(server: RunningServer, timeout: float = 10.0) -> Peer:
        peer = Peer(server, timeout)
        opened.append(peer)
        assert peer.read_line().startswith("HELLO chatd/")
        return peer

    yield make
    for peer in opened:
        peer.close()


def log_in(connect: Callable[..., Peer], server: RunningServer, nick: str,
           timeout: float = 10.0) -> Peer:
    """A Peer logged in as ``nick`` on ``server``, its WHO reply read."""
    peer = connect(server, timeout)
    peer.send(f"NICK {nick}")
    lines = peer.read_until("OK WHO ")
    assert lines[:2] == [f"OK NICK {nick}", f"JOIN {nick}"], lines
    return peer


def wait_room(peers: Sequence[Peer], nicks: Sequence[str] | None = None,
              timeout: float = 10.0, *, ordered: bool = True) -> list[str]:
    """Ask WHO of every peer until all give the same list (the same nicks
    in any order, unless ``ordered``), and ``nicks`` in any order when given;
    the first peer's list."""
    deadline = time.monotonic() + timeout
    rooms: list[list[str]] = []
    for _ in range(10_000):
        rooms = [peer.who() for peer in peers]
        shown = rooms if ordered else [sorted(room) for room in rooms]
        if all(room == shown[0] for room in shown) and (
                nicks is None or sorted(rooms[0]) == sorted(nicks)):
            return rooms[0]
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a poll interval, not a wait for an event
    raise AssertionError(f"WHO did not agree within {timeout}s: {rooms}")


def marker(sender: Peer, peers: Sequence[Peer], text: str) -> list[list[str]]:
    """``sender`` says ``text``; what each of ``peers`` read before the
    marker came back: everything the stream had for it before that line."""
    sender.send(f"SAY {text}")
    line = f"SAY {sender_nick(sender)} {text}"
    return [peer.read_until_line(line)[:-1] for peer in peers]


def sender_nick(peer: Peer) -> str:
    """The nick of a logged-in peer: its last OK NICK, or a RENAME of it since."""
    nick = ""
    for line in peer.heard:
        if line.startswith("OK NICK "):
            nick = line.split()[2]
        elif line.startswith("RENAME ") and line.split()[1] == nick:
            nick = line.split()[2]
    return nick


def assert_no_duplicate_nicks(room: Sequence[str]) -> None:
    keys = [nick_key(nick) for nick in room]
    assert len(set(keys)) == len(keys), room


# --- one room on two and three nodes -------------------------------------------------


class TestOneRoom:
    @pytest.mark.parametrize("count", [2, 3])
    def test_every_say_reaches_everyone_once_in_one_order(
            self, nodes: Nodes, connect: Callable[..., Peer], count: int) -> None:
        """Three senders on different nodes say 100 lines each at once; every user on every node hears
        all 300 exactly once, each sender's in order, and all in one identical order."""
        servers = [nodes() for _ in range(count)]
        users = [log_in(connect, servers[i % count], f"u{i}") for i in range(2 * count)]
        wait_room(users, [f"u{i}" for i in range(2 * count)])
        senders = users[:3]  # u0, u1, u2: on three nodes, or on two (u0 and u2 share one)
        lines = 100
        for sender in senders:
            sender.send(*(f"SAY line {n}" for n in range(lines)))
        heard = [user.says(len(senders) * lines) for user in users]
        for sequence in heard:
            assert sequence == heard[0]
        for sender in senders:
            nick = sender_nick(sender)
            own = [line for line in heard[0] if line.startswith(f"SAY {nick} ")]
            assert own == [f"SAY {nick} line {n}" for n in range(lines)]
        # Nothing more: the marker is the next SAY everybody hears.
        for before in marker(users[-1], users, "end"):
            assert not [line for line in before if line.startswith("SAY ")], before

    def test_who_is_one_list_in_one_order_on_every_node(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """Users logged in on three nodes in turn, one renamed, get one WHO list in one order from
        every node, a not-logged-in connection's included."""
        servers = [nodes() for _ in range(3)]
        users = [log_in(connect, servers[i % 3], f"n{i}") for i in range(7)]
        users[1].send("NICK moved")
        users[1].read_until("RENAME n1 moved")
        lookers = [connect(server) for server in servers]
        room = wait_room(users + lookers, ["n0", "moved", *(f"n{i}" for i in range(2, 7))])
        assert room[-1] == "moved", "a rename moves to the end on every node"
        assert room[:-1] == ["n0", *(f"n{i}" for i in range(2, 7))]

    def test_a_nick_race_across_nodes_has_one_winner(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """Twenty times, two connections on two nodes send NICK Bob<i> and NICK bob<i> at once: exactly
        one gets OK NICK, the other ERR nick-taken."""
        first, second = nodes(), nodes()
        watcher = log_in(connect, first, "watcher")
        winners: list[str] = []
        wins = [0, 0]  # by node: the race is a real one when both win some
        for round_ in range(20):
            left, right = connect(first), connect(second)
            pair = [(left, f"Bob{round_}"), (right, f"bob{round_}")]
            if round_ % 2:
                pair.reverse()
            for peer, nick in pair:
                peer.send(f"NICK {nick}")
            answers = {nick: peer.read_until_any("OK NICK ", "ERR ")[-1] for peer, nick in pair}
            won = [nick for nick, answer in answers.items() if answer == f"OK NICK {nick}"]
            lost = [answer for answer in answers.values() if answer.startswith("ERR ")]
            assert len(won) == 1 and len(lost) == 1, answers
            assert lost[0].startswith("ERR nick-taken "), answers
            winners.append(won[0])
            wins[won[0].startswith("bob")] += 1
        print(f"\nNICK race: the first node won {wins[0]} rounds, the second {wins[1]}")
        room = wait_room([watcher, connect(second)], ["watcher", *winners])
        assert_no_duplicate_nicks(room)

    def test_rename_collisions_across_nodes_have_one_winner(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """Twenty times, users on two nodes rename to Zed<i> and zed<i> at once: one OK NICK and a
        RENAME everyone sees, the other ERR nick-taken and its old nick."""
        first, second = nodes(), nodes()
        ann, bob = log_in(connect, first, "ann"), log_in(connect, second, "bob")
        wait_room([ann, bob], ["ann", "bob"])
        for round_ in range(20):
            pair = [(ann, f"Zed{round_}"), (bob, f"zed{round_}")]
            if round_ % 2:
                pair.reverse()
            old = {peer: sender_nick(peer) for peer, _ in pair}
            start = {peer: len(peer.heard) for peer, _ in pair}
            for peer, nick in pair:
                peer.send(f"NICK {nick}")
            answers = {peer: peer.read_until_any("OK NICK ", "ERR ")[-1] for peer, _ in pair}
            winners = [(peer, nick) for peer, nick in pair if answers[peer] == f"OK NICK {nick}"]
            assert len(winners) == 1, answers
            winner, new = winners[0]
            [loser] = [peer for peer, _ in pair if peer is not winner]
            assert answers[loser].startswith("ERR nick-taken "), answers
            for peer in (ann, bob):  # the rename reaches both nodes (perhaps before ERR)
                if f"RENAME {old[winner]} {new}" not in peer.heard[start[peer]:]:
                    peer.read_until_line(f"RENAME {old[winner]} {new}")
            assert sender_nick(loser) == old[loser]
        room = wait_room([ann, bob])
        assert sorted(room, key=nick_key) == sorted([sender_nick(ann), sender_nick(bob)], key=nick_key)

    def test_a_case_only_rename_is_a_rename_on_every_node(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """ann becomes ANN on one node: the other node sees RENAME ann ANN, lists ANN, and refuses Ann
        as taken; NICK ANN again changes nothing anywhere."""
        first, second = nodes(), nodes()
        ann, bob = log_in(connect, first, "ann"), log_in(connect, second, "bob")
        wait_room([ann, bob], ["ann", "bob"])
        ann.send("NICK ANN")
        assert ann.read_until("RENAME ")[-2:] == ["OK NICK ANN", "RENAME ann ANN"]
        assert bob.read_until("RENAME ")[-1] == "RENAME ann ANN"
        assert wait_room([ann, bob]) == ["bob", "ANN"]
        late = connect(second)
        late.send("NICK Ann")
        assert late.read_line().startswith("ERR nick-taken ")
        ann.send("NICK ANN")
        assert ann.read_line() == "OK NICK ANN"
        [before] = marker(ann, [bob], "still ANN")
        assert before == [], "an unchanged nick is not news to anyone"

    def test_tell_crosses_nodes_both_ways(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """TELL reaches a user on another node and back, matched ignoring case; a third user hears
        nothing; an unknown nick gets ERR no-such-user."""
        first, second = nodes(), nodes()
        ann, bob = log_in(connect, first, "ann"), log_in(connect, second, "Bob")
        carl = log_in(connect, second, "carl")
        wait_room([ann, bob, carl], ["ann", "Bob", "carl"])
        ann.send("TELL bOB psst, bob")
        assert bob.read_until("TELL ")[-1] == "TELL ann psst, bob"
        assert ann.read_until("OK TELL ")[-1] == "OK TELL Bob"
        bob.send("TELL ann psst back")
        assert ann.read_until("TELL ")[-1] == "TELL Bob psst back"
        assert bob.read_until("OK TELL ")[-1] == "OK TELL ann"
        ann.send("TELL nobody hello?")
        assert ann.read_line().startswith("ERR no-such-user ")
        [before] = marker(ann, [carl], "done telling")
        assert not [line for line in before if line.startswith("TELL ")], before

    def test_wall_reaches_every_connection_on_every_node(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """A WALL from one node reaches every connection on every node, the sender and connections that
        never logged in included."""
        first, second = nodes(), nodes()
        ann, bob = log_in(connect, first, "ann"), log_in(connect, second, "bob")
        strangers = [connect(first), connect(second)]
        wait_room([ann, bob, *strangers], ["ann", "bob"])
        ann.send("WALL the building is on fire")
        for peer in (ann, bob, *strangers):
            assert peer.read_until("WALL ")[-1] == "WALL ann the building is on fire"
        bob.send("WALL false alarm")
        for peer in (ann, bob, *strangers):
            assert peer.read_until("WALL ")[-1] == "WALL bob false alarm"

    def test_a_later_node_knows_the_room_and_its_history(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """A node started after lines were said on another lists the room's WHO at once, and HISTORY
        there returns those lines, oldest first."""
        first = nodes()
        ann = log_in(connect, first, "ann")
        for text in ("one", "two", "three"):
            ann.send(f"SAY {text}")
            ann.read_until(f"SAY ann {text}")
        second = nodes()
        stranger = connect(second)
        assert stranger.who() == ["ann"], "the roster is read before the door opens"
        carl = log_in(connect, second, "carl")
        assert carl.heard[-3:] == ["JOIN carl", "USERS ann carl", "OK WHO 2"]
        carl.send("HISTORY 5")
        reply = carl.read_until("OK HISTORY ")
        assert reply[-1] == "OK HISTORY 3"
        assert [re.sub(r"^HIST \S+ ", "", line) for line in reply[:-1]] == [
            "SAY ann one", "SAY ann two", "SAY ann three"]
        ann.send("SAY four")
        assert carl.read_until("SAY ")[-1] == "SAY ann four"
        carl.send("HISTORY 5")
        assert carl.read_until("OK HISTORY ")[-1] == "OK HISTORY 3", "a line heard live is not history"

    def test_join_rename_and_part_are_seen_on_the_other_nodes(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """JOIN, RENAME, QUIT with a reason, QUIT without one, and a dropped connection reach the other
        node as JOIN, RENAME and PART with that reason."""
        first, second = nodes(), nodes()
        ann = log_in(connect, first, "ann")
        bob = log_in(connect, second, "bob")
        assert ann.read_until("JOIN ")[-1] == "JOIN bob"
        bob.send("NICK robert")
        assert ann.read_until("RENAME ")[-1] == "RENAME bob robert"
        bob.send("QUIT gone fishing")
        assert bob.read_until("BYE ")[-1] == "BYE gone fishing"
        assert ann.read_until("PART ")[-1] == "PART robert gone fishing"
        carl = log_in(connect, second, "carl")
        assert ann.read_until("JOIN ")[-1] == "JOIN carl"
        carl.send("QUIT")
        assert ann.read_until("PART ")[-1] == "PART carl leaving"
        dora = log_in(connect, second, "dora")
        assert ann.read_until("JOIN ")[-1] == "JOIN dora"
        dora.close()
        assert ann.read_until("PART ")[-1] == "PART dora connection lost"
        assert wait_room([ann, connect(second)]) == ["ann"]


# --- nodes that die, freeze or stop -------------------------------------------------------


def wait_parts(peer: Peer, nicks: Sequence[str], reason: str) -> list[str]:
    """Read until ``peer`` heard PART <nick> <reason> for each of ``nicks``."""
    wanted = {f"PART {nick} {reason}" for nick in nicks}
    lines: list[str] = []
    while wanted:
        line = peer.read_line()
        lines.append(line)
        wanted.discard(line)
    return lines


class TestNodeFailure:
    def test_a_killed_nodes_users_part_with_node_down_in_time(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """kill -9 of a node: the other nodes' users hear PART ... node down for each of its users
        within lease + beat (asserted under 8 s), and the nicks are free again."""
        first, doomed, third = nodes(), nodes(), nodes()
        ann, carl = log_in(connect, first, "ann"), log_in(connect, third, "carl")
        log_in(connect, doomed, "bob")
        log_in(connect, doomed, "bea")
        wait_room([ann, carl], ["ann", "carl", "bob", "bea"])
        killed = time.monotonic()
        doomed.process.kill()
        doomed.process.wait(10)
        figures = []
        for peer in (ann, carl):
            wait_parts(peer, ["bob", "bea"], NODE_DOWN)
            figures.append(time.monotonic() - killed)
        print(f"\nPART node down after kill -9: {figures[0]:.2f} s at the first node, "
              f"{figures[1]:.2f} s at the second (bound {PART_BOUND} s)")
        assert max(figures) < PART_BOUND
        log_in(connect, first, "bob")
        log_in(connect, third, "BEA")
        room = wait_room([ann, carl], ["ann", "carl", "bob", "BEA"])
        assert_no_duplicate_nicks(room)

    def test_a_node_frozen_past_its_lease_is_reaped_and_comes_back(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """SIGSTOP past the lease: its users PART elsewhere and one nick is taken meanwhile; after
        SIGCONT they JOIN again, one of the two bobs is renamed bob-2, and WHO lists the same users
        everywhere."""
        ann, other, bob, bea = freeze_while_a_nick_is_taken(nodes, connect)
        room = wait_room([ann, other, bob, bea], ["ann", "bea", "bob", "bob-2"], ordered=False)
        assert_no_duplicate_nicks(room)
        assert {"JOIN bea"} <= set(ann.heard) and {"JOIN bob", "JOIN bob-2"} & set(ann.heard)
        # Each session knows its own nick: one of the two is bob, the other bob-2.
        for peer, text in ((other, "from the first node"), (bob, "from the frozen node")):
            peer.send(f"SAY {text}")
        said = {line.split(" ", 2)[2]: line.split()[1] for line in ann.says(2)}
        assert sorted(said.values()) == ["bob", "bob-2"], said
        assert said["from the first node"] == sender_nick(other)
        assert said["from the frozen node"] == sender_nick(bob)
        # The renamed one heard it as RENAME bob bob-2; the frozen node's
        # users heard the first node's bob come in as bob-2.
        renamed = other if sender_nick(other) == "bob-2" else bob
        assert "RENAME bob bob-2" in renamed.heard, renamed.heard

    @pytest.mark.xfail(strict=True, reason=(
        "redisbus: after the rejoin the first node lists [ann, bob-2, bob, bea] (stream order: "
        "RENAME bob bob-2, then the burst's JOIN bob, JOIN bea, appended) while the frozen node "
        "keeps its own users where they were and appends bob-2: [ann, bob, bea, bob-2]; a node "
        "registering later gets chatd_register's claim-time order, [ann, bob, bea, bob-2]. The "
        "order is Room._roster's, built from delivered events, so the fix is not the bus's alone"))
    def test_who_after_a_frozen_node_rejoins_is_in_one_order(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """After a frozen node's users rejoin and a collision is settled, WHO is one list in one order on every node."""
        peers = freeze_while_a_nick_is_taken(nodes, connect)
        wait_room(peers, ["ann", "bea", "bob", "bob-2"], ordered=False)
        wait_room(peers, timeout=1)


def freeze_while_a_nick_is_taken(nodes: Nodes, connect: Callable[..., Peer]) -> list[Peer]:
    """ann on one node, bob and bea on another; SIGSTOP the second until
    ann hears their PARTs, take bob on the first meanwhile, SIGCONT, and
    wait until ann heard bea JOIN again; ann, the other bob, bob, bea."""
    first, frozen = nodes(), nodes()
    ann = log_in(connect, first, "ann")
    bob = log_in(connect, frozen, "bob", timeout=15)
    bea = log_in(connect, frozen, "bea", timeout=15)
    wait_room([ann, bob, bea], ["ann", "bob", "bea"])
    stopped = time.monotonic()
    frozen.process.send_signal(signal.SIGSTOP)
    try:
        wait_parts(ann, ["bob", "bea"], NODE_DOWN)
        reaped = time.monotonic() - stopped
        other = log_in(connect, first, "bob")  # the reaped nick, taken meanwhile
    finally:
        frozen.process.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    ann.read_until_line("JOIN bea")
    back = time.monotonic() - resumed
    print(f"\nfrozen node: PART node down {reaped:.2f} s after SIGSTOP; "
          f"its users JOIN again {back:.2f} s after SIGCONT")
    assert reaped < PART_BOUND
    return [ann, other, bob, bea]


def start_for_a_short_pause(nodes: Nodes) -> tuple[RunningServer, RunningServer]:
    """Two nodes with a longer lease, so that a pause of Redis just past
    the split ends well within it: split after 2 s, noticed within 3.5 s
    (a 3 s timeout, beats every 0.5 s), reaped only after 6 s."""
    first, second = (nodes("--redis-lease", "6", "--redis-beat", "0.5") for _ in range(2))
    return first, second


class TestRedisTrouble:
    def test_a_dropped_redis_link_loses_nothing_and_repeats_nothing(
            self, nodes: Nodes, connect: Callable[..., Peer], redis_server: RedisServer) -> None:
        """CLIENT KILL TYPE normal, twice, while three senders on two nodes are sending: every user
        hears all 300 lines once, in one order, with no split, and the stream holds each line once."""
        first, second = nodes(), nodes()
        servers = [first, second, first, second]
        users = [log_in(connect, servers[i], f"u{i}", timeout=15) for i in range(4)]
        wait_room(users, ["u0", "u1", "u2", "u3"])
        senders, lines = users[:3], 100
        total = len(senders) * lines
        for sender in senders:
            sender.send(*(f"SAY {n}" for n in range(lines)))
        # Each connection's next line waits for its last to come back, so
        # the lines go one round trip at a time: the first kill comes while
        # they are in flight, the second once a third of them was heard.
        killed, written = [], []

        def kill() -> None:
            killed.append(int(redis_server.command("CLIENT", "KILL", "TYPE", "normal")[1:]))
            written.append(int(redis_server.command("XLEN", "chatd:events")[1:]) - len(users))

        kill()
        early = users[3].says(total // 3)
        kill()
        heard = [user.says(total) for user in users[:3]] + [early + users[3].says(total - len(early))]
        print(f"\nCLIENT KILL: {killed} connections cut with {written} of {total} lines "
              f"in the stream")
        for sequence in heard:
            assert sequence == heard[0]
        for sender in senders:
            nick = sender_nick(sender)
            own = [line for line in heard[0] if line.startswith(f"SAY {nick} ")]
            assert own == [f"SAY {nick} {n}" for n in range(lines)]
        for before in marker(users[3], users, "end"):
            assert not [line for line in before if line.startswith("SAY ")], before
        assert min(killed) >= 4, "each kill cut both nodes' writer and reader"
        assert redis_server.command("XLEN", "chatd:events") == f":{len(users) + total + 1}"
        for server in (first, second):
            assert "lost the link to Redis" in server.log()
        for user in users:
            assert not [line for line in user.heard if line.startswith("WALL ")], user.heard

    def test_a_redis_restart_splits_the_room_then_makes_it_whole(
            self, nodes: Nodes, connect: Callable[..., Peer], redis_server: RedisServer) -> None:
        """Redis killed: each user is told once that the room is split, and chat on one node goes on;
        Redis restarted on its port: the room is whole again within seconds, WHO agrees, and a SAY
        reaches everyone."""
        first, second = nodes(), nodes()
        ann, amy = log_in(connect, first, "ann", 15), log_in(connect, first, "amy", 15)
        bob = log_in(connect, second, "bob", 15)
        everyone = [ann, amy, bob]
        wait_room(everyone, ["ann", "amy", "bob"])
        down = time.monotonic()
        redis_server.kill()
        for peer in everyone:
            peer.read_until_line(SPLIT_WALL)
        told = time.monotonic() - down
        ann.send("SAY can anyone hear me?")
        assert amy.read_until("SAY ")[-1] == "SAY ann can anyone hear me?"
        assert ann.read_until("SAY ")[-1] == "SAY ann can anyone hear me?"
        restarted = time.monotonic()
        redis_server.start()
        for peer in everyone:
            peer.read_until_any(*WHOLE_WALLS)
        whole = time.monotonic() - restarted
        print(f"\nRedis killed: split told after {told:.2f} s; whole again {whole:.2f} s "
              f"after the restart")
        assert told < SPLIT_BOUND and whole < 10
        # The same users everywhere; not always in one order (see
        # test_who_after_a_frozen_node_rejoins_is_in_one_order).
        room = wait_room(everyone, ["ann", "amy", "bob"], ordered=False)
        assert_no_duplicate_nicks(room)
        bob.send("SAY back together")
        for peer in everyone:
            assert peer.read_until("SAY ")[-1] == "SAY bob back together"
        for peer in everyone:
            assert peer.heard.count(SPLIT_WALL) == 1, peer.heard
            assert sum(line in WHOLE_WALLS for line in peer.heard) == 1, peer.heard
        assert "SAY ann can anyone hear me?" not in bob.heard

    def test_a_short_redis_pause_resumes_the_room(
            self, nodes: Nodes, connect: Callable[..., Peer], redis_server: RedisServer) -> None:
        """Redis paused past split_after but within the lease: users are told once, local chat goes on,
        a nick claimed on both sides meanwhile goes to the earlier claim, and the room is whole again
        (resumed) with no line heard twice."""
        first, second = start_for_a_short_pause(nodes)
        ann, amy = log_in(connect, first, "ann", 15), log_in(connect, first, "amy", 15)
        bob = log_in(connect, second, "bob", 15)
        everyone = [ann, amy, bob]
        wait_room(everyone, ["ann", "amy", "bob"])
        paused = time.monotonic()
        redis_server.pause()
        try:
            for peer in everyone:
                peer.read_until_line(SPLIT_WALL)
            told = time.monotonic() - paused
            ann.send("SAY said during the split")
            for peer in (ann, amy):
                assert peer.read_until("SAY ")[-1] == "SAY ann said during the split"
            carol = log_in(connect, first, "carol", 15)
            joined_ms = int(time.time() * 1000)
            wait_until(lambda: int(time.time() * 1000) > joined_ms + 1, what="a later millisecond")
            other = log_in(connect, second, "Carol", 15)
        finally:
            redis_server.resume()
        resumed = time.monotonic()
        for peer in (*everyone, carol, other):
            assert peer.read_until_any(*WHOLE_WALLS)[-1] == f"WALL * {WHOLE}"
        whole = time.monotonic() - resumed
        print(f"\nRedis paused within the lease: split told after {told:.2f} s; whole again "
              f"{whole:.2f} s after the resume")
        for peer in (bob, other):
            assert "RENAME Carol Carol-2" in peer.read_until_line("JOIN carol"), peer.heard
        room = wait_room([*everyone, carol, other], ["ann", "amy", "bob", "carol", "Carol-2"],
                         ordered=False)
        assert_no_duplicate_nicks(room)
        assert (sender_nick(carol), sender_nick(other)) == ("carol", "Carol-2")
        marker(bob, [*everyone, carol, other], "after the split")
        for peer in (ann, amy):
            assert peer.heard.count("SAY ann said during the split") == 1, peer.heard
        for peer in (*everyone, carol, other):
            assert peer.heard.count(SPLIT_WALL) == 1, peer.heard

    def test_a_line_said_during_a_short_split_reaches_the_other_nodes(
            self, nodes: Nodes, connect: Callable[..., Peer], redis_server: RedisServer) -> None:
        """A line said on one node while Redis is paused within the lease reaches the other node's
        users once the room is whole again (resumed: nothing lost)."""
        first, second = start_for_a_short_pause(nodes)
        ann, bob = log_in(connect, first, "ann", 15), log_in(connect, second, "bob", 15)
        wait_room([ann, bob], ["ann", "bob"])
        redis_server.pause()
        try:
            for peer in (ann, bob):
                peer.read_until_line(SPLIT_WALL)
            ann.send("SAY said during the split")
            ann.read_until("SAY ")
        finally:
            redis_server.resume()
        for peer in (ann, bob):
            assert peer.read_until_any(*WHOLE_WALLS)[-1] == f"WALL * {WHOLE}"
        [before] = marker(ann, [bob], "after the split")
        assert "SAY ann said during the split" in before, before

    def test_a_redis_pause_past_the_lease_settles_a_nick_taken_twice(
            self, nodes: Nodes, connect: Callable[..., Peer], redis_server: RedisServer) -> None:
        """Redis paused past every lease: users are told once; carol logs in on one node, then Carol on
        the other; after the resume the later claim is Carol-2 everywhere (RENAME on her node,
        herself included; JOIN Carol-2 on the other)."""
        first, second = nodes(), nodes()
        ann, bob = log_in(connect, first, "ann", 15), log_in(connect, second, "bob", 15)
        wait_room([ann, bob], ["ann", "bob"])
        paused = time.monotonic()
        redis_server.pause()
        try:
            for peer in (ann, bob):
                peer.read_until_line(SPLIT_WALL)
            told = time.monotonic() - paused
            carol = log_in(connect, first, "carol", 15)
            assert ann.read_until("JOIN ")[-1] == "JOIN carol"
            # A later claim by the claim clock (milliseconds): the later one is renamed.
            joined_ms = int(time.time() * 1000)
            wait_until(lambda: int(time.time() * 1000) > joined_ms + 1, what="a later millisecond")
            other = log_in(connect, second, "Carol", 15)
            assert bob.read_until("JOIN ")[-1] == "JOIN Carol"
            # The experiment's length, not a wait for an event: past the
            # lease (3 s) and the beat after it, so every node is reaped.
            wait_until(lambda: time.monotonic() - paused > 4.5, what="the pause")
        finally:
            redis_server.resume()
        resumed = time.monotonic()
        for peer in (ann, bob, carol, other):
            assert peer.read_until_any(*WHOLE_WALLS)[-1] == f"WALL * {MISSED}"
        whole = time.monotonic() - resumed
        print(f"\nRedis paused past the lease: split told after {told:.2f} s; whole again {whole:.2f} s "
              f"after the resume")
        assert told < SPLIT_BOUND, "the link was down since Redis last answered"
        # The later claim is renamed: its own node hears the rename and then
        # the earlier carol; the other node never knew Carol, and hears Carol-2 come.
        for peer in (bob, other):
            assert "RENAME Carol Carol-2" in peer.read_until_line("JOIN carol"), peer.heard
        for peer in (ann, carol):
            peer.read_until_line("JOIN Carol-2")
        room = wait_room([ann, bob, carol, other], ["ann", "bob", "carol", "Carol-2"], ordered=False)
        assert_no_duplicate_nicks(room)
        assert sender_nick(other) == "Carol-2"
        assert sender_nick(carol) == "carol"
        other.send("SAY who am I?")
        for peer in (ann, bob, carol, other):
            assert peer.read_until("SAY ")[-1] == "SAY Carol-2 who am I?"
        for peer in (ann, bob, carol, other):
            assert peer.heard.count(SPLIT_WALL) == 1, peer.heard
        for peer in (carol, other):  # logged in during the split: told after their WHO
            assert peer.heard[peer.heard.index(SPLIT_WALL) - 1].startswith("OK WHO "), peer.heard


# --- 200 users over two nodes ------------------------------------------------------------


USERS = 200


class SpreadCrowd(Crowd):
    """tests/test_e2e_load.py's crowd, its clients dealt over several nodes."""

    def __init__(self, servers: Sequence[RunningServer]) -> None:
        super().__init__(servers[0].host, servers[0].port)
        self.servers = servers

    def connect(self, count: int, batch: int = 25) -> None:
        for start in range(0, count, batch):
            new = range(start, min(start + batch, count))
            for index in new:
                server = self.servers[index % len(self.servers)]
                sock = socket.create_connection((server.host, server.port), timeout=DEADLINE)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.selector.register(sock, selectors.EVENT_READ, index)
                self.socks.append(sock)
                self.lines.append([])
                self._pending.append(b"")
                self.closed.append(False)
            self.pump(lambda: all(self.lines[i] for i in new), "HELLO for every connection")  # noqa: B023 -- pump runs now

    def log_everyone_in(self) -> None:
        """Every NICK at once; wait until each user knows all the others,
        from its WHO reply or a JOIN after it."""
        for index in range(USERS):
            self.send(index, f"NICK {crowd_nick(index)}")
        everyone = {crowd_nick(index) for index in range(USERS)}

        def knows_everyone(index: int) -> bool:
            known: set[str] = set()
            for line in self.lines[index]:
                if line.startswith(("USERS ", "JOIN ")):
                    known.update(line.split()[1:])
            return known == everyone

        pending = set(range(USERS))

        def all_know() -> bool:
            pending.difference_update([i for i in list(pending) if knows_everyone(i)])
            return not pending

        self.pump(all_know, f"{USERS} logins heard on both nodes")


def crowd_nick(index: int) -> str:
    return f"user{index:03d}"


@pytest.fixture
def spread_crowd(nodes: Nodes) -> Iterator[SpreadCrowd]:
    crowd = SpreadCrowd([nodes(), nodes()])
    yield crowd
    crowd.close()


class TestCrowdOnTwoNodes:
    def test_two_hundred_users_on_two_nodes_hear_every_line_in_one_order(
            self, spread_crowd: SpreadCrowd) -> None:
        """200 users, 100 on each of two nodes, each send 5 lines at once: every user hears all 1000,
        each sender's in order, in one order everywhere."""
        crowd, burst = spread_crowd, 5
        crowd.connect(USERS)
        crowd.log_everyone_in()
        marks = [len(lines) for lines in crowd.lines]
        for index in range(USERS):
            crowd.send(index, *(f"SAY {n}" for n in range(burst)))

        def said(index: int) -> list[str]:
            return crowd.lines[index][marks[index]:]

        crowd.pump(lambda: all(len(said(i)) >= USERS * burst for i in range(USERS)),
                   f"{USERS * burst} SAY lines at every client")
        first = said(0)
        assert len(first) == USERS * burst
        heard: dict[str, list[int]] = {}
        for line in first:
            verb, sender, number = line.split(" ")
            assert verb == "SAY"
            heard.setdefault(sender, []).append(int(number))
        assert heard == {crowd_nick(i): list(range(burst)) for i in range(USERS)}
        for index in range(USERS):
            assert said(index) == first, f"user {index} heard another order"
        assert not any(crowd.closed)


# --- starting and stopping ---------------------------------------------------------------


class TestStartAndStop:
    def test_no_reachable_redis_is_one_line_and_status_1(self) -> None:
        """chatd --redis at a port where nothing listens exits with status 1 and one line saying it
        cannot reach Redis."""
        url = f"redis://127.0.0.1:{free_port()}/0"
        result = subprocess.run(
            [*chatd_command(), "--listen", "tcp:0:interface=127.0.0.1", "--redis", url],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"chatd: cannot reach Redis at {url}: "), result.stderr
        assert "listening on" not in result.stdout

    @pytest.mark.skipif(sys.platform != "linux",
                        reason="only Linux spreads connections over SO_REUSEPORT sockets")
    def test_reuse_port_nodes_share_one_port_and_one_room(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """Two --reuse-port --redis nodes on one port both take connections, and their users are one room."""
        holder = bind_reuse_port(TCPEndpoint(port=0, interface="127.0.0.1", backlog=None, ipv6=False))
        port = holder.getsockname()[1]
        try:
            servers = [nodes("--reuse-port", "--port", str(port), "--host", "127.0.0.1",
                             listen=(), listeners=1) for _ in range(2)]
        finally:
            holder.close()  # or it takes its share of the connections
        users = [log_in(connect, servers[0], f"u{n}") for n in range(40)]
        local_ports = {user.sock.getsockname()[1] for user in users}

        def taken_by(server: RunningServer) -> set[int]:
            return {int(p) for p in re.findall(r"connection from 127\.0\.0\.1:(\d+)", server.log())}

        wait_until(lambda: local_ports <= taken_by(servers[0]) | taken_by(servers[1]),
                   what="both logs naming every connection")
        shares = [len(local_ports & taken_by(server)) for server in servers]
        assert all(shares) and sum(shares) == len(users), shares
        wait_room(users, [f"u{n}" for n in range(40)])
        users[0].send("SAY one room")
        for user in users:
            assert user.read_until("SAY ")[-1] == "SAY u0 one room"

    def test_sigterm_parts_its_users_and_frees_their_nicks_at_once(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """SIGTERM of a node: its users get BYE, the other node's users hear PART ... server shutting
        down, and the nicks can be taken at once."""
        first, leaving = nodes(), nodes()
        ann = log_in(connect, first, "ann")
        bob, bea = log_in(connect, leaving, "bob"), log_in(connect, leaving, "bea")
        wait_room([ann, bob, bea], ["ann", "bob", "bea"])
        stopped = time.monotonic()
        leaving.process.send_signal(signal.SIGTERM)
        for peer in (bob, bea):
            assert peer.read_until("BYE ")[-1] == f"BYE {SHUTDOWN}"
        wait_parts(ann, ["bob", "bea"], SHUTDOWN)
        log_in(connect, first, "bob")
        log_in(connect, first, "bea")
        took = time.monotonic() - stopped
        print(f"\nSIGTERM: nicks free again {took:.2f} s after the signal")
        assert took < 3, "freed by the leave, not by the lease running out"
        assert leaving.process.wait(10) == 0
        assert wait_room([ann], ["ann", "bob", "bea"])

    def test_sigterm_walls_only_its_own_connections(
            self, nodes: Nodes, connect: Callable[..., Peer]) -> None:
        """SIGTERM of a node: its own connections get WALL * server shutting down and then BYE
        (protocol section 7); the other nodes' users get only the PARTs."""
        first, leaving = nodes(), nodes()
        ann = log_in(connect, first, "ann")
        bob = log_in(connect, leaving, "bob")
        stranger = connect(leaving)
        wait_room([ann, bob, stranger], ["ann", "bob"])
        leaving.process.send_signal(signal.SIGTERM)
        lines = ann.read_until_line(f"PART bob {SHUTDOWN}")
        assert f"WALL * {SHUTDOWN}" not in lines, lines
        for peer in (bob, stranger):
            assert peer.lines_until_eof() == [f"WALL * {SHUTDOWN}", f"BYE {SHUTDOWN}"]

