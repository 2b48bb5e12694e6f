"""The node's link to Redis: one writer connection, one blocking reader.

redis-py's asyncio client, on Twisted's asyncio reactor (``--redis`` picks
it).  No pub/sub: the writer sends the bus's ops in order, pipelined, and
the reader follows the stream with ``XREAD BLOCK`` from the last entry it
read, so a dropped link loses nothing the stream still holds.  Every
decision is the bus's (``chatd.redisbus``); this module only carries bytes,
keeps the lease and reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from chatd.redisbus import RedisBus, entry_seq

PREFIX = "chatd:"
# The Redis side of the bus, loaded (FUNCTION LOAD REPLACE) at every connect.
FUNCTIONS = resources.files("chatd").joinpath("redis_functions.lua").read_text("utf-8")
STREAM = PREFIX + "events"
READ_COUNT = 1000  # entries per XREAD: bounds what one read holds in memory
READ_BLOCK_MS = 1000
FILL_PAGE = 1000
FILL_PAGES = 50  # at most this many pages read back for the history at start
BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0)


class RedisUnavailable(Exception):
    """Redis could not be reached at start; the message is for the operator."""


class Fenced(Exception):
    """Redis took this node for dead (or lost the room): register again."""


class RedisLink:
    """Carries one bus's ops to Redis and the stream back, until stopped."""

    def __init__(self, bus: RedisBus, url: str, *, lease: float, beat: float,
                 history: int, log: Any) -> None:
        self.bus = bus
        self.url = url
        self.lease_ms = str(int(lease * 1000))
        self.beat = beat
        self.history = history
        self.log = log
        # A command that takes longer than this is a Redis that went away.
        self.timeout = max(1.0, min(lease / 2, 5.0))
        # A link down this long splits the room: local users talk among
        # themselves.  Shorter (a dropped connection, a failover), lines
        # wait and nothing is lost.
        self.split_after = min(lease / 2, 2.0)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while no pipeline awaits its replies
        self._idle.set()
        # When Redis last answered (the loop's clock): a Redis that hangs is
        # noticed only when a command times out, and the link was down since.
        self._answered = 0.0
        # Any: redis-py types every reply as a union of bytes, str and None
        # whatever decode_responses says; the replies here are all text.
        self._writer: Any = None
        self._reader: Any = None
        self._run: asyncio.Task[None] | None = None
        self._stopping = False
        bus.kick = self._wake.set

    # --- start and stop ---

    async def start(self) -> None:
        """Connect, register and read back the history; then run in the background."""
        try:
            await self._connect()
            await self._register(first=True)
        except (RedisError, OSError) as exc:
            await self._close()
            raise RedisUnavailable(f"cannot reach Redis at {self.url}: {exc}") from None
        self._run = asyncio.ensure_future(self._supervise())

    async def stop(self) -> None:
        """Leave the room cleanly: what is queued goes, then this node's lease."""
        self._stopping = True
        if self.bus.up and self._writer is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                async with asyncio.timeout(self.timeout):
                    while self.bus.pending:
                        await asyncio.sleep(0.01)
                    await self._writer.fcall("chatd_leave", 1, PREFIX, self.bus.maxlen,
                                             self.bus.node or "0", "0", "server shutting down")
        if self._run is not None:
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run
        await self._close()

    # --- connections ---

    def _client(self, timeout: float | None) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url, decode_responses=True, single_connection_client=True,
            socket_timeout=timeout, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)

    async def _connect(self) -> None:
        await self._close()
        self._writer = self._client(self.timeout)
        self._reader = self._client(self.timeout + READ_BLOCK_MS / 1000)
        await self._writer.function_load(FUNCTIONS, replace=True)
        await self._reader.ping()
        self._answered = asyncio.get_running_loop().time()

    async def _close(self) -> None:
        for client in (self._writer, self._reader):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._writer = self._reader = None

    async def _register(self, *, first: bool) -> None:
        assert self._writer is not None
        reply = await self._writer.fcall("chatd_register", 1, PREFIX, self.bus.maxlen,
                                         self.lease_ms)
        node, epoch, last_id, *nicks = (str(item) for item in reply)
        if first:
            await self._fill(last_id)
        self.bus.registered(node, epoch, last_id, nicks)
        self.log.info("registered with Redis as node {node} ({count} users in the room)",
                      node=node, count=len(nicks))

    async def _fill(self, last_id: str) -> None:
        """The room's last lines, for ``HISTORY``: read back from the stream
        up to the snapshot, newest first, until enough lines are found."""
        assert self._writer is not None
        if not self.history or last_id == "0-0":
            return
        found: list[tuple[str, dict[str, str]]] = []
        said = 0
        end = last_id
        for _ in range(FILL_PAGES):
            page: list[tuple[str, dict[str, str]]] = await self._writer.xrevrange(
                STREAM, max=end, count=FILL_PAGE)
            if not page:
                break
            if found and page[0][0] == end:
                page = page[1:]  # the bound is inclusive
            if not page:
                break
            found.extend(page)
            said += sum(fields.get("t") == "S" for _, fields in page)
            end = page[-1][0]
            if said >= self.history:
                break
        self.bus.fill(reversed(found))

    # --- running ---

    async def _supervise(self) -> None:
        """Run the writer, the reader and the heartbeat; on any failure,
        settle locally and reconnect with back-off until it works."""
        attempt = 0
        while not self._stopping:
            tasks = [asyncio.ensure_future(job()) for job in (self._write, self._read, self._beat)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                failure = next((t.exception() for t in done if t.exception()), None)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._stopping:
                return
            self.log.info("lost the link to Redis: {why}", why=_describe(failure))
            self.bus.link_dropped()
            fenced = isinstance(failure, Fenced)
            patience = self._answered + self.split_after
            while not self._stopping:
                if self.bus.up and (fenced or asyncio.get_running_loop().time() > patience):
                    self.log.info("the room is split: local users only until Redis is back")
                    self.bus.went_down()
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                try:
                    await self._rejoin(fenced)
                except (RedisError, OSError, Fenced) as exc:
                    fenced = fenced or isinstance(exc, Fenced)
                    continue
                attempt = 0
                break

    async def _rejoin(self, fenced: bool) -> None:
        """Resume the same registration if Redis still has it and the stream
        still holds where this node stopped reading; else register again."""
        await self._connect()
        assert self._writer is not None
        bus = self.bus
        if not fenced:
            answer = await self._writer.fcall("chatd_beat", 1, PREFIX, bus.maxlen,
                                              bus.node or "0", "0", self.lease_ms,
                                              bus.epoch or "")
            if answer == "ok":
                first = await self._writer.xrange(STREAM, count=1)
                gap = bool(first) and entry_seq(first[0][0]) > entry_seq(bus.last_id) \
                    and bus.last_id != "0-0"
                bus.came_up(resumed=True, gap=gap)
                self.log.info("the link to Redis is back; resumed as node {node}",
                              node=bus.node)
                return
        bus.went_down()  # settle what waited here, before the room is rebuilt
        await self._register(first=False)
        bus.came_up(resumed=False)

    async def _write(self) -> None:
        bus = self.bus
        while True:
            if not bus.has_queued():
                self._wake.clear()
                await self._wake.wait()
            ops = bus.take()
            if not ops:
                continue
            assert self._writer is not None
            pipe = self._writer.pipeline(transaction=False)
            for op in ops:
                pipe.fcall(op.function, *bus.command(op))
            self._idle.clear()
            try:
                results = await pipe.execute(raise_on_error=False)
            finally:
                self._idle.set()
            self._answered = asyncio.get_running_loop().time()
            for result in results:
                if isinstance(result, Exception):
                    raise result  # a function missing (Redis restarted): reconnect
            bus.replied(results)
            if not bus.up:
                raise Fenced("Redis reaped this node")

    async def _read(self) -> None:
        bus = self.bus
        while True:
            assert self._reader is not None
            reply = await self._reader.xread({STREAM: bus.last_id}, count=READ_COUNT,
                                             block=READ_BLOCK_MS)
            self._answered = asyncio.get_running_loop().time()
            entries = reply[0][1] if reply else []
            if entries and not self._idle.is_set():
                # Redis wakes this read at the first entry of the writer's
                # pipeline; the rest follow at once.  Delivered together,
                # they go out in one write per member, not one per line.
                await self._idle.wait()
                more = await self._reader.xread({STREAM: entries[-1][0]}, count=READ_COUNT)
                if more:
                    entries += more[0][1]
            bus.heard(entries)
            if not bus.up:
                raise Fenced("another node reaped this one")

    async def _beat(self) -> None:
        bus = self.bus
        lost = asyncio.Event()

        def answered(result: object) -> None:
            if result != "ok":
                lost.set()

        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(self.beat):
                    await lost.wait()
                    raise Fenced(f"the heartbeat was answered {'lost'!r}")
            bus.request("chatd_beat", (self.lease_ms, bus.epoch or ""), answered)


def _describe(failure: BaseException | None) -> str:
    if failure is None:
        return "stopped"
    return f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__

