"""``python -m chatd.bench``: the same as the ``chatd-bench`` script."""

from chatd.bench.cli import main

main()
