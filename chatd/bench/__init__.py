"""chatd-bench: the load tool that ships with chatd.

``chatd.bench.cli`` is the command line and the parent process,
``chatd.bench.worker`` a worker process and its phases, ``chatd.bench.client``
one connection's hot receive path, ``chatd.bench.stats`` the pure arithmetic.
Method and measured figures: docs/performance.md.
"""

from chatd.bench.cli import main

__all__ = ["main"]
