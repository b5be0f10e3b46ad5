"""``batchkit.start_simulator``: the simulator a notebook starts keeps its batches across a restart."""

from __future__ import annotations

import os
import signal
import textwrap

import pytest

import batchkit
from batchkit.errors import BatchkitWarning, ConfigurationError
from batchkit.local import default_state_path
from batchkit.simulator import Processing
from tests.conftest import run_script

ROWS = 90
CHUNK = 40  # → 3 batches

# The README's story: a cell that starts the simulator and runs a job; the kernel is killed
# while the batches run; the same cell, run again in a new kernel, returns every answer.
SCRIPT = (
    textwrap.dedent(
        """
    import pandas as pd
    import batchkit
    from batchkit.simulator import Processing
    server = batchkit.start_simulator(processing=Processing(fixed_latency=1.5, per_request=0.0))
    df = pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)]})
    out = df.claude.batch("Echo {t}", poll_interval=0.05, chunk_size=CHUNK)
    stats = server.simulator.stats()
    print("ANSWERED", int(out["response"].notna().sum()), "CREATED", stats["batches_created"],
          "KNOWN", len(stats["batches"]), sum(b["request_count"] for b in stats["batches"]))
    """
    )
    .replace("ROWS", str(ROWS))
    .replace("CHUNK", str(CHUNK))
)


def run(crash_at=None):
    return run_script(SCRIPT, crash_at=crash_at, timeout=120)


@pytest.mark.slow
def test_a_kernel_killed_while_its_batches_run_gets_every_answer_without_sending_twice():
    state = default_state_path()  # beside the test's job store (BATCHKIT_STORE), in tmp
    assert str(state).startswith(os.path.dirname(os.environ["BATCHKIT_STORE"]))
    killed = run(crash_at="polling")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert state.exists()
    again = run()
    assert again.returncode == 0, again.stderr
    # every answer; no batch created by the re-run; the simulator knows 3 batches of 90 requests
    assert f"ANSWERED {ROWS} CREATED 0 KNOWN 3 {ROWS}" in again.stdout


def test_start_simulator_keeps_its_batches_beside_the_job_store():
    server = batchkit.start_simulator(processing=Processing.instant())
    try:
        assert server.simulator.state_path == default_state_path()
        assert default_state_path().parent == batchkit.engine.locations.default_store_path().parent
    finally:
        server.stop()
    server = batchkit.start_simulator(state=None)  # in memory only
    try:
        assert server.simulator.state_path is None
    finally:
        server.stop()


def test_start_simulator_under_another_configuration_keeps_its_batches_in_memory(tmp_path):
    first = batchkit.start_simulator(seed=1)
    try:
        first.client().messages.batches.create(
            requests=[
                {
                    "custom_id": "a",
                    "params": {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                }
            ]
        )
    finally:
        first.stop()
    with pytest.warns(BatchkitWarning, match="answered under another configuration"):
        other = batchkit.start_simulator(seed=2)  # its batches would be answered differently
    try:
        assert other.simulator.state_path is None
    finally:
        other.stop()
    again = batchkit.start_simulator(seed=1)  # as it was: restored
    try:
        assert len(again.client().messages.batches.list().data) == 1
    finally:
        again.stop()


def test_a_second_start_simulator_on_a_state_file_in_use(tmp_path):
    first = batchkit.start_simulator()
    try:
        with pytest.warns(BatchkitWarning, match="in memory only"):
            second = batchkit.start_simulator()  # the default file is taken: memory, and a warning
        assert second.simulator.state_path is None
        second.stop()
        with pytest.raises(ConfigurationError, match="another simulator is running on the state file"):
            batchkit.start_simulator(state=default_state_path())
    finally:
        first.stop()
    third = batchkit.start_simulator(state=tmp_path / "mine.sqlite3")
    third.stop()
