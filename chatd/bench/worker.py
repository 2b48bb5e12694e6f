"""A worker process: its share of the connections on one (uv)loop.

The parent drives every worker through the same phases over a pipe of small
pickled tuples, and each phase is bounded in time:

1. ``("go", t_ns)``: from ``t_ns`` connect and log in (at most ``slots``
   handshakes in flight, optionally ramped), then report ``settled`` once
   every client here has heard of all N members (and, with
   ``history_request``, has had its ``HISTORY`` answered).
2. ``("start", t_start_ns, t_stop_ns)``: senders send from ``t_start`` to
   ``t_stop``, then the worker reports ``stopped`` with its sent count.
3. ``("expect", total_sent, deadline_ns)``: each receiver is due
   ``total_sent`` SAY lines; report ``done`` when all have them or at the
   deadline.
4. ``("exit",)``: drop every connection and end.

``("count",)``, at any time after phase 1, asks for ``counted``: the
connections lost so far and the pings answered (idle mode reads it at the end
of the hold).

``progress`` goes up every half second; ``error`` (one line) ends the run.
All times are ``time.monotonic_ns()``, which is CLOCK_MONOTONIC and so the
same clock in every process.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from time import monotonic_ns
from typing import Any

from chatd.bench.client import BenchClient, LoginFailed, WebSocketBenchClient
from chatd.bench.websocket import WsAddress

PROGRESS_EVERY = 0.5
TICK = 0.002  # open-loop send granularity
_LINGER_0 = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker does; the parent builds one per worker."""

    host: str
    port: int
    n_total: int
    tag: str
    indices: tuple[int, ...]
    senders: dict[int, int] = field(default_factory=dict)  # client index -> sender id
    probes: frozenset[int] = frozenset()
    window: int | None = 4
    rate: float | None = None
    payload_size: int = 64
    duration: float = 10.0
    slots: int = 50
    ramp: float = 0.0  # clients/s over the whole run; 0: as fast as slots allow
    connect_timeout: float = 10.0
    login_timeout: float = 60.0
    lifetime: float = 600.0  # hard stop for the whole process
    use_uvloop: bool = True
    count_only: bool = False  # --check probes: only probes and senders parse SAY lines
    history_request: int | None = None  # --history-request: HISTORY n after OK WHO
    # Transports.  Indices below n_measured are the run's clients, over
    # ``transport``; then come n_idle_ws extras over WebSocket, then the
    # idle TCP extras up to n_total (--idle-ws, --idle-tcp).
    transport: str = "tcp"  # "tcp" (host, port) or "ws" (ws)
    ws: WsAddress | None = None
    n_measured: int | None = None  # None: every client is measured
    n_idle_ws: int = 0
    sender_port: int | None = None  # --sender-port: where the senders connect over TCP

    def over_websocket(self, index: int) -> bool:
        """Whether client ``index`` connects to the WebSocket."""
        measured = self.n_total if self.n_measured is None else self.n_measured
        if index < measured:
            return self.transport == "ws"
        return index < measured + self.n_idle_ws

    def is_extra(self, index: int) -> bool:
        return self.n_measured is not None and index >= self.n_measured

    def tcp_port(self, index: int) -> int:
        """The port client ``index`` connects to over TCP."""
        if self.sender_port is not None and index in self.senders:
            return self.sender_port
        return self.port


class Worker:
    """The connections of one process and what they add up to."""

    def __init__(self, conn: Connection, spec: WorkerSpec) -> None:
        self.conn = conn
        self.spec = spec
        self.n_total = spec.n_total
        self.payload_size = spec.payload_size
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.clients: list[BenchClient] = []
        self.senders: list[BenchClient] = []
        self.failed = False
        self.exiting = False
        self.logged_in = 0
        self.complete = 0
        self.settled = False
        self.t_last_login = 0
        self.t_last_complete = 0
        self.cpu_mark = 0.0
        self.cpu_login = 0.0
        # Traffic.
        self.counting = False
        self.sending = False
        self.t_start = 0
        self.t_stop = 0
        self.received = 0
        self.received_at_stop = 0
        self.extra_received = 0  # SAY lines the extras read (not in the checks)
        self.extra_received_at_stop = 0
        self.cpu_traffic = 0.0
        self.last_delivery = 0
        self.latency: dict[int, int] = {}
        self.latency_max = 0
        self.target: int | None = None
        self.drained = 0
        self.done_sent = False
        self.lost = 0
        self.lost_reason = ""

    def nick(self, index: int) -> str:
        return f"b{self.spec.tag}{index}"

    # --- talking to the parent ---

    def report(self, kind: str, body: Any = None) -> None:
        try:
            self.conn.send((kind, body))
        except (OSError, EOFError):
            self.finish()

    def _on_message(self) -> None:
        try:
            while self.conn.poll():
                kind, *args = self.conn.recv()
                getattr(self, f"on_{kind}")(*args)
        except (OSError, EOFError):
            self.finish()  # the parent is gone

    def fail(self, why: str) -> None:
        if not self.failed and not self.exiting:
            self.failed = True
            self.report("error", why)
            self.finish()

    def finish(self) -> None:
        """Drop every connection with a RST (SO_LINGER 0), so that runs of
        10,000 connections do not leave 10,000 ports in TIME_WAIT."""
        self.exiting = True
        for client in self.clients:
            if client.transport is not None:
                sock = client.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
                    except OSError:
                        pass
                client.transport.abort()
        if not self.finished.done():
            self.finished.set_result(None)

    def _progress(self) -> None:
        if self.exiting:
            return
        self.report("progress", {
            "logged_in": self.logged_in, "complete": self.complete,
            "sent": sum(client.sent for client in self.senders), "received": self.received,
        })
        self.loop.call_later(PROGRESS_EVERY, self._progress)

    async def run(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._on_message)
        self.loop.call_later(self.spec.lifetime, self.fail,
                             f"worker gave up after {self.spec.lifetime:.0f} s")
        self._progress()
        await self.finished

    # --- phase 1: log in ---

    def on_go(self, t_go: int) -> None:
        self.cpu_mark = time.process_time()
        self.loop.call_later(self.spec.login_timeout + max(0, t_go - monotonic_ns()) / 1e9,
                             self._login_overdue)
        self.loop.create_task(self._connect_all(t_go))

    async def _connect_all(self, t_go: int) -> None:
        spec = self.spec
        slots = asyncio.Semaphore(spec.slots)
        for index in spec.indices:
            start = t_go + (int(index * 1e9 / spec.ramp) if spec.ramp else 0)
            delay = (start - monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if self.exiting:
                return
            self.loop.create_task(self._connect(index, slots))

    async def _connect(self, index: int, slots: asyncio.Semaphore) -> None:
        """One connection, up to its HELLO (then NICK is sent and the slot freed)."""
        spec = self.spec
        sender = spec.senders.get(index)
        probe, extra = index in spec.probes, spec.is_extra(index)
        client: BenchClient
        if spec.over_websocket(index):
            assert spec.ws is not None
            client = WebSocketBenchClient(self, index, sender=sender, probe=probe, extra=extra,
                                          address=spec.ws)
            host, port, where = spec.ws.host, spec.ws.port, spec.ws.url
            steps = "TCP connect, WebSocket upgrade and HELLO"
        else:
            client = BenchClient(self, index, sender=sender, probe=probe, extra=extra)
            host, port = spec.host, spec.tcp_port(index)
            where = f"{host}:{port}"
            steps = "TCP connect + HELLO"
        self.clients.append(client)
        if sender is not None:
            self.senders.append(client)
        try:
            async with asyncio.timeout(spec.connect_timeout):
                await self.loop.create_connection(lambda: client, host, port)
                await client.greeted
        except ConnectionRefusedError:
            self.fail(f"cannot connect to {where}: connection refused")
        except TimeoutError:
            self.fail(f"connecting client {client.nick} to {where} took over "
                      f"{spec.connect_timeout:g} s ({steps}); "
                      f"try --connect-timeout or fewer --connect-concurrency")
        except LoginFailed as exc:
            self.fail(str(exc))
        except OSError as exc:
            self.fail(f"cannot connect to {where}: {exc.strerror or exc}")
        finally:
            slots.release()

    def client_logged_in(self, client: BenchClient) -> None:
        self.logged_in += 1
        self.t_last_login = client.t_login

    def client_complete(self, client: BenchClient) -> None:
        self.complete += 1
        self.t_last_complete = monotonic_ns()
        if self.complete == len(self.spec.indices):
            self._settle(timed_out=False)

    def _login_overdue(self) -> None:
        self._settle(timed_out=True)

    def _settle(self, *, timed_out: bool) -> None:
        """Report the login phase: done, or cut short by ``--login-timeout``
        (the parent decides whether that is fatal)."""
        if self.settled or self.exiting:
            return
        self.settled = True
        self.cpu_login = time.process_time() - self.cpu_mark
        self.report("settled", {
            "timed_out": timed_out, "logged_in": self.logged_in, "complete": self.complete,
            "connect_ns": [c.t_connected - c.t_begin for c in self.clients if c.t_connected],
            "login_ns": [c.t_login - c.t_begin for c in self.clients if c.t_login],
            "t_last_login": self.t_last_login,
            "t_last_complete": self.t_last_complete,
            "join_lines": sum(c.joins for c in self.clients),
            "heard_all": sum(c.heard_all for c in self.clients),
            "history_answered": sum(bool(c.t_history) for c in self.clients),
            "hist_lines": sum(c.hist_lines for c in self.clients),
            "history_count": sum(c.history_count for c in self.clients),
            "history_ns": [c.t_history - c.t_history_sent for c in self.clients if c.t_history],
            "cpu_s": self.cpu_login,
        })

    def client_lost(self, client: BenchClient, exc: Exception | None) -> None:
        if self.exiting:
            return
        self.lost += 1
        if not self.lost_reason:
            self.lost_reason = f"{client.nick}: {client.closed_reason(exc)}"
        if not self.settled:
            self.fail(f"the server dropped a connection during login ({self.lost_reason})")
        elif self.target is not None:
            self._mark_drained(client)

    # --- phase 2: traffic ---

    def on_start(self, t_start: int, t_stop: int) -> None:
        self.counting = True
        self.t_start, self.t_stop = t_start, t_stop
        now = monotonic_ns()
        self.loop.call_later(max(0, t_start - now) / 1e9, self._begin_sending)
        self.loop.call_later(max(0, t_stop - now) / 1e9, self._stop_sending)

    def _begin_sending(self) -> None:
        self.cpu_mark = time.process_time()
        self.sending = True
        if self.spec.rate:
            self._tick()
        else:
            for client in self.senders:
                client.send(self.spec.window or 1)

    def _tick(self) -> None:
        """Open loop: each sender sends what its rate makes due by now, stamped
        with when it was due, so a late tool shows up as latency."""
        if not self.sending:
            return
        rate = self.spec.rate
        assert rate
        step = int(1e9 / rate)
        planned = min(int((monotonic_ns() - self.t_start) * rate / 1e9) + 1,
                      int(self.spec.duration * rate))
        for client in self.senders:
            due = planned - client.sent
            if due > 0:
                client.send(due, self.t_start + client.sent * step, step)
        self.loop.call_later(TICK, self._tick)

    def echoed(self, client: BenchClient) -> None:
        """Closed loop: top the sender's window back up."""
        if self.sending and not self.spec.rate:
            room = (self.spec.window or 1) - client.unechoed()
            if room > 0:
                client.send(room)

    def delivered(self, client: BenchClient, count: int) -> None:
        self.received += count
        self.last_delivery = monotonic_ns()
        if self.target is not None and client.received >= self.target:
            self._mark_drained(client)

    def _stop_sending(self) -> None:
        self.sending = False
        self.cpu_traffic = time.process_time() - self.cpu_mark
        self.received_at_stop = self.received
        self.extra_received_at_stop = self.extra_received
        self.report("stopped", {"sent": sum(client.sent for client in self.senders),
                                "received": self.received, "cpu_s": self.cpu_traffic})

    # --- phase 3: drain ---

    def on_expect(self, total_sent: int, deadline: int) -> None:
        self.target = total_sent
        for client in self.clients:
            if client.extra or client.received >= total_sent or client.transport is None:
                self._mark_drained(client)
        if not self.done_sent:
            self.loop.call_later(max(0, deadline - monotonic_ns()) / 1e9, self._report_done)

    def _mark_drained(self, client: BenchClient) -> None:
        if not client.drained:
            client.drained = True
            self.drained += 1
            if self.drained == len(self.clients):
                self._report_done()

    def _report_done(self) -> None:
        if self.done_sent:
            return
        self.done_sent = True
        self.report("done", {
            "received": self.received, "received_at_stop": self.received_at_stop,
            "reordered": sum(c.reordered for c in self.clients),
            "errors": sum(c.errors for c in self.clients),
            "latency": self.latency, "latency_max_us": self.latency_max,
            "last_delivery": self.last_delivery, "undrained": len(self.clients) - self.drained,
            "lost": self.lost, "lost_reason": self.lost_reason,
            "extra_received": self.extra_received,
            "extra_received_at_stop": self.extra_received_at_stop,
        })

    # --- at any time ---

    def on_count(self) -> None:
        self.report("counted", {
            "lost": self.lost, "lost_reason": self.lost_reason,
            "pings": sum(getattr(c, "pings", 0) for c in self.clients),
        })

    # --- phase 4 ---

    def on_exit(self) -> None:
        self.finish()


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry point: one event loop until the parent says exit."""
    loop: asyncio.AbstractEventLoop
    if spec.use_uvloop:
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_run(conn, spec))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # report, in one line, anything unforeseen
        try:
            conn.send(("error", f"worker crashed: {type(exc).__name__}: {exc}"))
        except OSError:
            pass
    finally:
        loop.close()
        conn.close()


async def _run(conn: Connection, spec: WorkerSpec) -> None:
    await Worker(conn, spec).run()
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
