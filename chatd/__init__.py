"""chatd: a one-room chat server for terminals, with a human-readable line protocol.

Importing this package imports nothing else, so ``chatd.wire`` can be used by
clients without pulling in Twisted.
"""

__version__ = "1.1.0"
