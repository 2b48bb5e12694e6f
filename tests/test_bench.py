"""chatd-bench run for real, briefly, against chatd and the naive baseline.

These check counts, order and exit codes only: never timings, which on a
shared 2-core machine mean nothing in a test.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatd.bench import stats
from chatd.bench.client import _SAY, MIN_PAYLOAD, say_line
from chatd.bench.prefill import prefill_text
from tests.support import ROOT, RunningServer

pytestmark = pytest.mark.e2e


def bench_command() -> list[str]:
    """The installed ``chatd-bench`` next to this Python, else ``-m chatd.bench``."""
    script = Path(sys.executable).with_name("chatd-bench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chatd.bench"]


def run_bench(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bench_command() + ["--port", str(port), "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


TRAFFIC = ("--clients", "20", "--senders", "3", "--window", "2", "--duration", "1",
           "--workers", "2", "--json")


def check_traffic(result: dict) -> None:
    traffic = result["traffic"]
    assert traffic["sent"] > 0
    assert traffic["expected"] == traffic["sent"] * 20
    assert traffic["received"] == traffic["expected"]
    assert traffic["lost"] == 0
    assert traffic["reordered"] == 0
    assert result["login"]["heard_all"] == 20


@pytest.fixture
def naive_port() -> Iterator[int]:
    """The baseline server of benchmarks/naive_chat.py on an ephemeral port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "naive_chat.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    try:
        assert match, line
        yield int(match.group(1))
    finally:
        process.kill()
        process.wait(10)


def test_traffic_against_chatd(chatd_server: RunningServer) -> None:
    """Against chatd every line sent reaches all 20 clients, in order."""
    done = run_bench(chatd_server.port, *TRAFFIC,
                     "--server-pid", str(chatd_server.process.pid))
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


def test_traffic_against_naive_baseline(naive_port: int) -> None:
    """Against the naive baseline every line sent reaches all 20 clients, in order."""
    done = run_bench(naive_port, *TRAFFIC)
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


def test_login_storm_counts_every_client(chatd_server: RunningServer) -> None:
    """A login storm ends when each of the N clients has heard of all N."""
    done = run_bench(chatd_server.port, "--mode", "login", "--clients", "50", "--json")
    assert done.returncode == 0, done.stderr
    login = json.loads(done.stdout)["login"]
    assert login["complete"] and login["heard_all"] == 50
    assert login["joins_heard_after_who"] == 50 * 49 // 2


def run_history_storm(port: int, *, prefill: int, request: int = 20) -> dict:
    done = run_bench(port, "--mode", "login", "--clients", "30", "--workers", "2",
                     "--prefill", str(prefill), "--history-request", str(request), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_history_request_storm_counts_hist_lines(chatd_factory: Callable[..., RunningServer]) -> None:
    """With 25 lines said first, each of 30 clients gets the 20 it asked for and the storm
    ends only once all 30 have their OK HISTORY and have heard all 30 members."""
    server = chatd_factory("--no-flood-limit", "--history", "100")
    result = run_history_storm(server.port, prefill=25)
    login = result["login"]
    assert result["prefill"]["lines"] == 25
    assert login["complete"] and login["heard_all"] == login["settled"] == 30
    assert login["joins_heard_after_who"] == 30 * 29 // 2
    history = login["history"]
    assert history["requested_lines"] == 20 and history["answered"] == 30
    assert history["hist_lines"] == history["ok_history_total"] == 30 * 20
    assert history["reply"]["p50_ms"] is not None


@pytest.mark.parametrize(("chatd_args", "prefill", "per_client"), [
    ((), 12, 12),  # the default flood limit delays 2 of the 12 lines: prefill waits for them
    (("--history", "0"), 5, 0),
], ids=["fewer-said-than-asked", "history-off"])
def test_history_request_gets_what_the_server_kept(
        chatd_factory: Callable[..., RunningServer], chatd_args: tuple[str, ...],
        prefill: int, per_client: int) -> None:
    """A client gets the lines the server kept, no more than were said, none with history off."""
    server = chatd_factory(*chatd_args)
    history = run_history_storm(server.port, prefill=prefill)["login"]["history"]
    assert history["answered"] == 30
    assert history["hist_lines"] == history["ok_history_total"] == 30 * per_client


def test_history_request_refused_is_one_line_and_exit_1(naive_port: int) -> None:
    """A server without HISTORY (the 1.0 baseline answers ERR) ends the run with one line."""
    done = run_bench(naive_port, "--mode", "login", "--clients", "5", "--history-request", "20")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"chatd-bench: server answered b[a-z]{3}\d+'s HISTORY with: "
                        r"ERR unknown-command .*", lines[0]), lines


def test_prefill_lines_are_not_taken_for_traffic() -> None:
    """A prefill line has the payload size and, replayed or not, never matches a benchmark SAY."""
    text = prefill_text(7, 64)
    assert text.startswith(b"prefill 000007 x") and len(text) == 64
    assert not _SAY.findall(b"SAY bxyzfill " + text + b"\r\nHIST 1.5 SAY bxyzfill " + text)


def test_refused_connection_is_one_line_and_exit_1() -> None:
    """A port nobody listens on gives one error line and exit status 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        done = run_bench(port, "--clients", "2", "--senders", "1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"chatd-bench: cannot connect to 127.0.0.1:{port}: connection refused"]


def test_say_line_has_the_payload_size() -> None:
    """A SAY line's text is exactly --payload-size bytes and starts with id and sequence."""
    line = say_line(7, 42, 123456789, MIN_PAYLOAD)
    assert line.startswith(b"SAY 00007000000042 123456789 x")
    assert len(line) == len(b"SAY ") + MIN_PAYLOAD + 1


def test_percentiles_of_a_histogram() -> None:
    """Percentiles come from bucketed microseconds with under 0.2 % error."""
    histogram = stats.merge([{stats.bucket(us): 1} for us in range(1, 1001)] + [{5000: 10}])
    assert stats.percentile(histogram, 0.5) == 505
    assert stats.percentile(histogram, 1.0) == 5000
    assert stats.bucket(1_000_000) <= 1_000_000 < stats.bucket(1_000_000) * 1.002

