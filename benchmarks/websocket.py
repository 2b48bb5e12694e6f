"""What chatd's WebSocket door costs against its TCP door (issue 9), in
alternating rounds on 127.0.0.1 with a fresh server per run.

    .venv/bin/python benchmarks/websocket.py            # the full figures (about 6 minutes)
    .venv/bin/python benchmarks/websocket.py --quick    # a smoke run; its numbers mean nothing

Every run gets a fresh ``chatd --no-flood-limit`` with a TCP listener and a
``--web`` listener (both ephemeral, backlog 1024), so only the clients'
transport changes; it is stopped by its pid.  Three measurements, each
repeated ``--rounds`` times; within a round the variants run back to back,
and their order rotates from one round to the next (A B, B A, ... or
A B C, B C A, C A B), so the machine's drift falls on all alike:

* **traffic**: chatd-bench's traffic mode, ``--clients`` members (default
  1000), 10 senders, window 1 (closed loop), ``--check probes``, over TCP
  and over WebSocket.  Target: WebSocket >= 0.5x TCP's deliveries/s.
* **idle**: chatd-bench's idle mode, ``--idle-clients`` logged-in members
  (default 5000, at 1000 logins/s, held 5 s), over TCP and over WebSocket:
  server RSS per connection.  Target: WebSocket <= 8 KiB.
* **beside**: the TCP traffic run alone, with ``--beside`` idle TCP members
  (default 1000) and with as many idle WebSocket members in the room
  (chatd-bench ``--idle-ws``/``--idle-tcp``).  Target: TCP deliveries/s with
  the WebSocket members >= 0.97x without.  Each member receives every line,
  so the room with 1000 more members does about twice the fan-out whatever
  the door: the same-size room with idle TCP members is the comparison that
  shows what the WebSocket members themselves cost the TCP ones.

Ratios are medians of the per-round ratios: a round's runs share its
conditions, medians taken apart do not.  Method: docs/performance.md,
"WebSocket (the web door)".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import get as _get  # benchmarks/figures.py
from figures import median as _median
from figures import num as _num
from figures import ratio as _ratio
from figures import times as _x
from run import ROOT, Scenario, Server, run_bench, script  # benchmarks/run.py

TRAFFIC_TARGET = 0.5  # WebSocket / TCP deliveries/s, at least
IDLE_TARGET_KIB = 8.0  # RSS per idle logged-in WebSocket connection, at most
BESIDE_TARGET = 0.97  # TCP deliveries/s with idle WebSocket members / without, at least
LISTEN = "tcp:0:interface=127.0.0.1:backlog=1024"
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
_SERVING = re.compile(rb"serving the page on http://127\.0\.0\.1:(\d+)/")
WEB = "{web}"  # in a variant's chatd-bench arguments: the run's web port


def start_server(chatd_args: list[str]) -> tuple[Server, int]:
    """A fresh chatd with a TCP and a web listener; the server and its web port."""
    command = script("chatd") + ["--listen", LISTEN, "--web", LISTEN, *chatd_args]
    log = Path(tempfile.mkstemp(prefix="bench-chatd-web-", suffix=".log")[1])
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while not (_LISTENING.search(out) and _SERVING.search(out)):
            remaining = deadline - time.monotonic()
            chunk = (os.read(process.stdout.fileno(), 4096)
                     if remaining > 0 and selector.select(remaining) else b"")
            if not chunk:
                process.kill()
                process.wait(5)
                raise SystemExit(f"websocket.py: chatd --web did not start: "
                                 f"{log.read_text(errors='replace')[-500:]}")
            out += chunk
    finally:
        selector.close()
    tcp = _LISTENING.search(out)
    web = _SERVING.search(out)
    assert tcp is not None and web is not None
    return Server("chatd", process, int(tcp.group(1)), log), int(web.group(1))


@dataclass(frozen=True)
class Variant:
    """One side of a comparison: chatd-bench's arguments (``{web}`` is the web port)."""

    label: str
    bench_args: tuple[str, ...]


@dataclass
class Measurement:
    """One measurement's variants and every round's results, by label."""

    key: str
    title: str
    variants: tuple[Variant, ...]
    timeout: float
    rounds: list[dict[str, dict[str, Any]]] = field(default_factory=list)

    def results(self, label: str) -> list[dict[str, Any]]:
        return [got[label] for got in self.rounds]


def measurements(args: argparse.Namespace) -> list[Measurement]:
    traffic = ("--clients", str(args.clients), "--senders", str(args.senders), "--window", "1",
               "--check", "probes", "--duration", str(args.duration), *args.bench_arg)
    traffic_timeout = args.duration + 240
    idle = ("--idle", "--clients", str(args.idle_clients), "--ramp", str(args.idle_ramp),
            "--duration", str(args.idle_hold), "--login-timeout", str(args.login_timeout),
            *args.bench_arg)
    idle_timeout = args.idle_clients / args.idle_ramp + args.idle_hold + args.login_timeout + 60
    m = args.beside
    chosen = [
        Measurement("traffic", f"traffic, {args.clients:,} members, {args.senders} senders, "
                               f"window 1, {args.duration:g} s: TCP and WebSocket",
                    (Variant("TCP", traffic), Variant("WebSocket", (*traffic, "--ws", WEB))),
                    traffic_timeout),
        Measurement("idle", f"idle, {args.idle_clients:,} logged-in members (at "
                            f"{args.idle_ramp:g}/s, held {args.idle_hold:g} s): server RSS",
                    (Variant("TCP", idle), Variant("WebSocket", (*idle, "--ws", WEB))),
                    idle_timeout),
        Measurement("beside", f"TCP traffic, {args.clients:,} TCP members, {args.senders} "
                              f"senders, window 1, {args.duration:g} s, with {m:,} idle members "
                              f"beside them or not",
                    (Variant("alone", traffic),
                     Variant(f"+{m} TCP", (*traffic, "--idle-tcp", str(m))),
                     Variant(f"+{m} WS", (*traffic, "--ws", WEB, "--transport", "tcp",
                                          "--idle-ws", str(m)))),
                    traffic_timeout + 60),
    ]
    return [item for item in chosen if item.key in args.only]


def measure(variant: Variant, timeout: float, chatd_args: list[str]) -> dict[str, Any]:
    """One run against a fresh server, stopped (by pid, bounded) whatever happens."""
    server, web = start_server(chatd_args)
    try:
        bench_args = tuple(str(web) if arg == WEB else arg for arg in variant.bench_args)
        return run_bench(server, Scenario("websocket", variant.label, bench_args, timeout))
    finally:
        server.stop()


def run_rounds(chosen: list[Measurement], rounds: int, chatd_args: list[str]) -> None:
    for number in range(1, rounds + 1):
        for item in chosen:
            shift = (number - 1) % len(item.variants)
            order = item.variants[shift:] + item.variants[:shift]
            got = {}
            for variant in order:
                print(f"- round {number}: {item.key}, {variant.label} ...", file=sys.stderr,
                      flush=True)
                got[variant.label] = measure(variant, item.timeout, chatd_args)
            item.rounds.append(got)


# --- figures -----------------------------------------------------------------------


def _per_delivery(cpu_percent: float | None, per_s: float | None) -> float | None:
    """CPU µs per delivery from a CPU share (100 = a core) and deliveries/s."""
    return cpu_percent * 1e4 / per_s if cpu_percent is not None and per_s else None


def traffic_figures(result: dict[str, Any]) -> dict[str, Any]:
    dps = _get(result, "traffic", "deliveries_per_s")
    room = _get(result, "traffic", "room_deliveries_per_s") or dps
    server = _get(result, "traffic", "server_cpu_percent")
    tool = _get(result, "traffic", "tool_cpu_percent")
    return {"main": dps, "room": room, "p99": _get(result, "traffic", "latency", "p99_ms"),
            "server_cpu": server, "tool_cpu": tool,
            "server_us": _per_delivery(server, room), "tool_us": _per_delivery(tool, room),
            "lost": _get(result, "traffic", "lost")}


def idle_figures(result: dict[str, Any]) -> dict[str, Any]:
    return {"main": _get(result, "server_rss", "kib_per_connection"),
            "storm": _get(result, "login", "storm_s"),
            "lost": _get(result, "idle", "connections_lost")}


def problems(item: Measurement, got: dict[str, dict[str, Any]]) -> list[str]:
    """What makes a round's figures untrustworthy, in words."""
    said = []
    for label, result in got.items():
        if "error" in result:
            said.append(f"{label} FAILED: {result['error']}")
            continue
        if result.get("warning"):
            said.append(f"{label}: {result['warning']}")
        if item.key == "idle":
            lost = _get(result, "idle", "connections_lost")
            if lost:
                said.append(f"{label}: {lost:,} connections lost during the hold "
                            f"({_get(result, 'idle', 'lost_reason')})")
            continue
        figures = traffic_figures(result)
        if figures["lost"]:
            said.append(f"{label}: {figures['lost']:,} deliveries lost")
        if figures["server_cpu"] is not None and figures["server_cpu"] < 85:
            said.append(f"{label}: the server used {figures['server_cpu']:.0f}% of its core "
                        f"(chatd-bench {figures['tool_cpu'] or 0:.0f}% of "
                        f"{100 * (os.cpu_count() or 1)}%): the tool or the machine may have "
                        f"been the limit")
    return said


# --- the tables --------------------------------------------------------------------


def _both(values: list[float | None], digits: int = 2) -> str:
    return " / ".join(_num(v, digits) for v in values)


@dataclass
class Table:
    """Markdown rows, a bold median row, and the notes under them."""

    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def keep(self, name: str, value: float | None) -> float | None:
        self.columns.setdefault(name, []).append(value)
        return value

    def median(self, name: str) -> float | None:
        return _median(self.columns.get(name, []))

    def render(self, title: str, median_row: list[str]) -> list[str]:
        out = [f"### {title}", "", "| " + " | ".join(self.head) + " |",
               "|---|---|" + "---:|" * (len(self.head) - 2)]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        out.append("| " + " | ".join(median_row) + " |")
        return out + [""] + [f"- {note}" for note in self.notes]


def _order(item: Measurement, number: int) -> str:
    shift = (number - 1) % len(item.variants)
    return ", ".join(v.label for v in item.variants[shift:] + item.variants[:shift])


def traffic_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    table = Table(["round", "order", "deliveries/s, TCP", "deliveries/s, WebSocket", "ratio",
                   "p99 ms, TCP / WS", "server µs/delivery, TCP / WS",
                   "chatd-bench µs/delivery, TCP / WS", "CPU % server, tool: TCP / WS"])
    for number, got in enumerate(item.rounds, 1):
        tcp, ws = traffic_figures(got["TCP"]), traffic_figures(got["WebSocket"])
        ratio = table.keep("ratio", _ratio(tcp["main"], ws["main"]))
        for name in ("main", "p99", "server_us", "tool_us"):
            table.keep(f"tcp_{name}", tcp[name])
            table.keep(f"ws_{name}", ws[name])
        cpu = " / ".join(f"{_num(f['server_cpu'], 0)}, {_num(f['tool_cpu'], 0)}" for f in (tcp, ws))
        table.rows.append([str(number), _order(item, number), _num(tcp["main"]), _num(ws["main"]),
                           _x(ratio), _both([tcp["p99"], ws["p99"]]),
                           _both([tcp["server_us"], ws["server_us"]]),
                           _both([tcp["tool_us"], ws["tool_us"]]), cpu])
        table.notes += [f"round {number}: {text}" for text in problems(item, got)]
    m = table.median
    median_row = ["**median**", "", _num(m("tcp_main")), _num(m("ws_main")), f"**{_x(m('ratio'))}**",
                  _both([m("tcp_p99"), m("ws_p99")]), _both([m("tcp_server_us"), m("ws_server_us")]),
                  _both([m("tcp_tool_us"), m("ws_tool_us")]), ""]
    return table.render(item.title, median_row), {"ratio": m("ratio")}


def idle_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    table = Table(["round", "order", "KiB/connection, TCP", "KiB/connection, WebSocket",
                   "WS ÷ TCP", "login storm s, TCP / WS"])
    for number, got in enumerate(item.rounds, 1):
        tcp, ws = idle_figures(got["TCP"]), idle_figures(got["WebSocket"])
        table.keep("tcp", tcp["main"])
        table.keep("ws", ws["main"])
        ratio = table.keep("ratio", _ratio(tcp["main"], ws["main"]))
        table.rows.append([str(number), _order(item, number), _num(tcp["main"]), _num(ws["main"]),
                           _x(ratio), _both([tcp["storm"], ws["storm"]])])
        table.notes += [f"round {number}: {text}" for text in problems(item, got)]
    m = table.median
    median_row = ["**median**", "", _num(m("tcp")), f"**{_num(m('ws'))}**", _x(m("ratio")), ""]
    return table.render(item.title, median_row), {"ws": m("ws"), "tcp": m("tcp")}


def beside_table(item: Measurement) -> tuple[list[str], dict[str, float | None]]:
    alone, with_tcp, with_ws = (v.label for v in item.variants)
    table = Table(["round", "order", f"TCP deliveries/s: {alone} / {with_tcp} / {with_ws}",
                   f"{with_ws} ÷ {alone}", f"{with_ws} ÷ {with_tcp}",
                   "room deliveries/s (every member)", "server µs/delivery",
                   "p99 ms", "chatd-bench µs/delivery"])
    for number, got in enumerate(item.rounds, 1):
        figures = [traffic_figures(got[label]) for label in (alone, with_tcp, with_ws)]
        for label, f in zip(("alone", "tcp", "ws"), figures, strict=True):
            for name in ("main", "room", "server_us", "p99", "tool_us"):
                table.keep(f"{label}_{name}", f[name])
        vs_alone = table.keep("vs_alone", _ratio(figures[0]["main"], figures[2]["main"]))
        vs_tcp = table.keep("vs_tcp", _ratio(figures[1]["main"], figures[2]["main"]))
        table.rows.append([str(number), _order(item, number),
                           _both([f["main"] for f in figures]), _x(vs_alone), _x(vs_tcp),
                           *(_both([f[name] for f in figures])
                             for name in ("room", "server_us", "p99", "tool_us"))])
        table.notes += [f"round {number}: {text}" for text in problems(item, got)]
    m = table.median
    median_row = ["**median**", "", _both([m(f"{v}_main") for v in ("alone", "tcp", "ws")]),
                  f"**{_x(m('vs_alone'))}**", f"**{_x(m('vs_tcp'))}**",
                  *(_both([m(f"{v}_{name}") for v in ("alone", "tcp", "ws")])
                    for name in ("room", "server_us", "p99", "tool_us"))]
    return table.render(item.title, median_row), {"vs_alone": m("vs_alone"), "vs_tcp": m("vs_tcp")}


TABLES: dict[str, Callable[[Measurement], tuple[list[str], dict[str, float | None]]]] = {
    "traffic": traffic_table, "idle": idle_table, "beside": beside_table,
}


def verdicts(item: Measurement, figures: dict[str, float | None], args: argparse.Namespace
             ) -> list[str]:
    def row(what: str, wanted: str, measured: str, met: bool) -> str:
        return f"| {what} | {wanted} | {measured} | {'yes' if met else '**no**'} |"

    if item.key == "traffic":
        ratio = figures["ratio"]
        return [row(f"{args.clients:,} members: WebSocket ÷ TCP deliveries/s", f">= {TRAFFIC_TARGET}x",
                    _x(ratio), ratio is not None and ratio >= TRAFFIC_TARGET)]
    if item.key == "idle":
        ws, tcp = figures["ws"], figures["tcp"]
        return [row(f"RSS per idle logged-in WebSocket connection at {args.idle_clients:,}",
                    f"<= {IDLE_TARGET_KIB:g} KiB", f"{_num(ws)} KiB (TCP: {_num(tcp)} KiB)",
                    ws is not None and ws <= IDLE_TARGET_KIB)]
    vs_alone, vs_tcp = figures["vs_alone"], figures["vs_tcp"]
    return [
        row(f"TCP deliveries/s with {args.beside:,} idle WebSocket members ÷ without",
            f">= {BESIDE_TARGET}x", _x(vs_alone), vs_alone is not None and vs_alone >= BESIDE_TARGET),
        row(f"... ÷ with {args.beside:,} idle TCP members instead (the same room size)",
            f">= {BESIDE_TARGET}x", _x(vs_tcp), vs_tcp is not None and vs_tcp >= BESIDE_TARGET),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200 members for 2 s, 500 idle, 200 beside, "
                             "2 rounds (about a minute); the numbers mean nothing")
    parser.add_argument("--only", action="append", choices=("traffic", "idle", "beside"),
                        help="run only this measurement (repeatable; default all three)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (default 3)")
    parser.add_argument("--clients", type=int, default=1000,
                        help="members in the traffic runs (default 1000)")
    parser.add_argument("--senders", type=int, default=10, help="(default 10)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sending per traffic run (default 10)")
    parser.add_argument("--idle-clients", type=int, default=5000,
                        help="logged-in members in the idle runs (default 5000)")
    parser.add_argument("--idle-ramp", type=float, default=1000.0,
                        help="logins per second in the idle runs (default 1000)")
    parser.add_argument("--idle-hold", type=float, default=5.0,
                        help="seconds the idle members are held before RSS is read (default 5)")
    parser.add_argument("--beside", type=int, default=1000,
                        help="idle members beside the TCP traffic (default 1000)")
    parser.add_argument("--login-timeout", type=float, default=120.0,
                        help="chatd-bench --login-timeout for the idle runs (default 120)")
    parser.add_argument("--chatd-arg", action="append", default=[], metavar="ARG",
                        help="extra chatd argument for every run (repeatable; "
                             "use --chatd-arg=--flag)")
    parser.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                        help="extra chatd-bench argument for every run (repeatable; "
                             "use --bench-arg=--workers=2)")
    parser.add_argument("--json-out", type=Path, help="write every raw result here")
    args = parser.parse_args()
    if args.quick:
        args.clients = min(args.clients, 200)
        args.duration = min(args.duration, 2.0)
        args.idle_clients = min(args.idle_clients, 500)
        args.idle_hold = min(args.idle_hold, 1.0)
        args.beside = min(args.beside, 200)
        args.rounds = min(args.rounds, 2)
    args.only = args.only or ["traffic", "idle", "beside"]
    chatd_args = ["--no-flood-limit", *args.chatd_arg]
    chosen = measurements(args)
    print(f"# chatd's WebSocket door against its TCP door, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.rounds} rounds, the order rotating; chatd {' '.join(chatd_args)}", flush=True)
    run_rounds(chosen, args.rounds, chatd_args)
    summary = ["", "| target | wanted | measured (median) | met? |", "|---|---|---:|---|"]
    failed = False
    for item in chosen:
        rows, figures = TABLES[item.key](item)
        print("\n" + "\n".join(rows))
        summary += verdicts(item, figures, args)
        failed |= any("error" in result for got in item.rounds for result in got.values())
    print("\n".join(summary))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "args": {k: v for k, v in vars(args).items() if k != "json_out"},
            "results": {item.key: item.rounds for item in chosen},
        }, indent=1))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
