"""Print pip constraints that pin batchkit's runtime dependencies to the lowest versions it declares.

The floors are declared once, in pyproject.toml (``[project] dependencies``); this turns each
``name>=X`` there into ``name==X``, so that CI's contract run installs exactly the oldest
releases batchkit claims to support (their own dependencies resolve as pip resolves them for a
user). A dependency without a ``>=`` floor is an error: an undeclared floor cannot be tested.

    python3 .ci/lowest.py > lowest.txt && pip install -c lowest.txt -e .
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def floors(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """``{name: lowest version}`` for every runtime dependency in ``pyproject``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    found: dict[str, str] = {}
    for requirement in project["dependencies"]:
        match = _FLOOR.match(requirement.split(";")[0])
        assert match is not None, requirement
        name, specifiers = match.groups()
        lowest = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(lowest) != 1:
            sys.exit(f"{pyproject}: {requirement!r} declares no single '>=' floor; CI cannot test its lowest version")
        found[name] = lowest[0]
    return found


if __name__ == "__main__":
    for name, version in floors().items():
        print(f"{name}=={version}")
