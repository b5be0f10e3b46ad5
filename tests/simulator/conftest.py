"""Fixtures for the simulator's contract tests: the real SDK against the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import pytest

from batchkit.simulator import Processing, SimConfig, Simulator


@pytest.fixture(autouse=True)
def _no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real API: clear every ANTHROPIC_* variable."""
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sim() -> Simulator:
    """A simulator on the default processing model and a clock the test advances."""
    return Simulator(config=SimConfig(seed=7))


@pytest.fixture
def instant() -> Simulator:
    return Simulator(config=SimConfig(seed=7, processing=Processing.instant()))


@pytest.fixture
def client(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    c = sim.client(_strict_response_validation=True, max_retries=0)
    yield c
    c.close()


@pytest.fixture
def iclient(instant: Simulator) -> Iterator[anthropic.Anthropic]:
    c = instant.client(_strict_response_validation=True, max_retries=0)
    yield c
    c.close()
