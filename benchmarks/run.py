"""Run chatd-bench against chatd and the naive baseline, and print the table.

    .venv/bin/python benchmarks/run.py            # everything (several minutes)
    .venv/bin/python benchmarks/run.py --quick    # 100-client traffic + 1000-client storm

Every scenario gets a fresh server process (so RSS and CPU are its own) on an
ephemeral port on 127.0.0.1, and chatd-bench is run with ``--json
--server-pid``.  The figures and the ratios chatd/baseline go to stdout; the
raw JSON of every run to ``--json-out`` if given.  Method: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LISTEN = "tcp:0:interface=127.0.0.1:backlog=1024"
_LISTENING = re.compile(rb"listening on ([^\s:]+):(\d+)")


def script(name: str) -> list[str]:
    """An installed console script next to this Python, else ``-m``."""
    path = Path(sys.executable).with_name(name)
    if path.exists():
        return [str(path)]
    return [sys.executable, "-m", {"chatd": "chatd", "chatd-bench": "chatd.bench"}[name]]


def default_chatd_args() -> list[str]:
    """``--no-flood-limit`` if this chatd has it: a per-user flood limit (5
    lines/s by default) would measure the limiter, not the fan-out."""
    help_text = subprocess.run(script("chatd") + ["--help"], capture_output=True, text=True,
                               timeout=30).stdout
    return ["--no-flood-limit"] if "--no-flood-limit" in help_text else []


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:  # still busy with 10,000 PARTs: no matter
                self.process.kill()
                self.process.wait(5)
        self.log.unlink(missing_ok=True)


def start_server(name: str, chatd_args: list[str]) -> Server:
    """Start one server and read its port from its ``listening on`` line."""
    if name == "chatd":
        command = script("chatd") + ["--listen", LISTEN, *chatd_args]
    else:
        command = [sys.executable, str(ROOT / "benchmarks" / "naive_chat.py"), "--port", "0"]
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # the first line is the address
        match = _LISTENING.search(line)
        if match:
            return Server(name, process, int(match.group(2)), log)
        if not line:
            break
    process.kill()
    raise SystemExit(f"run.py: {name} did not start: {log.read_text(errors='replace')[-500:]}")


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    bench_args: tuple[str, ...]
    timeout: float


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    window = str(args.window)
    duration = str(args.duration)
    storm_timeout = str(args.storm_timeout)
    every = [
        Scenario("traffic-100", "100 clients, 10 senders, window " + window,
                 ("--clients", "100", "--senders", "10", "--window", window, "--check", "probes",
                  "--duration", duration), args.duration + 120),
        Scenario("traffic-1000", "1000 clients, 10 senders, window " + window,
                 ("--clients", "1000", "--senders", "10", "--window", window, "--check", "probes",
                  "--duration", duration), args.duration + 180),
        Scenario("login-1000", "login storm, 1000 clients",
                 ("--mode", "login", "--clients", "1000", "--login-timeout", storm_timeout),
                 args.storm_timeout + 60),
        # One run gives both the 10,000-client storm and the idle memory: an
        # idle run with no ramp *is* a storm, then holds the connections.
        Scenario("storm-idle-10000", "login storm + idle, 10,000 clients",
                 ("--mode", "idle", "--ramp", "0", "--clients", "10000", "--duration", "2",
                  "--login-timeout", storm_timeout), args.storm_timeout + 90),
    ]
    if args.quick:
        return [s for s in every if s.key in ("traffic-100", "login-1000")]
    if args.only:
        wanted = set(args.only)
        unknown = wanted - {s.key for s in every}
        if unknown:
            raise SystemExit(f"run.py: unknown scenario(s) {sorted(unknown)}; "
                             f"known: {[s.key for s in every]}")
        return [s for s in every if s.key in wanted]
    return every


def run_bench(server: Server, scenario: Scenario) -> dict[str, Any]:
    command = script("chatd-bench") + ["--port", str(server.port), "--server-pid",
                                       str(server.process.pid), "--json", "--quiet",
                                       *scenario.bench_args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=scenario.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"chatd-bench ran over {scenario.timeout:.0f} s"}
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": done.stderr.strip() or f"chatd-bench exited {done.returncode}"}
    if done.returncode and done.stderr.strip():
        result["warning"] = done.stderr.strip()
    return result


# --- the table ----------------------------------------------------------------


def _get(result: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(result, dict) or result.get(key) is None:
            return None
        result = result[key]
    return result


def rows(key: str, results: dict[str, dict[str, Any]]) -> list[tuple[str, Any, Any, bool]]:
    """(metric, chatd, baseline, higher is better) for one scenario."""
    c, b = results["chatd"], results["baseline"]

    def both(*path: str) -> tuple[Any, Any]:
        return _get(c, *path), _get(b, *path)

    if key.startswith("traffic"):
        return [
            ("deliveries/s", *both("traffic", "deliveries_per_s"), True),
            ("latency p50 ms", *both("traffic", "latency", "p50_ms"), False),
            ("latency p99 ms", *both("traffic", "latency", "p99_ms"), False),
            ("latency max ms", *both("traffic", "latency", "max_ms"), False),
            ("lost deliveries", *both("traffic", "lost"), False),
            ("reordered", *both("traffic", "reordered"), False),
            ("server CPU % (1 core = 100)", *both("traffic", "server_cpu_percent"), False),
            ("chatd-bench CPU %", *both("traffic", "tool_cpu_percent"), False),
            ("machine busy %", *both("traffic", "machine_busy_percent"), False),
        ]
    storm = [
        ("storm s (all heard all N)", *both("login", "storm_s"), False),
        ("all logged in s", *both("login", "all_logged_in_s"), False),
        ("clients that heard all N", *both("login", "heard_all"), True),
        ("server CPU % during storm", *both("login", "server_cpu_percent"), False),
        ("chatd-bench CPU % during storm", *both("login", "tool_cpu_percent"), False),
    ]
    if key.startswith("storm-idle"):
        storm.append(("server KiB per idle connection",
                      *both("server_rss", "kib_per_connection"), False))
    return storm


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(all_results: dict[str, dict[str, dict[str, Any]]], chosen: list[Scenario]) -> str:
    out = ["| scenario | metric | chatd | baseline | chatd/baseline |",
           "|---|---|---:|---:|---:|"]
    for scenario in chosen:
        results = all_results[scenario.key]
        for name in ("chatd", "baseline"):
            if "error" in results[name]:
                out.append(f"| {scenario.title} | {name} FAILED | {results[name]['error']} | | |")
        for metric, c, b, _ in rows(scenario.key, results):
            ratio = (f"{c / b:.2f}x" if isinstance(c, int | float) and isinstance(b, int | float)
                     and b else "-")
            out.append(f"| {scenario.title} | {metric} | {_fmt(c)} | {_fmt(b)} | {ratio} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only traffic-100 (3 s) and login-1000: about a minute")
    parser.add_argument("--only", action="append", metavar="SCENARIO",
                        help="run only this scenario (repeatable): traffic-100, traffic-1000, "
                             "login-1000, storm-idle-10000")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--window", type=int, default=1,
                        help="closed-loop window per sender (default 1: send, hear it back, "
                             "send the next)")
    parser.add_argument("--storm-timeout", type=float, default=120.0,
                        help="give up a login storm after this many seconds (default 120)")
    parser.add_argument("--chatd-arg", action="append", metavar="ARG",
                        help="extra chatd argument (repeatable; use --chatd-arg=--flag); "
                             "default: --no-flood-limit if chatd has it")
    parser.add_argument("--json-out", type=Path, help="write every raw result here")
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 3.0)
    chatd_args = args.chatd_arg if args.chatd_arg is not None else default_chatd_args()
    chosen = scenarios(args)
    print(f"# chatd vs naive baseline, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start; chatd args: {chatd_args}",
          flush=True)
    all_results: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in chosen:
        all_results[scenario.key] = {}
        for name in ("chatd", "baseline"):
            print(f"- {scenario.key} against {name} ...", file=sys.stderr, flush=True)
            server = start_server(name, chatd_args)
            try:
                all_results[scenario.key][name] = run_bench(server, scenario)
            finally:
                server.stop()
    print(table(all_results, chosen))
    if args.json_out:
        args.json_out.write_text(json.dumps(
            {"chatd_args": chatd_args, "results": all_results}, indent=1))


if __name__ == "__main__":
    main()
