"""Ownership across processes: every unit of work has one owner, so no row is paid twice.

Several processes (notebooks, scripts, a kernel restarted while the old one is still alive) run
the same call on one store at the same time, or one after another while the first is still
sending. The simulator runs in its own process; its counters say what was paid.
"""

from __future__ import annotations

import signal
import textwrap
import time

import pytest

from batchkit.simulator import Processing, spawn
from tests.conftest import run_script, start_script, stored_answers

pytestmark = pytest.mark.slow

ROWS = 60

CHILD = textwrap.dedent(
    """
    import sys
    import anthropic, pandas as pd
    import batchkit
    base_url, store, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    df = pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)]})
    print("STARTED", flush=True)
    out = df.claude.batch("Echo {t}", client=client, store=store, mode=mode, progress=False,
                          poll_interval=0.05, chunk_size=25)
    print("ANSWERED", int(out["response"].notna().sum()), flush=True)
    """
).replace("ROWS", str(ROWS))


def _start(sim, store, mode):
    return start_script(CHILD, sim.base_url, store, mode)


@pytest.mark.parametrize("mode", ["realtime", "batch"])
@pytest.mark.parametrize(("processes", "stagger"), [(2, 0.0), (4, 0.0), (4, 0.3)])
def test_processes_running_the_same_call_pay_every_row_once_and_all_return_every_answer(
    tmp_path, mode, processes, stagger
):
    store = str(tmp_path / "jobs.sqlite3")
    # Each answer takes 0.4 s: the processes overlap for the whole run, at once or staggered.
    with spawn(processing=Processing(fixed_latency=0.4, per_request=0.0), extra_args=["--latency", "0.4,0"]) as sim:
        procs = []
        for _ in range(processes):
            procs.append(_start(sim, store, mode))
            time.sleep(stagger)
        try:
            outputs = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                p.kill()
        stats = sim.stats()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert f"ANSWERED {ROWS}" in out, (out, err)
    if mode == "realtime":
        assert stats["messages_answered"] == ROWS  # every row paid once, whoever sent it
        assert stats["batches_created"] == 0
    else:
        assert stats["batch_requests_received"] == ROWS
        assert stats["batches_created"] == 3
        assert stats["messages_answered"] == 0


REALTIME_CHILD = CHILD.replace("mode=mode", 'mode="realtime"')


@pytest.mark.parametrize("point", ["after_intent", "after_create", "realtime_stored", "polling"])
def test_a_realtime_call_killed_at_any_point_pays_twice_only_what_was_in_flight(tmp_path, point):
    store = str(tmp_path / "jobs.sqlite3")
    with spawn(extra_args=["--latency", "0.3,0"]) as sim:
        crashed = run_script(CHILD, sim.base_url, store, "realtime", crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        time.sleep(0.5)  # what was on the wire when the process died is answered (and paid) by now
        paid_before = sim.stats()["messages_answered"]
        kept = stored_answers(store)
        assert kept <= paid_before
        sim.reset_stats()
        resumed = run_script(CHILD, sim.base_url, store, "realtime")
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS}" in resumed.stdout
        paid_after = sim.stats()["messages_answered"]
    # The resumed run sends exactly the rows with no stored answer; what was paid twice is only
    # what the dead process had on the wire (answered by the API, never stored).
    assert paid_after == ROWS - kept
    if point == "after_intent":
        assert paid_before == 0
    if point == "realtime_stored":
        assert kept > 0


def test_a_cancel_from_another_process_stops_the_realtime_unit_its_owner_sends(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    # About the API's latency and a modest request limit: the run lasts several seconds.
    with spawn(extra_args=["--latency", "typical", "--rpm", "20"]) as sim:
        child = _start(sim, store, "realtime")
        try:
            assert child.stdout is not None and child.stdout.readline().startswith("STARTED")
            deadline = time.monotonic() + 30
            while sim.stats()["messages_answered"] < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            import anthropic

            import batchkit

            job_id = batchkit.jobs(store).iloc[0]["job_id"]
            with anthropic.Anthropic(base_url=sim.base_url, api_key="sk-sim-test") as client:
                batchkit.Job.load(job_id, store=store, client=client).cancel()
            child.communicate(timeout=60)
        finally:
            child.kill()
        sent = sim.stats()["messages.create"]
        time.sleep(1.0)
        assert sim.stats()["messages.create"] == sent  # the owner stopped sending
        answered = sim.stats()["messages_answered"]
    assert answered < ROWS
    assert stored_answers(store) == answered  # every answer paid for was kept
    assert batchkit.jobs(store).iloc[0]["status"] == "canceled"
