"""Realtime jobs that die or are stopped mid-run lose only the requests on the wire.

The simulator runs in its own process with a realistic latency for ``POST /v1/messages``; the
client runs in child processes that are SIGKILLed right after an answer group is stored
(``BATCHKIT_CRASH_AT=realtime_stored``, as a dead kernel would) or interrupted with Ctrl-C.
"""

from __future__ import annotations

import signal
import textwrap
import time

import pytest

from batchkit.simulator import spawn
from tests.conftest import run_script, start_script, stored_answers

pytestmark = pytest.mark.slow

ROWS = 150

CHILD = textwrap.dedent(
    """
    import signal, sys
    import anthropic, pandas as pd
    import batchkit
    # Ctrl-C raises KeyboardInterrupt, as in a notebook, even when the tests were started in the
    # background (a shell then starts them with SIGINT ignored, and the child inherits that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    base_url, store = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    df = pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)]})
    print("STARTED", flush=True)
    out = df.claude.batch("Echo {t}", client=client, store=store, mode="realtime", progress=False)
    print("ANSWERED", int(out["response"].notna().sum()), batchkit.Job.of(out).mode)
    """
).replace("ROWS", str(ROWS))


def run_child(base_url, store, crash_at=None, timeout=90):
    return run_script(CHILD, base_url, store, crash_at=crash_at, timeout=timeout)


def _spawn():
    # About the API's latency (0.6 s to the first token, 80 tokens/s) and a modest request limit,
    # so that the run lasts a few seconds and is mid-way when it is killed.
    return spawn(extra_args=["--latency", "typical", "--rpm", "1500"])


def test_a_realtime_job_killed_mid_run_resends_nothing_it_had_stored(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    with _spawn() as sim:
        crashed = run_child(sim.base_url, store, crash_at="realtime_stored")
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        kept = stored_answers(store)
        assert 0 < kept < ROWS
        sim.reset_stats()
        resumed = run_child(sim.base_url, store)
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS} realtime" in resumed.stdout
        stats = sim.stats()
    # Only what had no stored answer was sent again; every row ends answered.
    assert stats["messages_answered"] == ROWS - kept
    assert stats["batches_created"] == 0
    assert stored_answers(store) == ROWS


def test_ctrl_c_stops_sending_keeps_what_came_back_and_a_rerun_sends_the_rest(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    with _spawn() as sim:
        child = start_script(CHILD, sim.base_url, store)
        assert child.stdout is not None and child.stdout.readline().startswith("STARTED")
        deadline = time.monotonic() + 30
        while sim.stats()["messages_answered"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        assert child.returncode != 0
        assert "stopped sending job" in err and "Re-run the cell" in err
        sent = sim.stats()["messages.create"]
        time.sleep(1.0)
        assert sim.stats()["messages.create"] == sent  # nothing more goes out
        kept = stored_answers(store)
        answered = sim.stats()["messages_answered"]
        assert 20 <= kept == answered < ROWS  # every answer that came back is in the store
        sim.reset_stats()
        resumed = run_child(sim.base_url, store)
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS} realtime" in resumed.stdout
        assert sim.stats()["messages_answered"] == ROWS - kept
