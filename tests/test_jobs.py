"""Job lifecycle in one process: retries, cancel, re-attach, interrupt, listing."""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
import warnings

import pandas as pd
import polars as pl
import pytest

import batchkit
from batchkit import BatchkitWarning, Job, JobNotFoundError
from batchkit.display.progress import snapshot
from batchkit.simulator import Faults, Processing, SimConfig, Simulator
from tests.conftest import frame, make_sim


def test_transient_failures_and_expiries_are_retried_until_every_row_succeeds():
    sim = make_sim(seed=7, faults=Faults(errored_rate={"api_error": 0.05, "overloaded_error": 0.02}, expired_rate=0.01))
    df = frame(400)
    job = df.claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    job.wait()
    outcomes = job.outcomes()
    assert (outcomes["status"] == "succeeded").all()
    assert outcomes["attempts"].max() >= 2  # some rows needed a second batch
    assert (outcomes["attempts"] == 1).sum() > 300
    assert job.to_frame()["response"].tolist() == [f"re:row {i}" for i in range(400)]
    assert sim.stats()["duplicate_custom_ids_answered"] == 0


def test_retries_stop_at_max_retries_and_invalid_requests_are_never_retried():
    sim = make_sim(seed=1, faults=Faults(errored_rate={"api_error": 1.0}))
    job = frame(5).claude.submit("{t}", client=sim.client(), poll_interval=0.01, max_retries=1)
    job.wait()
    outcomes = job.outcomes()
    assert (outcomes["status"] == "errored").all() and (outcomes["attempts"] == 2).all()
    assert sim.stats()["batches_created"] == 2


def test_retry_by_hand_resubmits_only_the_failed_rows():
    sim = make_sim(seed=2, faults=Faults(errored_rate={"invalid_request_error": 0.5}))
    df = frame(40)
    with pytest.warns(BatchkitWarning):
        df.claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    job = Job.load(batchkit.jobs()["job_id"].iloc[0], client=sim.client())
    failed = int((job.outcomes()["status"] == "errored").sum())
    assert failed > 5
    before = sim.stats()["batch_requests_received"]
    job.retry(statuses=["errored"])
    assert sim.stats()["batch_requests_received"] - before == failed
    assert (job.outcomes()["status"] == "errored").sum() < failed


def test_cancel_stops_the_batches_and_records_canceled_rows():
    sim = make_sim(processing=Processing(fixed_latency=0.0, per_request=60.0, concurrency=2), time_scale=100)
    job = frame(20).claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    while job.batches()["api_id"].isna().any():
        threading.Event().wait(0.01)
    job.cancel()
    outcomes = job.outcomes()
    assert job.status == "canceled"
    assert (outcomes["status"] == "canceled").sum() >= 16
    assert sim.stats()["batches.cancel"] == 1
    assert job.summary().by_status.get("pending", 0) == 0


def _ctrl_c_while_waiting(stop: threading.Event) -> None:
    """Press Ctrl-C (a simulated SIGINT) once the main thread is inside ``Job.wait``."""
    main = threading.main_thread().ident
    while not stop.is_set():
        frame_ = sys._current_frames().get(main)
        while frame_ is not None and frame_.f_code is not Job.wait.__code__:
            frame_ = frame_.f_back
        if frame_ is not None:
            _thread.interrupt_main()
            return
        time.sleep(0.005)


@pytest.fixture
def default_sigint():
    """Ctrl-C handled as in a plain Python process, whatever an earlier test left installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield previous
    signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_detaches_without_cancelling_and_reattaches(capsys, default_sigint):
    sim = make_sim(processing=Processing(fixed_latency=1.5, per_request=0.0))
    df = frame(10)
    stop = threading.Event()
    presser = threading.Thread(target=_ctrl_c_while_waiting, args=(stop,), daemon=True)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        df.claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    stop.set()
    assert "detached" in capsys.readouterr().err
    assert sim.stats()["batches.cancel"] == 0
    out = df.claude.batch("{t}", client=sim.client(), poll_interval=0.01)  # re-run re-attaches
    assert out["response"].notna().all()
    assert sim.stats()["batches_created"] == 1


def test_truncated_rows_are_rerun_with_more_tokens():
    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=lambda p: "word " * 40)
    df = pd.DataFrame({"t": ["a", "b"]})
    job = df.claude.submit("{t}", client=sim.client(), max_tokens=5, poll_interval=0.01)
    job.wait()
    assert (job.outcomes()["status"] == "truncated").all()
    job.retry(truncated=True, max_tokens=200)
    assert (job.outcomes()["status"] == "succeeded").all()
    assert job.to_frame()["response"].str.len().min() > 100


def test_editing_the_prompt_for_some_rows_sends_only_those():
    sim = make_sim()
    df = frame(30)
    df.claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    assert sim.stats()["batch_requests_received"] == 30
    df2 = pd.concat([df, pd.DataFrame({"t": ["new 1", "new 2"]})], ignore_index=True)
    df2.loc[0, "t"] = "edited"
    out = df2.claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    assert sim.stats()["batch_requests_received"] == 33
    assert out["response"].iloc[0] == "re:edited" and out["response"].iloc[-1] == "re:new 2"


def test_jobs_lists_every_job_newest_first_and_load_finds_them():
    sim = make_sim()
    frame(3).claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    frame(4).claude.batch("x {t}", client=sim.client(), poll_interval=0.01)
    listing = batchkit.jobs()
    assert listing["rows"].tolist() == [4, 3]
    assert (listing["succeeded"] == listing["rows"]).all() and (listing["status"] == "ended").all()
    job = Job.load(listing["job_id"].iloc[1], client=sim.client())
    assert job.to_frame()["response"].tolist() == ["re:row 0", "re:row 1", "re:row 2"]
    with pytest.raises(JobNotFoundError, match=r"batchkit\.jobs"):
        Job.load("job_nope")


# --------------------------------------------------------------------------- a refused create


def test_a_refused_create_ends_with_the_apis_message_and_the_fix_and_a_rerun_finishes():
    sim = make_sim(faults=Faults(schedule=(("batches.create", 1, 402),)))  # no credit, once
    df = frame(6)
    with pytest.raises(batchkit.APIRefusedError, match=r"402 billing_error: Simulated 402 fault.*add credit") as info:
        df.claude.batch("{t}", client=sim.client(), poll_interval=0.01, progress=False)
    assert info.value.status_code == 402 and info.value.error_type == "billing_error"
    job = Job.load(info.value.job_id)
    assert job.status == "failed" and sim.stats()["batches_created"] == 0
    view = snapshot(job)  # the progress view and the widget say so, in red
    assert view.style == "danger" and "refused" in view.state_label
    with pytest.raises(batchkit.APIRefusedError, match="re-run the same call"):
        job.wait()  # still failed, from the store: says so again rather than blocking
    out = df.claude.batch("{t}", client=sim.client(), poll_interval=0.01, progress=False)  # after the "fix"
    assert out["response"].tolist() == [f"re:row {i}" for i in range(6)]
    assert sim.stats()["batches_created"] == 1 and job.status == "ended"


def test_a_refusal_midway_keeps_what_came_back_and_retry_sends_only_the_rest():
    sim = make_sim(faults=Faults(schedule=(("batches.create", 2, 400),)))
    df = frame(10)
    job = df.claude.submit("{t}", client=sim.client(), poll_interval=0.01, chunk_size=4)
    with pytest.raises(batchkit.APIRefusedError, match="400 invalid_request_error"):
        job.wait(timeout=10)
    job.worker.done.wait(10)  # the worker still collects the batch that was created
    by_status = job.summary().by_status
    assert by_status["succeeded"] >= 3 and by_status["pending"] >= 3  # the refused batch's rows wait
    assert sim.stats()["batches_created"] == 1  # nothing created after the refusal
    job.retry(wait=False).wait(timeout=10)
    assert (job.outcomes()["status"] == "succeeded").all()
    assert sim.stats()["batch_requests_received"] == 10  # nothing sent twice


def test_cancel_gives_up_on_a_job_whose_create_was_refused():
    sim = make_sim(faults=Faults(schedule=(("batches.create", 1, 401),)))
    job = frame(3).claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    with pytest.raises(batchkit.APIRefusedError, match="check the API key"):
        job.wait(timeout=10)
    job.cancel()
    assert job.status == "canceled"
    assert (job.outcomes()["status"] == "canceled").all()
    assert sim.stats()["batches_created"] == 0


# --------------------------------------------------------------------------- a results download cut


def test_a_results_download_cut_once_is_read_again_and_the_call_returns():
    sim = make_sim(faults=Faults(schedule=(("batches.results", 1, "drop"),)))
    out = frame(30).claude.batch("{t}", client=sim.client(), poll_interval=0.01, progress=False)
    assert out["response"].tolist() == [f"re:row {i}" for i in range(30)]
    assert sim.stats()["batches.results"] == 2 and sim.stats()["batches_created"] == 1


def test_a_results_download_cut_every_time_stops_the_job_with_a_clear_error_and_a_rerun_collects():
    sim = make_sim(faults=Faults(schedule=(("batches.results", [1, 2, 3], "drop"),)))
    df = frame(30)
    with pytest.raises(batchkit.ResultsDownloadError) as info:
        df.claude.batch("{t}", client=sim.client(), poll_interval=0.01, progress=False)
    err = info.value
    assert isinstance(err, batchkit.BatchkitError) and isinstance(err, ConnectionError)
    message = str(err)
    for part in (
        f"job {err.job_id} stopped",
        f"results of batch {err.batch_id} could not be downloaded",
        "3 times in a row",
        "nothing was sent or paid again",
        "re-run the same call",
        ".retry()",
    ):
        assert part in message, part
    job = Job.load(err.job_id)
    assert job.status == "failed"  # not "running" with no one to collect it
    assert job.batches()["state"].tolist() == ["ended"]  # its answers wait at the API
    assert "results download cut" in snapshot(job).state_label
    with pytest.raises(batchkit.ResultsDownloadError, match="re-run the same call"):
        job.wait()  # from the store, in any process: says so again rather than blocking
    out = df.claude.batch("{t}", client=sim.client(), poll_interval=0.01, progress=False)  # the network is back
    assert out["response"].tolist() == [f"re:row {i}" for i in range(30)]
    assert job.status == "ended" and job.batches()["error"].isna().all()
    assert sim.stats()["batches_created"] == 1 and sim.stats()["batch_requests_received"] == 30  # nothing resent


# --------------------------------------------------------------------------- what the user is told


def _one_warning(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    mine = [w for w in caught if issubclass(w.category, BatchkitWarning)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    return result, mine[0]


def test_the_warning_names_the_apis_message_and_does_not_offer_a_retry_that_cannot_help():
    sim = make_sim(faults=Faults(errored_rate={"invalid_request_error": 1.0}))
    _, warning = _one_warning(lambda: frame(4).claude.batch("{t}", client=sim.client(), poll_interval=0.01))
    text = str(warning.message)
    assert warning.filename == __file__  # the user's line, not batchkit's
    assert "4 errored (invalid_request_error): 'Invalid request (simulated fault)'" in text
    assert "a retry would fail the same way" in text and "job.retry() resubmits" not in text


def test_the_warning_offers_retry_for_errors_a_retry_can_fix():
    sim = make_sim(faults=Faults(errored_rate={"overloaded_error": 1.0}))
    _, warning = _one_warning(
        lambda: frame(3).claude.batch("{t}", client=sim.client(), poll_interval=0.01, max_retries=0)
    )
    assert "3 errored (overloaded_error): 'Overloaded (simulated fault)'" in str(warning.message)
    assert "job.retry() resubmits them" in str(warning.message)


def test_skipped_rows_are_reported_as_skipped_with_the_reason_not_as_failed():
    sim = make_sim()
    df = pd.DataFrame({"t": ["a", None, "c"]})
    _, warning = _one_warning(lambda: df.claude.batch("{t}", client=sim.client(), poll_interval=0.01))
    text = str(warning.message)
    assert "1 skipped on purpose, not sent: missing value in column 't' (1)" in text
    assert "retry" not in text and "errored" not in text
    assert batchkit.jobs()[["failed", "skipped"]].iloc[0].tolist() == [0, 1]


def test_classify_and_extract_warn_at_the_callers_line():
    sim = make_sim(faults=Faults(errored_rate={"invalid_request_error": 1.0}))
    df = frame(2)
    run = {"client": sim.client(), "poll_interval": 0.01}
    _, warning = _one_warning(lambda: df.claude.classify("{t}", labels=["a", "b"], **run))
    assert warning.filename == __file__
    _, warning = _one_warning(lambda: df.claude.extract("{t}", schema={"x": int}, **run))
    assert warning.filename == __file__


def test_a_returned_frame_leads_back_to_its_job():
    sim = make_sim()
    out = frame(3).claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    job = Job.of(out)
    assert job.job_id == batchkit.jobs()["job_id"].iloc[0]
    assert Job.of(out["response"].head(2)) is job and Job.of(out[out["t"] != "row 0"].copy()) is job
    assert Job.of(job.outcomes()) is job
    assert "batchkit_job_id" not in frame(3).attrs  # the caller's frame is untouched
    with pytest.raises(JobNotFoundError, match=r"carries no batchkit job id.*batchkit\.jobs\(\)"):
        Job.of(pd.DataFrame({"t": ["x"]}))


def test_jobs_tells_two_jobs_of_the_same_output_apart_by_prompt_and_cost():
    sim = make_sim()
    frame(3).claude.batch("Summarise {t}", client=sim.client(), poll_interval=0.01)
    frame(3).claude.batch(
        "Translate into French, keeping every name as it is: {t}", client=sim.client(), poll_interval=0.01
    )
    listing = batchkit.jobs()
    assert listing["output"].tolist() == ["response", "response"]
    assert listing["prompt"].tolist() == ["Translate into French, keeping every name as it is: {t}", "Summarise {t}"]
    assert (listing["cost"] > 0).all()


def test_canceled_rows_can_be_sent_again():
    sim = make_sim(processing=Processing(fixed_latency=200.0, per_request=0.0), time_scale=100)  # 2 s
    job = frame(6).claude.submit("{t}", client=sim.client(), poll_interval=0.01, chunk_size=3)
    job.cancel()  # one batch may not even be created yet: its rows have no result at all
    assert job.status == "canceled" and (job.outcomes()["status"] == "canceled").all()
    job.retry(statuses=["canceled"], wait=False).wait(timeout=30)
    assert job.status == "ended" and (job.outcomes()["status"] == "succeeded").all()
    assert job.to_frame()["response"].tolist() == [f"re:row {i}" for i in range(6)]


def test_rows_waiting_in_another_jobs_refused_batch_are_sent_by_the_job_that_waits():
    refusing = make_sim(faults=Faults(slow=0.5, schedule=(("batches.create", 1, 402),)))
    working = make_sim()
    df = frame(4)
    first = df.claude.submit("{t}", output="a", client=refusing.client(), poll_interval=0.01)
    second = df.claude.submit("{t}", output="b", client=working.client(), poll_interval=0.01)
    assert second.batches().empty  # its rows ride in the first job's batch, still being created
    with pytest.raises(batchkit.APIRefusedError):
        first.wait(timeout=10)
    second.wait(timeout=10)  # not forever: it sends them itself
    assert (second.outcomes()["status"] == "succeeded").all()
    assert working.stats()["batch_requests_received"] == 4


def test_cancel_on_an_ended_job_leaves_it_ended(tmp_path):
    sim = make_sim()
    job = frame(3).claude.submit("{t}", client=sim.client(), store=tmp_path / "s.sqlite3", poll_interval=0.01).wait()
    assert job.cancel().status == "ended"
    assert Job.load(job.job_id, store=tmp_path / "s.sqlite3").status == "ended"
    assert job.to_frame()["response"].tolist() == ["re:row 0", "re:row 1", "re:row 2"]


def test_reading_jobs_never_creates_a_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHKIT_STORE", str(tmp_path / "default" / "jobs.sqlite3"))
    assert batchkit.jobs().empty and not (tmp_path / "default").exists()
    with pytest.raises(batchkit.StoreNotFoundError, match="no job store"):
        batchkit.jobs(tmp_path / "elsewhere.sqlite3")
    with pytest.raises(batchkit.StoreNotFoundError):
        Job.load("job_nope", store=tmp_path / "elsewhere.sqlite3")
    assert not (tmp_path / "elsewhere.sqlite3").exists()


def test_retry_after_the_job_ended_runs_a_second_worker_to_the_end():
    # A second run of the worker in the same process (the first ended the job) polls as the first.
    sim = make_sim(
        seed=3,
        faults=Faults(errored_rate={"invalid_request_error": 0.3}),
        processing=Processing(fixed_latency=0.3, per_request=0.0),
    )
    job = frame(40).claude.submit("{t}", client=sim.client(), poll_interval=None).wait()  # polls a few times
    failed = job.summary().failed
    assert failed and job.status == "ended"
    before = sim.stats()["batch_requests_received"]
    job.retry(statuses=["errored"])
    assert sim.stats()["batch_requests_received"] - before == failed and job.status == "ended"


def test_a_job_over_plain_columns_needs_no_frame_and_gives_each_rows_answer_and_status():
    from batchkit.engine import calls

    sim = make_sim(
        seed=3,
        faults=Faults(errored_rate={"invalid_request_error": 1.0}),
        time_scale=100,
        processing=Processing(fixed_latency=300.0, per_request=0.0),
    )  # 3 s
    texts = ["a", None, "b", "a"]
    call = calls.prepare(
        {"t": pl.Series(texts)}, "{t}", output="o", client=sim.client(), poll_interval=0.01, max_retries=0
    )
    job = calls.submit(call)
    assert job.frame is None
    assert job.statuses().tolist() == ["pending", "skipped", "pending", "pending"]
    assert job.answers().tolist() == [None] * 4
    job.wait(timeout=30)
    assert job.statuses().tolist() == ["errored", "skipped", "errored", "errored"]
    assert job.answers().tolist() == [None] * 4  # a failed row has no answer; its status says why

    ok = make_sim()
    job = calls.submit(calls.prepare({"t": texts}, "{t}", output="a", client=ok.client(), poll_interval=0.01))
    job.wait(timeout=30)
    assert job.answers().tolist() == ["re:a", None, "re:b", "re:a"]
    assert job.statuses().tolist() == ["succeeded", "skipped", "succeeded", "succeeded"]
    assert job.output_values() == {"a": ["re:a", None, "re:b", "re:a"]}
    assert ok.stats()["batch_requests_received"] == 2  # a repeated row is one request
    out = job.to_frame()  # no frame to merge into: the answers on a row-number index
    assert out.index.equals(pd.RangeIndex(4, name="row")) and out["a"].tolist()[::2] == ["re:a", "re:b"]
    again = pd.DataFrame({"t": texts}).claude.submit("{t}", output="a", client=ok.client(), poll_interval=0.01)
    assert again.job_id == job.job_id  # the same rows from pandas are the same job: nothing sent again
    assert ok.stats()["batch_requests_received"] == 2 and ok.stats()["batches_created"] == 1
