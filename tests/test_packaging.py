"""What ``pip install .`` ships: every package of the source tree."""

from __future__ import annotations

import tomllib

from tests.support import ROOT


def test_every_package_directory_is_declared_in_pyproject() -> None:
    """A package missing from pyproject.toml works in the editable install the
    tests use and breaks in a real one; so list them all."""
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                   ["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("chatd", "chatclient")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= declared
    assert (ROOT / "twisted" / "plugins" / "chatd_plugin.py").exists()
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()
    assert not (ROOT / "twisted" / "__init__.py").exists()
