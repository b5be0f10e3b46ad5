"""Durable jobs: SIGKILL at every point of the lifecycle, then resume from a fresh process.

The simulator runs in its own process (as Anthropic's API would), the client in child
processes that die exactly where a killed kernel would (``BATCHKIT_CRASH_AT``).
"""

from __future__ import annotations

import signal
import textwrap

import pytest

from batchkit.simulator import Processing, spawn
from tests.conftest import run_script, start_script

pytestmark = pytest.mark.slow

ROWS = 120
CHUNK = 50  # → 3 batches

CHILD = (
    textwrap.dedent(
        """
    import sys
    import anthropic, pandas as pd
    import batchkit
    base_url, store = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    df = pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)] + ["row 0", "row 1"]})
    out = df.claude.batch("Echo {t}", client=client, store=store, poll_interval=0.05, chunk_size=CHUNK)
    job = batchkit.jobs(store).iloc[0]
    print("ANSWERED", int(out["response"].notna().sum()), job["job_id"])
    """
    )
    .replace("ROWS", str(ROWS))
    .replace("CHUNK", str(CHUNK))
)


def run_child(base_url, store, crash_at=None, timeout=90):
    return run_script(CHILD, base_url, store, crash_at=crash_at, timeout=timeout)


@pytest.mark.parametrize("point", ["after_intent", "after_create", "polling", "streaming", "merging"])
def test_killed_at_any_point_resumes_without_paying_twice(tmp_path, point):
    store = str(tmp_path / "jobs.sqlite3")
    with spawn(processing=Processing(fixed_latency=0.3, per_request=0.0)) as sim:
        crashed = run_child(sim.base_url, store, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        resumed = run_child(sim.base_url, store)
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS + 2}" in resumed.stdout
        stats = sim.stats()
    assert stats["batches_created"] == 3  # no batch created twice
    assert stats["batch_requests_received"] == ROWS  # no request sent twice (duplicates sent once)
    assert stats["duplicate_custom_ids_answered"] == 0


def test_two_processes_running_the_same_call_do_not_submit_twice(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    with spawn(processing=Processing(fixed_latency=0.5, per_request=0.0)) as sim:
        procs = [start_script(CHILD, sim.base_url, store) for _ in range(2)]
        outputs = [p.communicate(timeout=90) for p in procs]
        stats = sim.stats()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert f"ANSWERED {ROWS + 2}" in out
    assert stats["batches_created"] == 3
    assert stats["batch_requests_received"] == ROWS


def test_injected_faults_end_with_every_row_succeeded_after_automatic_retries(tmp_path):
    import anthropic
    import pandas as pd

    import batchkit
    from batchkit.simulator import Faults

    faults = Faults(errored_rate={"api_error": 0.05, "overloaded_error": 0.02}, expired_rate=0.01)
    with (
        spawn(processing=Processing.instant(), faults=faults, seed=11) as sim,
        anthropic.Anthropic(base_url=sim.base_url, api_key="sk-sim-test") as client,
    ):
        df = pd.DataFrame({"t": [f"row {i}" for i in range(1000)]})
        job = df.claude.submit(
            "{t}", client=client, store=str(tmp_path / "s.sqlite3"), poll_interval=0.05, max_retries=3
        ).wait()  # the draws are seeded: this run is the same every time
        stats = sim.stats()
    outcomes = job.outcomes()
    assert (outcomes["status"] == "succeeded").all()
    assert outcomes["attempts"].value_counts().to_dict().get(2, 0) > 40  # ~8% needed a second batch
    assert stats["duplicate_custom_ids_answered"] == 0
    assert isinstance(job, batchkit.Job)
