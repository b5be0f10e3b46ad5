"""Shared fixtures: no test can reach a real API, and every test has its own job store."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchkit import set_default_client
from batchkit.backends.clients import close_environment_client
from batchkit.stores.store import Store
from tests import children

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def pytest_report_header() -> str:
    """The releases this run tests, at the top of every run (CI's newest and its floors alike)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    names = ("anthropic", "httpx2", "pandas", "numpy", "msgspec", "ipywidgets", "matplotlib")
    return "dependencies: " + ", ".join(map(of, names))


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
    close_environment_client()  # a test that set a key shares no connection with the next


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


# --------------------------------------------------------------------------- helpers for job tests


def child_env(crash_at: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process run as a user's kernel: this checkout's batchkit, no
    ``ANTHROPIC_*`` key, and — with ``crash_at`` — killed with SIGKILL at that crash point
    (``BATCHKIT_CRASH_AT``); ``extra`` variables on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHKIT_CRASH"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if crash_at:
        env["BATCHKIT_CRASH_AT"] = crash_at
    return {**env, **extra}


def run_script(
    code: str, *args: str, crash_at: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as ``python -c code args…`` in a process of its own (see :func:`child_env`),
    forked from a warm interpreter (see ``tests/children.py``): ``stdout``, ``stderr``, ``returncode``."""
    return children.run(code, *args, env=child_env(crash_at), timeout=timeout)


def start_script(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Start ``code`` as :func:`run_script` does, without waiting: a ``subprocess.Popen`` look-alike
    (``stdout``/``stderr`` pipes as text, ``communicate``, ``kill``, ``send_signal``, ``returncode``)."""
    return children.start(code, *args, env=child_env() if env is None else env)


def pytest_sessionfinish() -> None:
    children.stop()


def stored_answers(path) -> int:
    """How many requests have an answer in the store at ``path`` (read by a store of its own)."""
    from batchkit.core.results import ANSWERED
    from batchkit.stores.results import unpack

    store = Store(path)
    try:
        return sum(1 for packed in store.index().values() if unpack(packed)[0] in ANSWERED)
    finally:
        store.close()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the notebook tests share one worker: a notebook two tests read runs once
    per worker process (``tests/test_notebooks.py`` keeps each executed book for its session)."""
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if item.path.name == "test_notebooks.py":
                item.add_marker(pytest.mark.xdist_group("notebooks"))
