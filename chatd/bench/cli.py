"""``chatd-bench``: the command line, the worker fleet, and the report.

The parent process does no network I/O beyond one probe connection per
transport (and the ``--prefill`` client): it starts ``--workers`` processes,
each holding a share of the clients on its own uvloop, walks them through
the phases described in ``chatd.bench.worker``, and adds up what they
report.  See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import string
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from time import monotonic_ns
from typing import Any

from chatd import __version__
from chatd.argtypes import non_negative_int, positive_float, positive_int, remote_port
from chatd.bench import stats
from chatd.bench.blocking import connect
from chatd.bench.client import MIN_PAYLOAD
from chatd.bench.prefill import PrefillFailed, prefill
from chatd.bench.websocket import WebSocketError, WsAddress, parse_address
from chatd.bench.worker import WorkerSpec, worker_main
from chatd.wire import DEFAULT_PORT

START_DELAY_NS = 200_000_000  # time for every worker to hear "start" before it
FD_SLACK = 64


class BenchError(Exception):
    """Ends the run with one line on stderr and exit status 1."""


# --- command line -------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd-bench",
        description="Load-test a chatd server (or anything speaking its protocol): log N "
                    "clients in, have S of them SAY, and report throughput, loss, order "
                    "and latency; or time a login storm; or measure memory per idle client.",
        epilog="Method and figures: docs/performance.md.",
    )
    parser.add_argument("--version", action="version", version=f"chatd-bench {__version__}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=remote_port, default=DEFAULT_PORT,
                        help=f"the server's TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--sender-port", type=remote_port, metavar="PORT",
                        help="traffic over TCP: the S senders connect to this port on --host, "
                             "every other client to --port (two nodes of one room: the latency "
                             "is then from one node to the other, so no sender is a probe)")
    web = parser.add_argument_group(
        "WebSocket (chatd --web)",
        "Clients can speak protocol v1 over chatd's WebSocket door instead of raw TCP, in "
        "every mode; extra idle members over either transport can fill the room beside them.")
    web.add_argument("--ws", "--web-port", dest="ws", metavar="URL|PORT",
                     help="where the WebSocket is: ws://HOST:PORT/PATH, or a port for "
                          "ws://--host:PORT/ws; the clients connect there (as with --transport ws) "
                          "unless --transport tcp says otherwise")
    web.add_argument("--transport", choices=("tcp", "ws"),
                     help="how the N clients connect: tcp to --host/--port, or ws to --ws "
                          "(default: ws if --ws is given, else tcp)")
    web.add_argument("--idle-ws", type=non_negative_int, default=0, metavar="M",
                     help="M more members over the WebSocket (--ws): they log in with the N, "
                          "count in the room every client waits to hear, never send, and are "
                          "left out of the checks; their deliveries are reported apart")
    web.add_argument("--idle-tcp", type=non_negative_int, default=0, metavar="M",
                     help="the same, M more idle members over TCP (to compare a room of the "
                          "same size with --idle-ws)")
    parser.add_argument("--mode", choices=("traffic", "login", "idle"), default="traffic",
                        help="traffic: SAY load (default); login: a login storm, every client "
                             "connecting and sending NICK at once; idle: hold N logged-in "
                             "clients for --duration and report server RSS per connection")
    parser.add_argument("--idle", dest="mode", action="store_const", const="idle",
                        help="the same as --mode idle")
    parser.add_argument("--clients", "-n", type=positive_int, default=100, metavar="N")
    parser.add_argument("--senders", "-s", type=int, default=10, metavar="S",
                        help="how many of the N clients SAY (default 10)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--window", "-w", type=positive_int, metavar="W",
                      help="closed loop: each sender keeps at most W of its own lines "
                           "un-echoed (default 4)")
    pace.add_argument("--rate", "-r", type=positive_float, metavar="R",
                      help="open loop: each sender sends R lines per second")
    parser.add_argument("--duration", "-t", type=positive_float, default=10.0, metavar="T",
                        help="seconds of sending (traffic) or of holding (idle); default 10")
    parser.add_argument("--payload-size", type=int, default=64, metavar="B",
                        help=f"bytes of SAY text, at least {MIN_PAYLOAD} (default 64)")
    parser.add_argument("--history-request", type=non_negative_int, metavar="N",
                        help="protocol 1.1: each client sends HISTORY N as soon as it is "
                             "logged in, and counts as logged in only once OK HISTORY has "
                             "come too; the report counts the HIST lines")
    parser.add_argument("--prefill", type=non_negative_int, default=0, metavar="K",
                        help="before the run, one client says K lines and quits, so the "
                             "server's history is full when the clients come (default 0)")
    parser.add_argument("--server-pid", type=int, metavar="PID",
                        help="the server's pid (same machine): report its CPU use, and RSS "
                             "before/after (from /proc)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="client processes (default: CPU count)")
    parser.add_argument("--connect-concurrency", type=positive_int, default=100, metavar="C",
                        help="TCP handshakes (connect to HELLO) in flight at once, all workers "
                             "together (default 100)")
    parser.add_argument("--ramp", type=float, default=None, metavar="PER_S",
                        help="start at most PER_S connections a second (default: 2000 for "
                             "traffic and idle, unlimited for login)")
    parser.add_argument("--probes", type=int, default=32,
                        help="receivers, spread over the login order, that time every SAY "
                             "they read; latency is sampled from these (default 32)")
    parser.add_argument("--check", choices=("all", "probes"), default="all",
                        help="who parses every SAY line for per-sender order: all receivers "
                             "(default), or only the probes and the senders while the others "
                             "count lines with bytes.count (lighter, for heavy loads)")
    parser.add_argument("--connect-timeout", type=positive_float, default=10.0, metavar="S",
                        help="per connection, TCP connect to HELLO (default 10)")
    parser.add_argument("--login-timeout", type=positive_float, default=120.0, metavar="S",
                        help="for all N to log in and hear each other (default 120)")
    parser.add_argument("--drain-timeout", type=positive_float, default=10.0, metavar="S",
                        help="after sending stops, how long to wait for lines still due "
                             "(default 10)")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        help="use the plain asyncio loop in the workers")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.mode == "traffic":
        if not 1 <= args.senders <= min(args.clients, 99999):
            parser.error("--senders must be between 1 and --clients")
        if args.payload_size < MIN_PAYLOAD:
            parser.error(f"--payload-size must be at least {MIN_PAYLOAD}")
        if args.window is None and args.rate is None:
            args.window = 4
    else:
        args.senders = 0
    if args.ramp is None:
        args.ramp = 0.0 if args.mode == "login" else 2000.0
    if args.transport is None:
        args.transport = "ws" if args.ws else "tcp"
    args.ws_address = None
    if args.ws:
        try:
            args.ws_address = parse_address(args.ws, args.host)
        except ValueError as exc:
            parser.error(f"--ws: {exc}")
    elif args.transport == "ws" or args.idle_ws:
        parser.error("--transport ws and --idle-ws need --ws URL|PORT (where the WebSocket is)")
    if args.sender_port is not None and (args.mode != "traffic" or args.transport != "tcp"):
        parser.error("--sender-port is for traffic mode over TCP")
    args.members = args.clients + args.idle_ws + args.idle_tcp
    args.workers = min(args.workers, args.members)


# --- resources and the probe connection ---------------------------------------


def raise_fd_limit(per_process: int) -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; refuse a run that cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if per_process + FD_SLACK > soft:
        raise BenchError(f"{per_process} connections per worker need more than the {soft} open "
                         f"files allowed; use more --workers or raise the limit (ulimit -n)")
    return soft


def probe(host: str, port: int, timeout: float, ws: WsAddress | None = None) -> str:
    """Connect once (over TCP, or to the WebSocket ``ws``) and read the
    greeting: a clear error now beats N errors later."""
    where = ws.url if ws is not None else f"{host}:{port}"
    try:
        deadline = time.monotonic() + timeout
        stream = connect(host, port, ws, timeout)
        try:
            data = b""
            while b"\n" not in data and time.monotonic() < deadline and len(data) < 4096:
                chunk = stream.recv(max(0.01, deadline - time.monotonic()))
                if not chunk:
                    break
                data += chunk
        finally:
            stream.close()
    except ConnectionRefusedError:
        raise BenchError(f"cannot connect to {where}: connection refused") from None
    except TimeoutError:
        raise BenchError(f"no greeting from {where} within {timeout:g} s") from None
    except OSError as exc:
        raise BenchError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    except WebSocketError as exc:
        raise BenchError(f"{where}: {exc}") from None
    line = data.split(b"\n")[0].rstrip(b"\r").decode("utf-8", "replace")
    if not line.startswith("HELLO "):
        raise BenchError(f"{where} does not speak chatd's protocol (first line {line[:60]!r})")
    return line


# --- the fleet ----------------------------------------------------------------


class Progress:
    """The live line on stderr, when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False
        self.last = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.25:
            self.last = now
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


class Fleet:
    """The worker processes and the pipes to them."""

    def __init__(self, specs: list[WorkerSpec], progress: Progress) -> None:
        context = multiprocessing.get_context("fork")  # nothing is running yet: fork is safe
        self.progress = progress
        self.status: list[dict[str, int]] = [{} for _ in specs]
        self.label: Callable[[Fleet], str] | None = None  # the progress line, if any
        self.inbox: dict[str, dict[int, Any]] = {}
        self.conns: list[Connection] = []
        self.processes = []
        for spec in specs:
            parent_end, child_end = context.Pipe()
            process = context.Process(target=worker_main, args=(child_end, spec), daemon=True)
            process.start()
            child_end.close()
            self.conns.append(parent_end)
            self.processes.append(process)

    def send_all(self, *message: Any) -> None:
        for conn in self.conns:
            try:
                conn.send(message)
            except OSError:
                raise BenchError("a worker process died") from None

    def total(self, key: str) -> int:
        return sum(status.get(key, 0) for status in self.status)

    def _pump(self, timeout: float) -> None:
        """Read what the workers sent within ``timeout``; keep it by kind."""
        for ready in wait(self.conns, timeout=max(0.0, timeout)):
            index = self.conns.index(ready)  # type: ignore[arg-type]  # wait() returns what it was given
            conn = self.conns[index]
            try:
                kind, body = conn.recv()
            except (EOFError, OSError):
                code = self.processes[index].exitcode
                raise BenchError(f"worker {index} died (exit status {code})") from None
            if kind == "error":
                raise BenchError(body)
            if kind == "progress":
                self.status[index] = body
            else:
                self.inbox.setdefault(kind, {})[index] = body
        if self.label is not None:
            self.progress.show(self.label(self))

    def gather(self, want: str, deadline_ns: int, what: str) -> list[Any]:
        """One ``want`` report from every worker, before the deadline."""
        got = self.inbox.setdefault(want, {})
        while len(got) < len(self.conns):
            remaining = (deadline_ns - monotonic_ns()) / 1e9
            if remaining <= 0:
                raise BenchError(f"timed out waiting for {what}")
            self._pump(min(remaining, 0.25))
        return [got[index] for index in range(len(self.conns))]

    def wait_until(self, t_ns: int) -> None:
        while (remaining := (t_ns - monotonic_ns()) / 1e9) > 0:
            self._pump(min(remaining, 0.25))

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("exit",))
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1)
        for conn in self.conns:
            conn.close()


# --- the run ------------------------------------------------------------------


def _spread_indices(count: int, among: int) -> list[int]:
    """``count`` indices spread evenly over ``range(among)``."""
    return sorted({i * among // count for i in range(count)}) if count else []


def build_specs(args: argparse.Namespace, tag: str) -> list[WorkerSpec]:
    """One spec per worker.  The N clients are indices 0..N-1; the extras
    (``--idle-ws``, then ``--idle-tcp``) follow, and log in after them."""
    n, workers, members = args.clients, args.workers, args.members
    senders = {index: sender for sender, index in enumerate(_spread_indices(args.senders, n))}
    if args.sender_port is None:
        probes = frozenset(_spread_indices(min(max(args.probes, 0), n), n))
    else:  # the probes time what crosses from --sender-port to --port: none is a sender
        others = [i for i in range(n) if i not in senders]
        probes = frozenset(others[j] for j in
                           _spread_indices(min(max(args.probes, 0), len(others)), len(others)))
    slots = max(1, args.connect_concurrency // workers)
    lifetime = args.login_timeout + args.duration + args.drain_timeout + 60
    specs = []
    for w in range(workers):
        indices = tuple(range(w, members, workers))  # round robin: every worker logs in all along
        specs.append(WorkerSpec(
            host=args.host, port=args.port, sender_port=args.sender_port, n_total=members,
            tag=tag, indices=indices,
            senders={i: s for i, s in senders.items() if i % workers == w},
            probes=frozenset(i for i in probes if i % workers == w),
            window=args.window, rate=args.rate, payload_size=args.payload_size,
            duration=args.duration, slots=slots, ramp=args.ramp,
            connect_timeout=args.connect_timeout, login_timeout=args.login_timeout,
            lifetime=lifetime, use_uvloop=args.uvloop, count_only=args.check == "probes",
            history_request=args.history_request,
            transport=args.transport, ws=args.ws_address,
            n_measured=n if members > n else None, n_idle_ws=args.idle_ws,
        ))
    return specs


def _probe_count(args: argparse.Namespace) -> int:
    """How many probes ``build_specs`` picks (with ``--sender-port``, none is a sender)."""
    probes: int = args.probes
    receivers: int = args.clients - (args.senders if args.sender_port is not None else 0)
    return min(probes, receivers)


def _cpu_percent(seconds: float | None, wall_s: float) -> float | None:
    return None if seconds is None or wall_s <= 0 else round(100 * seconds / wall_s, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit(-(-args.members // args.workers))
    ws = args.ws_address
    hello = probe(args.host, args.port, args.connect_timeout,
                  ws if args.transport == "ws" else None)
    if args.transport == "tcp" and args.idle_ws:
        probe(args.host, args.port, args.connect_timeout, ws)
    if args.transport == "ws" and args.idle_tcp:
        probe(args.host, args.port, args.connect_timeout)
    if args.sender_port is not None:
        probe(args.host, args.sender_port, args.connect_timeout)
    pid = args.server_pid
    if pid is not None and stats.read_rss_kib(pid) is None:
        raise BenchError(f"cannot read /proc/{pid}/status: no such process here")
    result: dict[str, Any] = {
        "tool": f"chatd-bench {__version__}", "mode": args.mode,
        "server": ws.url if args.transport == "ws" else f"{args.host}:{args.port}",
        "transport": args.transport, "websocket": ws.url if ws is not None else None,
        "hello": hello, "clients": args.clients, "idle_ws": args.idle_ws,
        "idle_tcp": args.idle_tcp, "members": args.members, "workers": args.workers,
        "uvloop": args.uvloop,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
        "loadavg_at_start": round(os.getloadavg()[0], 2),
    }
    if args.sender_port is not None:
        result["sender_port"] = args.sender_port
    tag = "".join(random.choices(string.ascii_lowercase, k=3))
    if args.prefill:
        try:
            took = prefill(args.host, args.port, lines=args.prefill, nick=f"b{tag}fill",
                           payload_size=args.payload_size, timeout=args.login_timeout,
                           ws=ws if args.transport == "ws" else None)
        except PrefillFailed as exc:
            raise BenchError(f"prefill: {exc}") from None
        result["prefill"] = {"lines": args.prefill, "s": round(took, 3)}
    rss_before = stats.read_rss_kib(pid) if pid else None
    specs = build_specs(args, tag)
    fleet = Fleet(specs, Progress(sys.stderr.isatty() and not args.quiet))
    try:
        result["login"] = _login_phase(args, fleet, pid)
        if args.mode == "traffic":
            result["traffic"] = _traffic_phase(args, fleet, pid)
        elif args.mode == "idle":
            fleet.label = lambda f: f"idle: holding {args.members} connections"
            fleet.wait_until(monotonic_ns() + int(args.duration * 1e9))
            fleet.send_all("count")
            counted = fleet.gather("counted", monotonic_ns() + 5_000_000_000,
                                   "the workers' count after the hold")
            result["idle"] = {
                "hold_s": args.duration,
                "connections_lost": sum(c["lost"] for c in counted),
                "lost_reason": next((c["lost_reason"] for c in counted if c["lost_reason"]), None),
                "pings_answered": sum(c["pings"] for c in counted),
            }
        if pid:
            rss_after = stats.read_rss_kib(pid)
            result["server_rss"] = {
                "before_kib": rss_before, "after_kib": rss_after, "connections": args.members,
                "kib_per_connection": (round((rss_after - rss_before) / args.members, 2)
                                       if rss_after and rss_before else None),
            }
    finally:
        fleet.progress.clear()
        fleet.close()
    return result


def _login_phase(args: argparse.Namespace, fleet: Fleet, pid: int | None) -> dict[str, Any]:
    n = args.members
    done = f"heard all {n}" + (" and had HISTORY answered" if args.history_request is not None
                               else "")
    fleet.label = lambda f: (f"login: {f.total('logged_in')}/{n} logged in, "
                             f"{f.total('complete')}/{n} {done}")
    t_go = monotonic_ns() + START_DELAY_NS
    cpu0 = stats.read_cpu_seconds(pid) if pid else None
    machine0 = stats.read_machine_jiffies()
    fleet.send_all("go", t_go)
    settled = fleet.gather("settled", t_go + int((args.login_timeout + 5) * 1e9),
                           f"all {n} clients to log in (--login-timeout)")
    cpu1 = stats.read_cpu_seconds(pid) if pid else None
    machine1 = stats.read_machine_jiffies()
    timed_out = any(s["timed_out"] for s in settled)
    if timed_out and args.mode == "traffic":
        raise BenchError(f"login not finished after {args.login_timeout:g} s: "
                         f"{sum(s['logged_in'] for s in settled)}/{n} logged in, "
                         f"{sum(s['complete'] for s in settled)}/{n} {done} "
                         f"(--login-timeout)")
    t_done = max(s["t_last_complete"] for s in settled)
    wall = (t_done - t_go) / 1e9 if not timed_out else args.login_timeout
    return {
        "complete": not timed_out,
        "logged_in": sum(s["logged_in"] for s in settled),
        "heard_all": sum(s["heard_all"] for s in settled),
        "settled": sum(s["complete"] for s in settled),
        "ramp_per_s": args.ramp or None, "connect_concurrency": args.connect_concurrency,
        "all_logged_in_s": (round((max(s["t_last_login"] for s in settled) - t_go) / 1e9, 3)
                            if sum(s["logged_in"] for s in settled) == n else None),
        "storm_s": round(wall, 3) if not timed_out else None,
        "connect": stats.spread([x for s in settled for x in s["connect_ns"]]),
        "login": stats.spread([x for s in settled for x in s["login_ns"]]),
        "joins_heard_after_who": sum(s["join_lines"] for s in settled),
        "history": None if args.history_request is None else {
            "requested_lines": args.history_request,
            "answered": sum(s["history_answered"] for s in settled),
            "hist_lines": sum(s["hist_lines"] for s in settled),
            "ok_history_total": sum(s["history_count"] for s in settled),
            "reply": stats.spread([x for s in settled for x in s["history_ns"]]),
        },
        "tool_cpu_percent": _cpu_percent(sum(s["cpu_s"] for s in settled), wall),
        "server_cpu_percent": _cpu_percent(cpu1 - cpu0 if cpu0 is not None and cpu1 is not None
                                           else None, wall),
        "machine_busy_percent": stats.busy_percent(machine0, machine1),
    }


def _traffic_phase(args: argparse.Namespace, fleet: Fleet, pid: int | None) -> dict[str, Any]:
    duration_ns = int(args.duration * 1e9)
    t_start = monotonic_ns() + START_DELAY_NS
    t_stop = t_start + duration_ns
    fleet.send_all("start", t_start, t_stop)
    fleet.label = lambda f: f"traffic: sent {f.total('sent'):,}, delivered {f.total('received'):,}"
    fleet.wait_until(t_start)
    cpu0 = stats.read_cpu_seconds(pid) if pid else None
    machine0 = stats.read_machine_jiffies()
    fleet.wait_until(t_stop)
    cpu1 = stats.read_cpu_seconds(pid) if pid else None
    machine1 = stats.read_machine_jiffies()
    stopped = fleet.gather("stopped", t_stop + 5_000_000_000, "the senders to stop")
    sent = sum(s["sent"] for s in stopped)
    drain_deadline = monotonic_ns() + int(args.drain_timeout * 1e9)
    fleet.send_all("expect", sent, drain_deadline)
    done = fleet.gather("done", drain_deadline + 5_000_000_000, "the drain to end")
    expected = sent * args.clients
    received = sum(d["received"] for d in done)
    at_stop = sum(d["received_at_stop"] for d in done)
    last = max(d["last_delivery"] for d in done)
    latency = stats.merge(d["latency"] for d in done)
    extras = args.idle_ws + args.idle_tcp
    extra_at_stop = sum(d["extra_received_at_stop"] for d in done)
    return {
        "senders": args.senders, "window": args.window, "rate_per_sender": args.rate,
        "order_checked_by": "all receivers" if args.check == "all" else
                            f"{_probe_count(args)} probes and the senders",
        "payload_size": args.payload_size, "duration_s": args.duration,
        "sent": sent, "sent_per_s": round(sent / args.duration, 1),
        "expected": expected, "received": received,
        "lost": max(0, expected - received), "extra": max(0, received - expected),
        "loss_ratio": round(max(0, expected - received) / expected, 6) if expected else 0.0,
        "reordered": sum(d["reordered"] for d in done),
        "errors": sum(d["errors"] for d in done),
        "connections_lost": sum(d["lost"] for d in done),
        "deliveries_per_s": round(at_stop / args.duration, 1),
        "idle_members": extras,
        "idle_deliveries_per_s": round(extra_at_stop / args.duration, 1) if extras else None,
        "room_deliveries_per_s": round((at_stop + extra_at_stop) / args.duration, 1),
        "drain_s": round(max(0, last - t_stop) / 1e9, 3),
        "latency": {**stats.summarize(latency, max(d["latency_max_us"] for d in done) or None),
                    "probes": _probe_count(args)},
        "tool_cpu_percent": _cpu_percent(sum(s["cpu_s"] for s in stopped), args.duration),
        "server_cpu_percent": _cpu_percent(cpu1 - cpu0 if cpu0 is not None and cpu1 is not None
                                           else None, args.duration),
        "machine_busy_percent": stats.busy_percent(machine0, machine1),
    }


# --- output -------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def render(result: dict[str, Any]) -> str:
    """The human-readable report."""
    over = " over WebSocket" if result["transport"] == "ws" else ""
    extras = [f"{result[key]} idle over {name}" for key, name in
              (("idle_ws", "WebSocket"), ("idle_tcp", "TCP")) if result[key]]
    senders = f", senders to port {result['sender_port']}" if "sender_port" in result else ""
    lines = [f"{result['tool']} against {result['server']}{senders} ({result['hello'][:60]}), "
             f"{result['clients']} clients{over}"
             f"{' and ' + ' and '.join(extras) + ' beside them' if extras else ''}"
             f" in {result['workers']} workers{' on uvloop' if result['uvloop'] else ''}"]
    filled = result.get("prefill")
    if filled:
        lines.append(f"prefill:   {filled['lines']:,} lines said (and the sayer gone) in "
                     f"{filled['s']:.2f} s before the clients came")
    login = result["login"]
    n = result["members"]
    history = login.get("history")
    also = " and had HISTORY answered" if history else ""
    if login["complete"]:
        storm = (f"all logged in after {login['all_logged_in_s']:.2f} s, all heard all {n}{also} "
                 f"after {login['storm_s']:.2f} s")
    else:
        storm = (f"INCOMPLETE after --login-timeout: {login['logged_in']}/{n} logged in, "
                 f"{login['heard_all']}/{n} heard all {n}, {login['settled']}/{n} done")
    lines.append(
        f"login:     {storm}; connect p50 "
        f"{_ms(login['connect']['p50_ms'])} p99 {_ms(login['connect']['p99_ms'])}; login p50 "
        f"{_ms(login['login']['p50_ms'])} p99 {_ms(login['login']['p99_ms'])} "
        f"(cpu: server {_pct(login['server_cpu_percent'])}, tool {_pct(login['tool_cpu_percent'])}, "
        f"machine {_pct(login['machine_busy_percent'])} busy)")
    if history:
        reply = history["reply"]
        lines.append(
            f"history:   HISTORY {history['requested_lines']} answered for "
            f"{history['answered']:,}/{n}: {history['hist_lines']:,} HIST lines (OK HISTORY "
            f"counts add up to {history['ok_history_total']:,}); reply p50 "
            f"{_ms(reply['p50_ms'])} p99 {_ms(reply['p99_ms'])}")
    traffic = result.get("traffic")
    if traffic:
        pace = (f"window {traffic['window']}" if traffic["window"]
                else f"{traffic['rate_per_sender']:g} lines/s each")
        lat = traffic["latency"]
        lines += [
            f"traffic:   {traffic['senders']} senders, {pace}, {traffic['payload_size']} B, "
            f"{traffic['duration_s']:g} s: sent {traffic['sent']:,} lines "
            f"({traffic['sent_per_s']:,.0f}/s)",
            f"delivered: {traffic['deliveries_per_s']:,.0f} deliveries/s while sending; "
            f"expected {traffic['expected']:,}, received {traffic['received']:,}, lost "
            f"{traffic['lost']:,} ({100 * traffic['loss_ratio']:.3f}%), reordered "
            f"{traffic['reordered']:,}, ERR lines {traffic['errors']:,}, drain "
            f"{traffic['drain_s']:.2f} s",
            f"latency:   p50 {_ms(lat['p50_ms'])}  p90 {_ms(lat['p90_ms'])}  p99 "
            f"{_ms(lat['p99_ms'])}  max {_ms(lat['max_ms'])}  ({lat['samples']:,} samples from "
            f"{lat['probes']} probe receivers)",
            *([f"idle:      {traffic['idle_members']} idle members read "
               f"{traffic['idle_deliveries_per_s']:,.0f} deliveries/s besides (not checked); "
               f"{traffic['room_deliveries_per_s']:,.0f}/s in the whole room"]
              if traffic.get("idle_members") else []),
            f"cpu:       server {_pct(traffic['server_cpu_percent'])} of a core, chatd-bench "
            f"{_pct(traffic['tool_cpu_percent'])} (all workers) while sending; the machine's "
            f"{result['cpus']} CPUs were {_pct(traffic['machine_busy_percent'])} busy",
        ]
    idle = result.get("idle")
    if idle:
        lost = (f"{idle['connections_lost']} connections lost ({idle['lost_reason']})"
                if idle["connections_lost"] else "no connection lost")
        lines.append(f"idle:      held {result['members']} connections for {idle['hold_s']:g} s: "
                     f"{lost}, {idle['pings_answered']} pings answered")
    rss = result.get("server_rss")
    if rss:
        lines.append(f"memory:    server RSS {rss['before_kib']} KiB before, {rss['after_kib']} "
                     f"KiB after: {rss['kib_per_connection']} KiB per connection")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"chatd-bench: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("chatd-bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    print(json.dumps(result, indent=1) if args.json else render(result), flush=True)
    if not result["login"]["complete"]:
        print(f"chatd-bench: login storm not finished within {args.login_timeout:g} s",
              file=sys.stderr)
        raise SystemExit(1)
