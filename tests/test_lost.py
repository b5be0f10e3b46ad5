"""A batch the API no longer knows (404) never bricks the job, its rows or the store.

The API forgets a batch when it is deleted, when its results expire (29 days), when the key
belongs to another workspace — or, on the simulator, when the process that served it died. Here
a second simulator (with none of the first one's batches) stands in for that API.
"""

from __future__ import annotations

import time

import pytest

import batchkit
from batchkit import BatchLostError, CancelFailedError, Job
from batchkit.simulator import Processing
from tests.conftest import frame, make_sim


def _slow():
    return make_sim(processing=Processing(fixed_latency=3600.0, per_request=0.0))


def _created(job: Job, timeout: float = 60.0) -> None:  # a state, waited for: long only when the machine is loaded
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.batches()["api_id"].notna().all() and len(job.batches()):
            return
        time.sleep(0.01)
    raise AssertionError("the batches were never created")


def test_a_forgotten_batch_ends_lost_says_what_it_costs_and_a_rerun_sends_its_rows():
    first = _slow()
    df = frame(30)
    job = df.claude.submit("{t}", client=first.client(), poll_interval=0.01, chunk_size=10)
    _created(job)
    forgetful = make_sim()  # the same API, without the batches the first one held
    with pytest.raises(BatchLostError) as caught:
        Job.load(job.job_id, client=forgetful.client()).wait(timeout=30)
    error = caught.value
    assert error.job_id == job.job_id and error.rows == 30
    message = str(error)
    assert "no longer knows 3 of its batches (msgbatch_" in message and "30 rows have no answer" in message
    assert "sending them again costs about $" in message and ".retry()" in message
    assert list(job.batches()["state"]) == ["lost"] * 3
    assert job.status == "failed"

    # The same call again (e.g. the cell re-run) sends the lost rows: nothing was blocked.
    out = df.claude.batch("{t}", client=forgetful.client(), poll_interval=0.01, chunk_size=10, progress=False)
    assert out["response"].tolist() == [f"re:row {i}" for i in range(30)]
    assert forgetful.stats()["batch_requests_received"] == 30
    assert job.status == "ended"


def test_a_404_is_acted_on_only_by_the_owner_of_the_batch_or_whoever_takes_it_over():
    import os
    import socket
    import subprocess
    import sys

    first = _slow()
    job = frame(10).claude.submit("{t}", client=first.client(), poll_interval=0.01)
    _created(job)
    unit = int(job.batches()["id"][0])
    # Another live process owns it (e.g. a second notebook on its own simulator, or another key).
    job.store.update_batch(unit, owner=f"{socket.gethostname()}:{os.getppid()}:other")
    elsewhere = make_sim()
    with pytest.raises(TimeoutError):
        Job.load(job.job_id, client=elsewhere.client()).wait(timeout=0.5)
    assert list(job.batches()["state"]) == ["in_progress"]  # not lost: its owner may still collect it
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    job.store.update_batch(unit, owner=f"{socket.gethostname()}:{child.pid}:dead")  # now its owner is gone
    with pytest.raises(BatchLostError):
        job.wait(timeout=30)
    assert list(job.batches()["state"]) == ["lost"]


def test_a_job_of_one_api_is_never_polled_through_the_other():
    from batchkit import StoreError

    first = _slow()
    job = frame(6).claude.submit("{t}", client=first.client(), poll_interval=0.01)
    _created(job)
    job.cancel()
    with job.store._atomic() as conn:  # as if its batches were at Anthropic
        conn.execute("UPDATE meta SET value = 'Anthropic API' WHERE name = 'backend'")
        conn.execute("UPDATE jobs SET status = 'running'")
        conn.execute("UPDATE batches SET state = 'in_progress'")
    with pytest.raises(StoreError, match="holds answers from the Anthropic API"):
        Job.load(job.job_id, client=make_sim().client()).wait(timeout=10)
    assert list(job.batches()["state"]) == ["in_progress"]  # not lost: it was never asked about


def test_another_call_over_the_same_texts_is_not_blocked_by_a_lost_batch():
    first = _slow()
    job = frame(10).claude.submit("{t}", client=first.client(), poll_interval=0.01)
    _created(job)
    forgetful = make_sim()
    with pytest.raises(BatchLostError):
        Job.load(job.job_id, client=forgetful.client()).wait(timeout=30)
    out = frame(12).claude.batch("{t}", client=forgetful.client(), poll_interval=0.01, progress=False)
    assert out["response"].tolist() == [f"re:row {i}" for i in range(12)]
    assert forgetful.stats()["batch_requests_received"] == 12


def test_retry_sends_the_rows_of_a_lost_batch():
    first = _slow()
    job = frame(8).claude.submit("{t}", client=first.client(), poll_interval=0.01)
    _created(job)
    forgetful = make_sim()
    job = Job.load(job.job_id, client=forgetful.client())
    with pytest.raises(BatchLostError):
        job.wait(timeout=30)
    job.retry()
    assert job.status == "ended"
    assert job.to_frame()["response"].tolist() == [f"re:row {i}" for i in range(8)]


def test_cancel_of_a_forgotten_batch_marks_it_lost_and_cancels_the_job():
    first = _slow()
    job = frame(8).claude.submit("{t}", client=first.client(), poll_interval=0.05)
    _created(job)
    job = Job.load(job.job_id, client=make_sim().client())
    job.cancel()
    assert job.status == "canceled"
    assert list(job.batches()["state"]) == ["lost"]


def test_a_cancel_that_cannot_reach_the_api_changes_nothing():
    import anthropic

    first = _slow()
    job = frame(8).claude.submit("{t}", client=first.client(), poll_interval=0.05)
    _created(job)
    unreachable = anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key="sk-sim-test", max_retries=0)
    job = Job.load(job.job_id, client=unreachable)
    with pytest.raises(CancelFailedError, match="Nothing was changed"):
        job.cancel()
    assert job.status == "running"
    assert list(job.batches()["state"]) == ["in_progress"]
    Job.load(job.job_id, client=first.client()).cancel()  # once the API answers again, the cancel goes through
    assert job.status == "canceled"


def test_an_estimate_before_resuming_counts_what_is_already_sent_and_paid_for():
    first = _slow()
    df = frame(30)
    df.claude.submit("{t}", client=first.client(), poll_interval=0.01, chunk_size=10)
    half = frame(40)  # the same 30 rows and 10 new ones
    job = Job.load(batchkit.jobs().iloc[0]["job_id"])
    _created(job)
    estimate = half.claude.estimate("{t}", client=first.client())
    assert estimate.in_flight == 30 and estimate.requests == 10
    assert "30 in batches already sent: paid for, not sent again" in str(estimate)
    assert df.claude.estimate("{t}", client=first.client())["batch"].upper_bound == 0
    job.cancel()
