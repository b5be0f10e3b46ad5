"""Shared fixtures: no test can reach a real API, and every test has its own job store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit import set_default_client
from batchkit.store import Store

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Clear ANTHROPIC_* so nothing can reach Anthropic; point the store at a temp dir."""
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BATCHKIT_STORE", str(tmp_path / "store" / "jobs.sqlite3"))
    set_default_client(None)
    yield
    set_default_client(None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


# --------------------------------------------------------------------------- helpers for job tests


def echo(params):
    """An answer that is a function of the prompt, so a misplaced answer shows."""
    return "re:" + str(params["messages"][0]["content"])


def make_sim(**config):
    """An in-process simulator (instant unless told otherwise) that echoes the prompt."""
    from batchkit.simulator import Processing, SimConfig, Simulator

    config.setdefault("processing", Processing.instant())
    return Simulator(config=SimConfig(**config), responder=echo)


def frame(n):
    """A frame of ``n`` distinct texts in column ``t``."""
    import pandas as pd

    return pd.DataFrame({"t": [f"row {i}" for i in range(n)]})
