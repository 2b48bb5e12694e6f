"""``python -m chatd``: the same as the ``chatd`` script."""

from chatd.server import run

run()
