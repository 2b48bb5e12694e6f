"""chatclient.connection against the real chatd: connect, exchange, reconnect."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

import pytest

from chatclient.client import Client
from chatclient.connection import Backoff, ConnectError, Connection, describe, parse
from chatclient.state import ClientState, Phase
from chatd import wire
from tests.client_support import RecordingListener, free_port, wait_until
from tests.support import LineClient, RunningServer

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.2)


class TestDescribe:
    @pytest.mark.parametrize(("error", "words"), [
        (socket.gaierror(-2, "Name or service not known"), "unknown host 'nowhere'"),
        (ConnectionRefusedError(111, "Connection refused"),
         "connection refused by nowhere:1 (is chatd running there?)"),
        (TimeoutError(), "timed out connecting to nowhere:1"),
        (OSError(113, "No route to host"), "no route to host"),
    ])
    def test_failures_read_as_phrases(self, error: OSError, words: str) -> None:
        """Connection failures become one short phrase for the error line."""
        assert describe(error, "nowhere", 1) == words

    def test_tls_failure(self) -> None:
        """A TLS failure is named as such."""
        assert describe(ssl.SSLError(1, "boom"), "h", 1).startswith("TLS failed")

    def test_non_utf8_line_still_parses(self) -> None:
        """A server line that is not UTF-8 is shown with replacement characters."""
        assert parse(b"SAY bob caf\xe9\r\n") == (None, wire.Said("bob", "caf\ufffd"))


async def serve_chunks(chunks: list[bytes], *, max_line: int) -> tuple[RecordingListener, int]:
    """Run an asyncio server on a loopback port that writes ``chunks`` one by
    one (pausing between them, so the client reads them apart) and hangs up;
    what a client with ``max_line`` received, and how many lines it dropped."""
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.close()

    server = await asyncio.start_server(talk, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        connection = Connection("127.0.0.1", port, reconnect=False, max_line=max_line)
        listener = RecordingListener()
        await connection.open()
        await asyncio.wait_for(connection.start(listener), 10)
    return listener, connection.too_long


class TestFraming:
    def test_over_long_lines_are_dropped_whole_and_split_lines_arrive_whole(self) -> None:
        """A line over the limit is dropped up to its LF (its tail never comes
        back as a line), whether it arrives whole or in pieces; a normal line
        cut across reads arrives as one line."""
        tail = b" SAY eve forged\n"  # what a naive reader would show as a line
        chunks = [
            b"SAY bob " + b"x" * 100 + tail + b"SAY bob one\n",  # too long, in one read
            b"SAY bob " + b"y" * 80,                              # too long before its LF
            b"y" * 80,
            b"y" * 10 + tail + b"SAY bob tw",                      # ... and a split line
            b"o\r\nSAY bob three\n",
            b"SAY bob unfinished",                                 # cut off by the hang-up
        ]
        listener, dropped = asyncio.run(serve_chunks(chunks, max_line=64))
        assert listener.messages() == [wire.Said("bob", "one"), wire.Said("bob", "two"),
                                       wire.Said("bob", "three")]
        assert dropped == 2
        assert listener.events[-1] == ("lost", "the server closed the connection")

    def test_line_at_the_limit_is_kept(self) -> None:
        """A line of exactly ``max_line`` bytes (without its CR LF) is a line."""
        line = b"SAY bob " + b"z" * 56
        listener, dropped = asyncio.run(serve_chunks([line + b"\r\n"], max_line=len(line)))
        assert listener.messages() == [wire.Said("bob", "z" * 56)] and dropped == 0


class TestConnection:
    def test_refused_connection_is_one_line(self) -> None:
        """Connecting to a closed port raises ConnectError with a plain phrase."""
        async def main() -> str:
            try:
                await Connection("127.0.0.1", free_port()).open()
            except ConnectError as error:
                return str(error)
            return "connected?"
        assert asyncio.run(main()).startswith("connection refused by 127.0.0.1:")

    @pytest.mark.e2e
    def test_exchange_with_real_server(self, chatd_server: RunningServer) -> None:
        """Messages are sent encoded and received parsed, through the real chatd."""
        async def main() -> list[wire.ServerMessage]:
            connection = Connection(chatd_server.host, chatd_server.port)
            listener = RecordingListener()
            await connection.open()
            connection.start(listener)
            assert connection.send(wire.Nick("ann"))
            await wait_until(lambda: wire.Ok("WHO", "1") in listener.messages(), what="WHO")
            connection.send(wire.Quit("done"))
            await connection.close()
            assert not connection.send(wire.Say("late"))
            return listener.messages()
        messages = asyncio.run(main())
        assert messages[0].verb == "HELLO"
        assert messages[1:] == [wire.Ok("NICK", "ann"), wire.Joined("ann"), wire.Users(("ann",)),
                                wire.Ok("WHO", "1"), wire.Bye("done")]

    @pytest.mark.e2e
    def test_reconnects_and_logs_back_in_after_restart(
            self, chatd_factory: Callable[..., RunningServer]) -> None:
        """When chatd restarts on the same port, the client reconnects and logs in again."""
        port = free_port()
        listen = (f"tcp:{port}:interface=127.0.0.1",)
        server = chatd_factory(listen=listen)

        async def main() -> ClientState:
            connection = Connection("127.0.0.1", port, backoff=FAST)
            state = ClientState("127.0.0.1", nick="ann")
            client = Client(state, connection.send)
            await connection.open()
            connection.start(client)
            await wait_until(lambda: state.phase is Phase.IN, what="first login")
            await asyncio.to_thread(server.stop)
            await wait_until(lambda: not connection.connected, what="loss")
            second = await asyncio.to_thread(chatd_factory, listen=listen)
            await wait_until(lambda: state.phase is Phase.IN and connection.connected,
                             what="second login")
            watcher = await asyncio.to_thread(LineClient, second.host, second.port)
            lines = await asyncio.to_thread(watcher.login, "bob")
            assert "USERS ann bob" in lines
            client.quit()
            await connection.close()
            watcher.close()
            return state
        state = asyncio.run(main())
        texts = [line.text for line in state.lines]
        assert "The server closed the connection: server shutting down." in texts
        assert texts.count("You joined the room as ann.") == 2

    @pytest.mark.e2e
    def test_close_while_waiting_to_reconnect(self, chatd_server: RunningServer) -> None:
        """close() during the backoff wait ends the connection task at once."""
        async def main() -> RecordingListener:
            connection = Connection(chatd_server.host, chatd_server.port,
                                    backoff=Backoff(initial=30))
            listener = RecordingListener()
            await connection.open()
            task = connection.start(listener)
            await asyncio.to_thread(chatd_server.stop)
            await wait_until(lambda: listener.count("reconnecting") == 1, what="backoff")
            await asyncio.wait_for(connection.close(), 5)
            assert task.done()
            return listener
        listener = asyncio.run(main())
        assert listener.count("made") == 1 and listener.count("lost") == 1
