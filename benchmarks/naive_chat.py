"""The yardstick: a tutorial-style Twisted chat speaking just enough of chatd's
protocol for chatd-bench to run against it.

It is deliberately naive, in the shape of Twisted's
docs/core/howto/listings/servers/chat.py: the factory owns a dict of
chatters, ``lineReceived`` does everything, and a broadcast loops over the
chatters calling ``transport.write`` once per line per recipient.

What it speaks: ``HELLO`` on connect; ``NICK x`` -> ``OK NICK x``, ``JOIN x``
to everyone (x included), then ``OK WHO <n>`` (no ``USERS`` lines);
``SAY t`` -> ``SAY nick t`` to everyone; ``QUIT`` -> ``BYE``.

Two things it does that the tutorial does not, so that chatd-bench measures
Python work rather than TCP settings: TCP_NODELAY (with Nagle on, delayed
ACKs stall small writes by ~40 ms) and a listen backlog of 1024 (chatd's
default; Twisted's 50 turns a login storm into SYN retries).

    python benchmarks/naive_chat.py --port 0    # prints: listening on 127.0.0.1:PORT
"""

import argparse
import sys

from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineReceiver


class Chat(LineReceiver):
    delimiter = b"\n"

    def __init__(self, users):
        self.users = users
        self.name = None

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        self.transport.write(b"HELLO naive/1 tutorial chat\r\n")

    def connectionLost(self, reason):
        if self.name in self.users:
            del self.users[self.name]
            for user in self.users.values():
                user.transport.write(b"PART " + self.name + b" connection lost\r\n")

    def lineReceived(self, line):
        line = line.rstrip(b"\r")
        verb, _, rest = line.partition(b" ")
        if verb == b"NICK" and self.name is None:
            if not rest or rest in self.users:
                self.transport.write(b"ERR nick-taken " + rest + b" is taken\r\n")
                return
            self.name = rest
            self.users[rest] = self
            self.transport.write(b"OK NICK " + rest + b"\r\n")
            for user in self.users.values():
                user.transport.write(b"JOIN " + rest + b"\r\n")
            self.transport.write(b"OK WHO %d\r\n" % len(self.users))
        elif verb == b"SAY" and self.name is not None:
            for user in self.users.values():
                user.transport.write(b"SAY " + self.name + b" " + rest + b"\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"BYE leaving\r\n")
            self.transport.loseConnection()
        else:
            self.transport.write(b"ERR unknown-command try NICK, SAY or QUIT\r\n")


class ChatFactory(protocol.Factory):
    def __init__(self):
        self.users = {}  # name -> Chat

    def buildProtocol(self, addr):
        return Chat(self.users)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    port = reactor.listenTCP(args.port, ChatFactory(), backlog=1024, interface=args.host)
    address = port.getHost()
    print(f"listening on {address.host}:{address.port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
