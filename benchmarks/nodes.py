"""What sharing the room through Redis costs chatd (``--redis``,
``--reuse-port``), in rotating rounds on 127.0.0.1 with a fresh
redis-server and fresh chatd processes per run.

    .venv/bin/python benchmarks/nodes.py            # the full figures (about 7 minutes)
    .venv/bin/python benchmarks/nodes.py --quick    # a smoke run; its numbers mean nothing

Every run starts its own ``redis-server`` (no persistence, a free loopback
port) when it needs one, then its chatd nodes (``--no-flood-limit``, each
with a ``--metrics`` port of its own), and stops them all by pid whatever
happens.  Two measurements, each repeated ``--rounds`` times; within a
round the variants run back to back and their order rotates from one round
to the next, so the machine's drift falls on all alike:

* **traffic**: chatd-bench's traffic mode, ``--clients`` members (default
  1000), 10 senders, window 1 (closed loop), ``--check probes`` (the load
  of the anchors' scenario B), against four set-ups:

  - *1 node*: one chatd without Redis;
  - *1 node + Redis*: one chatd with ``--redis``, so every line goes through
    the Redis stream.  Targets: >= 0.85x the deliveries/s of *1 node*, and a
    p99 latency at most 2 ms above it;
  - *2 nodes on 1 port*: two chatd ``--redis --reuse-port`` on one port, the
    kernel spreading the clients over both; the probes land on either node,
    so the p99 mixes lines heard on the sender's node and on the other;
  - *2 nodes apart*: two chatd ``--redis`` on ports of their own, the
    senders on node 1 and every other client on node 2 (chatd-bench
    ``--sender-port``): the p99 of a line from one node to the other.

* **storm**: chatd-bench's idle mode with no ramp (a login storm, then a
  ``--hold`` of the connections), ``--storm-clients`` (default 10,000),
  against *1 node* and *2 nodes on 1 port*: the time for all to log in, and
  each node's RSS per connection.

CPU is read for every process of a run (each chatd node and redis-server;
utime+stime from ``/proc/<pid>/stat``) every ``--sample-every`` seconds
(0.25), together with each node's ``/metrics`` counters and Redis's ``INFO
stats``.  The traffic window is found from the counters: from the first
sample after the first SAY reached a node (all clients logged in) to the
last one before the last; the CPU per delivery is the CPU all processes used
in it over the deliveries the nodes counted in it.  Redis's own figures
(CPU seconds per 1000 room events, commands per second, the room events per
second one Redis core would allow at that cost) come from the same window.
The storm's RSS is read at the last sample with every connection open, less
the RSS before chatd-bench started, over that node's connections.

Ratios are medians of the per-round ratios.  chatd picks Twisted's asyncio
reactor under ``--redis``; ``--chatd-arg=--reactor=asyncio`` puts *1 node*
on it too, to see the bus's cost alone.  On a 2-core machine both nodes,
redis-server and chatd-bench share the two cores: the two-node figures say
what the cluster costs, not how far it scales.  Method: docs/scaling.md,
"Measured".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import get as _get  # benchmarks/figures.py
from figures import median as _median
from figures import num as _num
from figures import ratio as _ratio
from figures import times as _x
from run import ROOT, Server, script  # benchmarks/run.py

from chatd.bench.stats import read_cpu_seconds, read_rss_kib

TRAFFIC_TARGET = 0.85  # 1 node with Redis / without, deliveries/s, at least
P99_SLACK_MS = 2.0  # 1 node with Redis: p99 at most this above without
LISTEN = "tcp:{port}:interface=127.0.0.1:backlog=1024"
METRICS = "tcp:0:interface=127.0.0.1"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
_SERVING_METRICS = re.compile(rb"serving /metrics on 127\.0\.0\.1:(\d+)")
_METRIC = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", re.MULTILINE)


# --- the processes ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_call(port: int, *words: str, timeout: float = 2.0) -> str:
    """One command over a fresh connection: a simple, integer or bulk reply as text."""
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        sock.sendall(f"*{len(words)}\r\n".encode() + b"".join(
            b"$%d\r\n%s\r\n" % (len(word.encode()), word.encode()) for word in words))
        data = b""
        while True:
            head, found, rest = data.partition(b"\r\n")
            if found:
                if head[:1] in (b"+", b":"):
                    return head[1:].decode()
                if head[:1] == b"-":
                    raise OSError(f"redis: {head[1:].decode()}")
                size = int(head[1:])  # a bulk string
                if len(rest) >= size:
                    return rest[:size].decode()
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("redis closed the connection")
            data += chunk


@dataclass
class Redis:
    """A fresh redis-server of one run, on a free loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    dir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def info(self) -> dict[str, str]:
        text = redis_call(self.port, "INFO", "stats")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_redis() -> Redis:
    """redis-server without persistence; answered PING within 10 s, or gone."""
    for _attempt in range(3):  # a free port may be taken before redis binds it
        port, folder = free_port(), tempfile.mkdtemp(prefix="bench-redis-")
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", folder, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        redis = Redis(process, port, folder)
        deadline = time.monotonic() + 10
        try:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if redis_call(port, "PING") == "PONG":
                        return redis
                except OSError:
                    time.sleep(0.02)
        except BaseException:  # interrupted: this one is not anyone's to stop yet
            redis.stop()
            raise
        redis.stop()
    raise SystemExit(f"nodes.py: {REDIS_SERVER} did not start")


@dataclass
class Node:
    """One chatd process, where its clients connect and its /metrics port."""

    server: Server
    metrics: int

    @property
    def pid(self) -> int:
        return self.server.process.pid


def start_node(chatd_args: list[str], port: int = 0) -> Node:
    """A fresh chatd listening on ``port`` (0: a free one) and on a /metrics port."""
    command = script("chatd") + ["--listen", LISTEN.format(port=port), "--metrics", METRICS,
                                 *chatd_args]
    log = Path(tempfile.mkstemp(prefix="bench-chatd-redis-", suffix=".log")[1])
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while not (_LISTENING.search(out) and _SERVING_METRICS.search(out)):
            remaining = deadline - time.monotonic()
            chunk = (os.read(process.stdout.fileno(), 4096)
                     if remaining > 0 and selector.select(remaining) else b"")
            if not chunk:
                raise SystemExit(f"nodes.py: chatd {' '.join(chatd_args)} did not start: "
                                 f"{log.read_text(errors='replace')[-500:]}")
            out += chunk
    except BaseException:  # did not start, or interrupted: not anyone's to stop yet
        process.kill()
        process.wait(5)
        log.unlink(missing_ok=True)
        raise
    finally:
        selector.close()
    tcp, metrics = _LISTENING.search(out), _SERVING_METRICS.search(out)
    assert tcp is not None and metrics is not None
    return Node(Server("chatd", process, int(tcp.group(1)), log), int(metrics.group(1)))


@dataclass(frozen=True)
class Setup:
    """Where a run's clients go: one node or two, on Redis or not."""

    label: str
    redis: bool
    nodes: int = 1
    apart: bool = False  # two nodes on ports of their own: senders on 1, the rest on 2


@dataclass
class Cluster:
    """The processes of one run: its redis-server, if any, and its chatd nodes."""

    setup: Setup
    redis: Redis | None = None
    nodes: list[Node] = field(default_factory=list)

    def bench_args(self) -> list[str]:
        """chatd-bench's --port (and --sender-port); --server-pid is node 1's."""
        where = ["--port", str(self.nodes[-1].server.port)]
        if self.setup.apart:
            where += ["--sender-port", str(self.nodes[0].server.port)]
        return [*where, "--server-pid", str(self.nodes[0].pid)]

    def pids(self) -> list[int]:
        """The nodes' pids, then redis-server's."""
        return [node.pid for node in self.nodes] + ([self.redis.process.pid] if self.redis else [])


@contextmanager
def cluster(setup: Setup, chatd_args: list[str]) -> Iterator[Cluster]:
    """Start a set-up's processes; stop every one by pid (bounded) on the way out."""
    running = Cluster(setup)
    try:
        args = list(chatd_args)
        if setup.redis:
            running.redis = start_redis()
            args += ["--redis", running.redis.url]
        if setup.nodes == 1:
            running.nodes.append(start_node(args))
        elif setup.apart:
            running.nodes += [start_node(args), start_node(args)]
        else:
            first = start_node([*args, "--reuse-port"])
            running.nodes.append(first)
            running.nodes.append(start_node([*args, "--reuse-port"], first.server.port))
        yield running
    finally:
        stop_nodes(running.nodes)
        if running.redis is not None:
            running.redis.stop()


def stop_nodes(nodes: list[Node], grace: float = 5.0) -> None:
    """SIGTERM to every node at once, then SIGKILL to any still busy after ``grace``
    seconds (after a storm each may have 10,000 PARTs to send first: no matter)."""
    for node in nodes:
        if node.server.process.poll() is None:
            node.server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for node in nodes:
        try:
            node.server.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            node.server.process.kill()
            node.server.process.wait(5)
        node.server.log.unlink(missing_ok=True)


# --- sampling: CPU, RSS, the nodes' counters and Redis's, together ------------------


def scrape(port: int, timeout: float = 2.0) -> dict[str, float] | None:
    """A node's /metrics as {name or name{labels}: value}; None if it did not answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return {name + (labels or ""): float(value) for name, labels, value in _METRIC.findall(text)}


def sample(running: Cluster) -> dict[str, Any]:
    """One reading: the counters first, then at once every process's CPU and RSS."""
    counters = [scrape(node.metrics) for node in running.nodes]
    info: dict[str, str] | None = None
    if running.redis is not None:
        try:
            info = running.redis.info()
        except OSError:
            info = None
    return {"t": time.monotonic(), "counters": counters,
            "cpu": [read_cpu_seconds(pid) for pid in running.pids()],
            "rss": [read_rss_kib(node.pid) for node in running.nodes],
            "redis_commands": int(info["total_commands_processed"]) if info else None,
            "redis_ops_per_s": int(info["instantaneous_ops_per_sec"]) if info else None}


def run_sampled(running: Cluster, bench_args: list[str], timeout: float, every: float
                ) -> dict[str, Any]:
    """chatd-bench against the cluster, sampled every ``every`` s; its JSON and the samples."""
    command = script("chatd-bench") + [*running.bench_args(), "--json", "--quiet", *bench_args]
    samples = [sample(running)]
    overdue = False
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        bench = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 cwd=ROOT)
        try:
            deadline = time.monotonic() + timeout
            while bench.poll() is None:
                if time.monotonic() >= deadline:
                    overdue = True
                    break
                try:
                    bench.wait(max(0.0, samples[-1]["t"] + every - time.monotonic()))
                except subprocess.TimeoutExpired:
                    samples.append(sample(running))
        finally:
            if bench.poll() is None:  # over time, or we are interrupted
                bench.send_signal(signal.SIGINT)
                try:
                    bench.wait(10)
                except subprocess.TimeoutExpired:
                    bench.kill()
                    bench.wait(5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    try:
        result: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        result = {"error": f"chatd-bench ran over {timeout:.0f} s" if overdue else
                  stderr.strip() or f"chatd-bench exited {bench.returncode}"}
    if bench.returncode and stderr.strip() and "error" not in result:
        result["warning"] = stderr.strip()
    result["samples"] = samples
    result["pids"] = running.pids()
    return result


def _total(s: dict[str, Any], name: str) -> float | None:
    values = [c.get(name) if c else None for c in s["counters"]]
    return None if None in values else sum(v for v in values if v is not None)


def _usable(s: dict[str, Any], redis: bool) -> bool:
    return (None not in s["counters"] and None not in s["cpu"]
            and (not redis or s["redis_commands"] is not None))


def traffic_window(result: dict[str, Any], clients: int, redis: bool) -> dict[str, Any] | None:
    """The figures of the samples inside the sending: CPU per delivery of all
    processes, and Redis's own; None without two such samples."""
    samples = [s for s in result.get("samples", []) if _usable(s, redis)]
    said = [(s, (_total(s, "chatd_lines_in_total") or 0) - (_total(s, "chatd_logins_total") or 0))
            for s in samples]
    # SAY lines so far: every line in but the NICKs, once all of them logged in.
    logged = [i for i, (s, _) in enumerate(said) if (_total(s, "chatd_logins_total") or 0) >= clients]
    if not logged:
        return None
    begun = [i for i in range(logged[0], len(said)) if said[i][1] > 0]
    rising = [i for i in range(1, len(said)) if said[i][1] > said[i - 1][1]]
    if not begun or not rising or rising[-1] - 1 <= begun[0]:
        return None
    (a, said_a), (b, said_b) = said[begun[0]], said[rising[-1] - 1]
    seconds = b["t"] - a["t"]
    deliveries = (_total(b, "chatd_deliveries_total") or 0) - (_total(a, "chatd_deliveries_total") or 0)
    cpu = [after - before for before, after in zip(a["cpu"], b["cpu"], strict=True)]
    nodes = len(a["counters"])
    chatd_cpu, redis_cpu = sum(cpu[:nodes]), (cpu[nodes] if redis else None)
    events = said_b - said_a
    inside = [s for s, _ in said[begun[0]:rising[-1]]]
    figures: dict[str, Any] = {
        "seconds": round(seconds, 3), "deliveries": deliveries, "events": events,
        "events_per_s": events / seconds if seconds else None,
        "cpu_s": cpu, "cpu_percent": [100 * c / seconds for c in cpu] if seconds else None,
        "us_per_delivery": 1e6 * sum(cpu) / deliveries if deliveries else None,
        "chatd_us_per_delivery": 1e6 * chatd_cpu / deliveries if deliveries else None,
        "clients_per_node": [max(int(s["counters"][n].get('chatd_connections{transport="tcp"}', 0))
                                 for s in inside) for n in range(nodes)],
    }
    if redis and redis_cpu is not None:
        commands = b["redis_commands"] - a["redis_commands"]
        figures.update({
            "redis_us_per_delivery": 1e6 * redis_cpu / deliveries if deliveries else None,
            "redis_cpu_s_per_1000_events": 1000 * redis_cpu / events if events else None,
            "redis_cpu_percent": 100 * redis_cpu / seconds if seconds else None,
            "redis_ops_per_s": commands / seconds if seconds else None,
            "redis_ops_per_event": commands / events if events else None,
            "redis_instantaneous_ops_per_s": _median([s["redis_ops_per_s"] for s in inside]),
            # Room events/s at which Redis would use a whole core at this cost.
            "events_per_s_at_one_redis_core": events / redis_cpu if redis_cpu > 0 else None,
        })
    return figures


def storm_window(result: dict[str, Any], clients: int, redis: bool) -> dict[str, Any] | None:
    """RSS per connection of each node, at the last sample with all connected."""
    samples = result.get("samples", [])
    if not samples or not _usable(samples[0], redis) or None in samples[0]["rss"]:
        return None  # the reading before chatd-bench started is the baseline
    held = [s for s in samples if _usable(s, redis)
            and (_total(s, 'chatd_connections{transport="tcp"}') or 0) >= clients]
    if not held or None in held[-1]["rss"]:
        return None
    before, full = samples[0], held[-1]
    connections = [int(c['chatd_connections{transport="tcp"}']) for c in full["counters"]]
    grown = [after - was for was, after in zip(before["rss"], full["rss"], strict=True)]
    nodes = len(connections)
    cpu = [after - was for was, after in zip(before["cpu"], full["cpu"], strict=True)]
    return {
        "connections": connections,
        "kib_per_connection": [g / n if n else None for g, n in zip(grown, connections, strict=True)],
        "kib_per_connection_all": sum(grown) / sum(connections),
        "chatd_cpu_s": sum(cpu[:nodes]),
        "redis_cpu_s_per_1000_logins": 1000 * cpu[nodes] / clients if redis else None,
        "redis_commands_per_login": ((full["redis_commands"] - before["redis_commands"]) / clients
                                     if redis else None),
    }


# --- the measurements ---------------------------------------------------------------


ONE = Setup("1 node", redis=False)
ONE_REDIS = Setup("1 node + Redis", redis=True)
TWO = Setup("2 nodes on 1 port", redis=True, nodes=2)
APART = Setup("2 nodes apart", redis=True, nodes=2, apart=True)


@dataclass
class Measurement:
    """One measurement's set-ups and every round's results, by label."""

    key: str
    title: str
    setups: tuple[Setup, ...]
    bench_args: tuple[str, ...]
    clients: int
    timeout: float
    rounds: list[dict[str, dict[str, Any]]] = field(default_factory=list)

    def order(self, number: int) -> tuple[Setup, ...]:
        shift = (number - 1) % len(self.setups)
        return self.setups[shift:] + self.setups[:shift]


def measurements(args: argparse.Namespace) -> list[Measurement]:
    traffic = ("--clients", str(args.clients), "--senders", str(args.senders), "--window",
               str(args.window), "--check", "probes", "--duration", str(args.duration),
               *args.bench_arg)
    storm = ("--mode", "idle", "--ramp", "0", "--clients", str(args.storm_clients),
             "--duration", str(args.hold), "--login-timeout", str(args.login_timeout),
             *args.bench_arg)
    chosen = [
        Measurement("traffic", f"traffic, {args.clients:,} members, {args.senders} senders, "
                               f"window {args.window}, {args.duration:g} s",
                    (ONE, ONE_REDIS, TWO, APART), traffic, args.clients, args.duration + 180),
        Measurement("storm", f"login storm of {args.storm_clients:,}, held {args.hold:g} s",
                    (ONE, TWO), storm, args.storm_clients,
                    args.login_timeout + args.hold + 120),
    ]
    return [item for item in chosen if item.key in args.only]


def run_rounds(chosen: list[Measurement], args: argparse.Namespace, chatd_args: list[str]) -> None:
    for number in range(1, args.rounds + 1):
        for item in chosen:
            got = {}
            for setup in item.order(number):
                print(f"- round {number}: {item.key}, {setup.label} ...", file=sys.stderr,
                      flush=True)
                with cluster(setup, chatd_args) as running:
                    result = run_sampled(running, list(item.bench_args), item.timeout,
                                         args.sample_every)
                window = traffic_window if item.key == "traffic" else storm_window
                result["window"] = window(result, item.clients, setup.redis)
                got[setup.label] = result
            item.rounds.append(got)


# --- the tables ---------------------------------------------------------------------


def _both(values: list[float | None], digits: int = 2) -> str:
    return " / ".join(_num(v, digits) for v in values)


def _diff(a: float | None, b: float | None) -> float | None:
    return b - a if a is not None and b is not None else None


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} ms"


@dataclass
class Table:
    """Markdown rows, bold median rows, and the columns kept for the medians."""

    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)

    def keep(self, name: str, value: float | None) -> float | None:
        self.columns.setdefault(name, []).append(value)
        return value

    def median(self, name: str) -> float | None:
        return _median(self.columns.get(name, []))

    def render(self, title: str, medians: list[list[str]], notes: Sequence[str] = ()) -> list[str]:
        out = [f"### {title}", "", "| " + " | ".join(self.head) + " |",
               "|---|---|" + "---:|" * (len(self.head) - 2),
               *("| " + " | ".join(row) + " |" for row in [*self.rows, *medians])]
        return out + ["", *(f"- {note}" for note in notes)] if notes else out


def traffic_figures(result: dict[str, Any]) -> dict[str, Any]:
    window = result.get("window") or {}
    dps = _get(result, "traffic", "deliveries_per_s")
    node1 = _get(result, "traffic", "server_cpu_percent")
    return {"dps": dps, "p50": _get(result, "traffic", "latency", "p50_ms"),
            "p99": _get(result, "traffic", "latency", "p99_ms"),
            "us": window.get("us_per_delivery"), "chatd_us": window.get("chatd_us_per_delivery"),
            "redis_us": window.get("redis_us_per_delivery"),
            "node1_us": node1 * 1e4 / dps if node1 is not None and dps else None,
            **{key: window.get(key) for key in (
                "events_per_s", "redis_cpu_s_per_1000_events", "redis_cpu_percent",
                "redis_ops_per_s", "redis_ops_per_event", "redis_instantaneous_ops_per_s",
                "events_per_s_at_one_redis_core")}}


def notes(item: Measurement) -> list[str]:
    """What makes a round's figures untrustworthy, and the split of the clients."""
    said = []
    for number, got in enumerate(item.rounds, 1):
        for label, result in got.items():
            where = f"round {number}, {label}"
            if "error" in result:
                said.append(f"{where} FAILED: {result['error']}")
                continue
            if result.get("warning"):
                said.append(f"{where}: {result['warning']}")
            if result.get("window") is None:
                said.append(f"{where}: no sampled window (too short a run, or a node did not "
                            f"answer /metrics)")
            for what, path in (("deliveries lost", ("traffic", "lost")),
                               ("reordered", ("traffic", "reordered")),
                               ("connections lost", ("traffic", "connections_lost")),
                               ("connections lost during the hold", ("idle", "connections_lost"))):
                if _get(result, *path):
                    said.append(f"{where}: {_get(result, *path):,} {what}")
            split = _get(result, "window", "clients_per_node") or _get(result, "window", "connections")
            if split and len(split) > 1:
                said.append(f"{where}: clients per node {' / '.join(f'{n:,}' for n in split)}")
    return said


def one_node_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    t = Table(["round", "order", "deliveries/s, without / with Redis", "with ÷ without",
               "p99 ms, without / with", "p99 with − without"])
    for number, got in enumerate(item.rounds, 1):
        a, b = traffic_figures(got[ONE.label]), traffic_figures(got[ONE_REDIS.label])
        ratio = t.keep("ratio", _ratio(a["dps"], b["dps"]))
        slower = t.keep("p99_diff", _diff(a["p99"], b["p99"]))
        for name in ("dps", "p99"):
            t.keep(f"a_{name}", a[name])
            t.keep(f"b_{name}", b[name])
        t.rows.append([str(number), ", ".join(s.label for s in item.order(number)),
                       _both([a["dps"], b["dps"]]), _x(ratio), _both([a["p99"], b["p99"]]),
                       _signed(slower)])
    m = t.median
    rows = t.render(f"{item.title}: one node, without and with Redis", [[
        "**median**", "", _both([m("a_dps"), m("b_dps")]), f"**{_x(m('ratio'))}**",
        _both([m("a_p99"), m("b_p99")]), f"**{_signed(m('p99_diff'))}**"]])
    return rows, {"ratio": m("ratio"), "p99_diff": m("p99_diff"), "p99_without": m("a_p99"),
                  "p99_with": m("b_p99")}


def cluster_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    t = Table(["round", "set-up", "deliveries/s", "p50 / p99 ms", "CPU µs/delivery, all processes",
               "... chatd nodes / redis-server", "chatd-bench's node-1 µs/delivery (check)"])
    names = ("dps", "p50", "p99", "us", "chatd_us", "redis_us", "node1_us")
    for number, got in enumerate(item.rounds, 1):
        for setup in item.setups:
            f = traffic_figures(got[setup.label])
            for name in names:
                t.keep(f"{setup.label} {name}", f[name])
            t.rows.append([str(number), setup.label, _num(f["dps"]), _both([f["p50"], f["p99"]]),
                           _num(f["us"], 3), _both([f["chatd_us"], f["redis_us"]], 3),
                           _num(f["node1_us"], 3)])
        one, two = traffic_figures(got[ONE.label]), traffic_figures(got[TWO.label])
        t.keep("two_ratio", _ratio(one["dps"], two["dps"]))
        t.keep("two_cpu_ratio", _ratio(one["us"], two["us"]))
    m = {name: {s.label: t.median(f"{s.label} {name}") for s in item.setups} for name in names}
    medians = [["**median**", s.label, _num(m["dps"][s.label]),
                _both([m["p50"][s.label], m["p99"][s.label]]), f"**{_num(m['us'][s.label], 3)}**",
                _both([m["chatd_us"][s.label], m["redis_us"][s.label]], 3),
                _num(m["node1_us"][s.label], 3)] for s in item.setups]
    rows = t.render(f"{item.title}: every set-up; CPU of the chatd nodes and redis-server in "
                    f"the sampled window", medians, [
        f"{TWO.label} ÷ {ONE.label} (medians of the per-round ratios): deliveries/s "
        f"**{_x(t.median('two_ratio'))}**, CPU µs per delivery **{_x(t.median('two_cpu_ratio'))}**",
        f"{APART.label}: the senders on node 1, every other client and every probe on node 2, so "
        f"its p99 is the latency from one node to the other",
        "check: chatd-bench's own figure, node 1's CPU over its exact sending time ÷ the "
        "deliveries it counted; it should match the sampled figure where node 1 is all there is"])
    return rows, {"two_dps": m["dps"][TWO.label], "two_p99": m["p99"][TWO.label],
                  "two_us": m["us"][TWO.label], "one_us": m["us"][ONE.label],
                  "apart_p99": m["p99"][APART.label], "two_ratio": t.median("two_ratio")}


def redis_table(item: Measurement) -> list[str]:
    setups = [s for s in item.setups if s.redis]
    t = Table(["round", "set-up", "room events/s", "redis-server CPU % of a core",
               "redis CPU s per 1000 events", "Redis commands/s (counted; INFO's instantaneous)",
               "commands per event", "events/s at one Redis core (estimate)"])
    names = ("events_per_s", "redis_cpu_percent", "redis_cpu_s_per_1000_events", "redis_ops_per_s",
             "redis_instantaneous_ops_per_s", "redis_ops_per_event", "events_per_s_at_one_redis_core")
    for number, got in enumerate(item.rounds, 1):
        for setup in setups:
            f = traffic_figures(got[setup.label])
            for name in names:
                t.keep(f"{setup.label} {name}", f[name])
            t.rows.append([str(number), setup.label, _num(f["events_per_s"]),
                           _num(f["redis_cpu_percent"], 1),
                           _num(f["redis_cpu_s_per_1000_events"], 4),
                           _both([f["redis_ops_per_s"], f["redis_instantaneous_ops_per_s"]], 0),
                           _num(f["redis_ops_per_event"]),
                           _num(f["events_per_s_at_one_redis_core"])])

    def m(setup: Setup, name: str) -> float | None:
        return t.median(f"{setup.label} {name}")

    medians = [["**median**", s.label, _num(m(s, "events_per_s")), _num(m(s, "redis_cpu_percent"), 1),
                f"**{_num(m(s, 'redis_cpu_s_per_1000_events'), 4)}**",
                _both([m(s, "redis_ops_per_s"), m(s, "redis_instantaneous_ops_per_s")], 0),
                _num(m(s, "redis_ops_per_event")), f"**{_num(m(s, 'events_per_s_at_one_redis_core'))}**"]
               for s in setups]
    return t.render(f"{item.title}: what Redis does (raw figures, to see what it caps)", medians, [
        "A room event is one SAY said (delivered to every member, on every node). Commands are "
        "INFO's total_commands_processed, which counts those the chatd functions run inside an "
        "FCALL too; the instantaneous figure is INFO's own recent average.",
        "The last column is the events over redis-server's CPU seconds: the event rate that "
        "would keep one Redis core busy at this cost, if nothing else gave out first."])


def storm_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    t = Table(["round", "set-up", "all logged in s", "storm s (all heard all)",
               "KiB/connection, each node", "KiB/connection, all", "connections per node",
               "chatd CPU s (storm + hold)", "redis CPU s per 1000 logins",
               "chatd-bench's node-1 KiB/connection (check)"])
    for number, got in enumerate(item.rounds, 1):
        for setup in item.setups:
            result = got[setup.label]
            w = result.get("window") or {}
            kib = w.get("kib_per_connection") or []
            logged, storm = _get(result, "login", "all_logged_in_s"), _get(result, "login", "storm_s")
            before, after = _get(result, "server_rss", "before_kib"), _get(result, "server_rss", "after_kib")
            first = (w.get("connections") or [None])[0]
            check = (after - before) / first if before and after and first else None
            for name, value in (("logged", logged), ("storm", storm),
                                ("all", w.get("kib_per_connection_all")),
                                *((f"kib{n}", v) for n, v in enumerate(kib))):
                t.keep(f"{setup.label} {name}", value)
            t.rows.append([str(number), setup.label, _num(logged), _num(storm), _both(kib),
                           _num(w.get("kib_per_connection_all")),
                           " / ".join(f"{n:,}" for n in w.get("connections") or []),
                           _num(w.get("chatd_cpu_s")), _num(w.get("redis_cpu_s_per_1000_logins"), 4),
                           _num(check)])

    def m(setup: Setup, name: str) -> float | None:
        return t.median(f"{setup.label} {name}")

    medians = [["**median**", s.label, f"**{_num(m(s, 'logged'))}**", _num(m(s, "storm")),
                _both([m(s, f"kib{n}") for n in range(s.nodes)]), f"**{_num(m(s, 'all'))}**",
                "", "", "", ""] for s in item.setups]
    rows = t.render(item.title, medians, [
        "RSS per connection: each node's RSS at the last sample with every connection open, less "
        "its RSS before chatd-bench started, over the connections it held then",
        *(f"round {number} ran {', '.join(s.label for s in item.order(number))}"
          for number in range(1, len(item.rounds) + 1))])
    return rows, {"logged": m(TWO, "logged"), "one_logged": m(ONE, "logged"),
                  "kib0": m(TWO, "kib0"), "kib1": m(TWO, "kib1"), "one_kib": m(ONE, "kib0")}


def verdicts(one: dict[str, float | None] | None, both: dict[str, float | None] | None,
             storm: dict[str, float | None] | None, args: argparse.Namespace) -> list[str]:
    def row(what: str, wanted: str, measured: str, met: bool | None) -> str:
        return f"| {what} | {wanted} | {measured} | {'-' if met is None else 'yes' if met else '**no**'} |"

    out = ["", "| figure | wanted | measured (median) | met? |", "|---|---|---:|---|"]
    if one is not None:
        ratio, diff = one["ratio"], one["p99_diff"]
        out += [row("1 node: deliveries/s with Redis ÷ without", f">= {TRAFFIC_TARGET}x", _x(ratio),
                    ratio is not None and ratio >= TRAFFIC_TARGET),
                row("1 node: p99 with Redis − without", f"<= +{P99_SLACK_MS:g} ms",
                    f"{_signed(diff)} ({_num(one['p99_with'])} against {_num(one['p99_without'])})",
                    diff is not None and diff <= P99_SLACK_MS)]
    if both is not None:
        out += [row(f"{TWO.label}: deliveries/s (÷ 1 node)", "", f"{_num(both['two_dps'])} "
                    f"({_x(both['two_ratio'])})", None),
                row(f"{TWO.label}: p99", "", f"{_num(both['two_p99'])} ms", None),
                row(f"{TWO.label}: CPU µs per delivery, both nodes + redis-server", "",
                    f"{_num(both['two_us'], 3)} (1 node without Redis: {_num(both['one_us'], 3)})",
                    None),
                row("senders on node 1, receivers on node 2: p99", "",
                    f"{_num(both['apart_p99'])} ms", None)]
    if storm is not None:
        out += [row(f"{args.storm_clients:,} logins over {TWO.label}: all logged in", "",
                    f"{_num(storm['logged'])} s (1 node: {_num(storm['one_logged'])} s)", None),
                row("... RSS per connection, node 1 / node 2", "",
                    f"{_both([storm['kib0'], storm['kib1']])} KiB "
                    f"(1 node: {_num(storm['one_kib'])} KiB)", None)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 60 members for 2 s, a 300-client storm held 1 s, "
                             "2 rounds (about a minute); the numbers mean nothing")
    parser.add_argument("--only", action="append", choices=("traffic", "storm"),
                        help="run only this measurement (repeatable; default both)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (default 3)")
    parser.add_argument("--clients", type=int, default=1000,
                        help="members in the traffic runs (default 1000)")
    parser.add_argument("--senders", type=int, default=10, help="(default 10)")
    parser.add_argument("--window", type=int, default=1,
                        help="closed-loop window per sender (default 1)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sending per traffic run (default 10)")
    parser.add_argument("--storm-clients", type=int, default=10_000,
                        help="logins per storm (default 10,000)")
    parser.add_argument("--hold", type=float, default=3.0,
                        help="seconds the storm's connections are held, RSS read (default 3)")
    parser.add_argument("--login-timeout", type=float, default=120.0,
                        help="chatd-bench --login-timeout for the storms (default 120)")
    parser.add_argument("--sample-every", type=float, default=0.25,
                        help="seconds between readings of CPU, RSS and counters (default 0.25)")
    parser.add_argument("--chatd-arg", action="append", default=[], metavar="ARG",
                        help="extra chatd argument for every node (repeatable; "
                             "use --chatd-arg=--flag)")
    parser.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                        help="extra chatd-bench argument for every run (repeatable; "
                             "use --bench-arg=--workers=2)")
    parser.add_argument("--json-out", type=Path, help="write every raw result here")
    args = parser.parse_args()
    if args.quick:
        args.clients = min(args.clients, 60)
        args.duration = min(args.duration, 2.0)
        args.storm_clients = min(args.storm_clients, 300)
        args.hold = min(args.hold, 1.0)
        args.rounds = min(args.rounds, 2)
    args.only = args.only or ["traffic", "storm"]
    if not Path(REDIS_SERVER).exists():
        raise SystemExit(f"nodes.py: no {REDIS_SERVER} (Debian's redis-server package)")
    chatd_args = ["--no-flood-limit", *args.chatd_arg]
    chosen = measurements(args)
    # A SIGTERM ends the run as Ctrl-C does: through the finally blocks that stop every process.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    print(f"# chatd on Redis against chatd alone, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.rounds} rounds, the order rotating; chatd {' '.join(chatd_args)}", flush=True)
    try:
        run_rounds(chosen, args, chatd_args)
    except KeyboardInterrupt:  # every process of the run was stopped on the way out
        raise SystemExit("nodes.py: interrupted") from None
    one = both = storm = None
    for item in chosen:
        if item.key == "traffic":
            rows, one = one_node_table(item)
            more, both = cluster_table(item)
            rows += ["", *more, "", *redis_table(item)]
        else:
            rows, storm = storm_table(item)
        said = notes(item)
        print("\n" + "\n".join(rows + ([""] if said and rows[-1].startswith("|") else [])
                                + [f"- {note}" for note in said]))
    print("\n".join(verdicts(one, both, storm, args)))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "args": {k: v for k, v in vars(args).items() if k != "json_out"},
            "results": {item.key: item.rounds for item in chosen},
        }, indent=1))
    if any("error" in result for item in chosen for got in item.rounds for result in got.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
