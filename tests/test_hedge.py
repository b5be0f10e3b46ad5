"""The deadline hedge on the simulator's fast clock: a batch job with ``deadline=`` is split into
several batches; batches the simulator holds past the deadline are canceled in time by the job's
own worker, the rows they had not processed are answered through realtime (the simulator counts
messages apart from batch requests), the cost shows the split, and no row is merged twice."""

from __future__ import annotations

import datetime as dt

import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit.backends.limits import Limits, forget_learned_limits
from batchkit.display.progress import render_text, snapshot
from batchkit.engine.hedge import (
    LOCAL_REALTIME_RATE,
    LOCAL_SECONDS,
    deadline_at,
    plan_hedge,
    realtime_rate,
    settle_seconds,
)
from batchkit.engine.jobs import Job
from batchkit.errors import InvalidOptionError
from batchkit.simulator import Processing
from tests.conftest import frame, make_sim

# 20 requests of a batch at a time, 80 simulated seconds each: a batch of 100 needs 401 s, well past
# the deadline of 300 s; the clock runs 20× faster than the wall clock (a hedge test takes ~10 s)
SLOW = Processing(fixed_latency=1.0, per_request=80.0, concurrency=20, cancel_latency=0.5)
FAST = 20
ROWS = 400


@pytest.fixture(autouse=True)
def _default_limits():
    """Every in-process simulator has the same base URL: the hedge plans realtime by the default
    limits, not by what an earlier test's realtime answers taught this process."""
    forget_learned_limits()
    yield
    forget_learned_limits()


def _submit(sim, deadline, **options):
    return frame(ROWS).claude.submit(
        "Say {t}", output="a", client=sim.client(), deadline=deadline, poll_interval=0.02, progress=False, **options
    )


def _answers_once(job) -> None:
    out = job.result()
    assert out["a"].tolist() == [f"re:Say row {i}" for i in range(ROWS)]
    outcomes = job.outcomes()
    assert len(outcomes) == ROWS and set(outcomes["status"]) == {"succeeded"}


def test_a_job_whose_batches_run_past_the_deadline_ends_in_time_with_every_row_answered():
    sim = make_sim(processing=SLOW, time_scale=FAST)
    job = _submit(sim, deadline=300)
    # split into several batches, the deadline kept as an absolute time on the simulator's clock
    assert job.deadline is not None
    assert job.deadline.timestamp() == pytest.approx(sim.clock.timestamp() + 300, abs=5)
    assert "deadline" in render_text(snapshot(job)) and "go through realtime" in render_text(snapshot(job))
    job.wait(timeout=60)
    report = job.hedge
    assert report is not None and report.hedged and report.met, report
    _answers_once(job)
    # the batches were canceled part way: what they had processed is kept at batch price,
    # and only the rows that came back canceled went through realtime
    stats = sim.stats()
    assert stats["batches_created"] == 4 and stats["batch_requests_received"] == ROWS
    assert report.batches_canceled == 4 and stats["requests_canceled"] == report.rows_canceled > 0
    assert stats["messages_answered"] == report.answered_realtime == report.rows_canceled
    assert stats["requests_processed"] == report.answered_batch == ROWS - report.rows_canceled
    assert report.answered_twice == 0
    assert job.outcomes()["mode"].value_counts().to_dict() == {
        "batch": report.answered_batch,
        "realtime": report.answered_realtime,
    }
    assert job.mode == "realtime" and job.mode_reason.startswith("deadline hedge")
    # the cost shows the split: a realtime answer costs about twice a batch one
    cost = job.cost
    (batch_dollars, batch_n), (rt_dollars, rt_n) = cost.by_mode["batch"], cost.by_mode["realtime"]
    assert (batch_n, rt_n) == (report.answered_batch, report.answered_realtime)
    assert rt_dollars / rt_n == pytest.approx(2 * batch_dollars / batch_n, rel=0.1)
    assert report.cost == pytest.approx(cost.total)
    assert "by mode: batch" in str(cost) and "answered both" not in str(cost)
    # the progress view says what the hedge did
    text = render_text(snapshot(job))
    assert "through realtime" in text and "before the deadline" in text


def test_on_a_clock_120_times_faster_the_job_still_ends_before_the_deadline():
    """batchkit's own work (waking up, collecting, starting realtime) takes wall seconds, each 120
    simulated ones here: the plan keeps them in hand, and the worker sleeps until the cancel moment
    converted to wall time — with the default poll schedule (up to 1 wall second = 2 simulated
    minutes), as a user runs it."""
    sim = make_sim(processing=SLOW, time_scale=120)
    job = frame(ROWS).claude.submit("Say {t}", output="a", client=sim.client(), deadline=300, progress=False)
    job.wait(timeout=60)
    report = job.hedge
    assert report is not None and report.hedged and report.finished_at is not None
    assert report.finished_at <= report.deadline, f"{report.finished_at - report.deadline:.0f} simulated s late"
    assert report.met and job.deadline is not None
    assert report.finished_at <= sim.clock.timestamp()  # simulated seconds, read from the simulator
    _answers_once(job)
    assert job.outcomes()["mode"].isin(["batch", "realtime"]).all()


def test_the_plan_keeps_batchkits_own_wall_time_in_hand_at_the_clocks_rate():
    real = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0, settle_seconds=60.0)
    fast = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0, settle_seconds=60.0, clock_rate=120.0)
    assert real.margin == LOCAL_SECONDS and fast.margin == 120 * LOCAL_SECONDS
    # the rate limits bind on the real clock; batchkit's own pace (per wall second) on the fast one
    assert real.realtime_seconds(400) == 1.5 * 400 / 10.0
    assert fast.realtime_seconds(400) == pytest.approx(1.5 * 400 / (LOCAL_REALTIME_RATE / 120))
    assert fast.cancel_at(400) == pytest.approx(3_600 - 60 - 120 * LOCAL_SECONDS - fast.realtime_seconds(400))
    assert fast.wall_seconds(120.0) == 1.0 and real.wall_seconds(120.0) == 120.0
    with pytest.raises(InvalidOptionError, match="clock_rate"):
        plan_hedge(10, deadline=60, now=0.0, realtime_rate=1.0, clock_rate=0.0)


def test_a_job_that_finishes_before_the_deadline_never_hedges():
    sim = make_sim(processing=Processing.instant(), time_scale=20)
    job = _submit(sim, deadline=dt.timedelta(hours=1)).wait(timeout=30)
    report = job.hedge
    assert report is not None and report.met and not report.hedged
    assert report.batches_canceled == 0 and report.answered_realtime == 0 and report.answered_batch == ROWS
    stats = sim.stats()
    assert stats["batches_created"] == 4 and stats["messages_answered"] == 0
    assert job.mode == "batch" and set(job.outcomes()["mode"]) == {"batch"}
    _answers_once(job)
    assert "not needed" in render_text(snapshot(job))
    # the deadline is the job's: read back from the store, as a re-attached job sees it
    assert Job(job.job_id, store=job.store, client=None).deadline == job.deadline


def test_a_deadline_past_on_the_servers_clock_is_refused_before_any_call():
    """The simulator's clock is two hours ahead of the wall clock: a deadline an hour from now
    (wall) has passed there."""
    sim = make_sim(processing=Processing.instant(), start_time=dt.datetime.now(dt.UTC).timestamp() + 7200)
    in_an_hour = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(InvalidOptionError, match="has passed"):
        _submit(sim, deadline=in_an_hour)
    stats = sim.stats()
    assert (stats["batches.create"], stats["messages.create"]) == (0, 0)


def test_rows_answered_both_ways_are_counted_and_merged_once():
    """The cancel settles late (the simulator takes 100 s over it): at the last moment to wait,
    the rows of the batches still canceling go through realtime, and the ones the batches had
    processed come back from both."""
    slow_cancel = Processing(fixed_latency=1.0, per_request=80.0, concurrency=20, cancel_latency=100.0)
    sim = make_sim(processing=slow_cancel, time_scale=FAST)
    job = _submit(sim, deadline=300).wait(timeout=60)
    report = job.hedge
    assert report is not None and report.met, report
    _answers_once(job)
    stats = sim.stats()
    assert (
        report.answered_realtime
        == stats["messages_answered"]
        == ROWS - stats["requests_processed"] + report.answered_twice
    )
    assert report.answered_twice > 0 and report.answered_twice == report.answered_batch
    # both were paid and both are in the cost, which says so; each row is merged once
    assert job.cost.by_mode["realtime"][1] + job.cost.by_mode["batch"][1] == ROWS + report.answered_twice
    assert f"{report.answered_twice:,} requests answered both" in str(job.cost)
    assert "answered both ways" in str(report)


def test_auto_with_a_deadline_goes_realtime_when_realtime_meets_it_and_hedges_its_batches_otherwise():
    sim = make_sim(processing=Processing.instant(), time_scale=20)
    soon = _submit(sim, deadline=300, mode="auto").wait(timeout=30)
    assert soon.mode == "realtime" and "deadline" in soon.mode_reason and soon.hedge is None
    assert sim.stats()["batches_created"] == 0
    later = (
        frame(ROWS)
        .claude.submit(
            "Tell {t}",
            output="a",
            client=sim.client(),
            deadline=dt.timedelta(hours=3),
            mode="auto",
            poll_interval=0.02,
            progress=False,
        )
        .wait(timeout=30)
    )
    assert later.mode == "batch" and later.deadline is not None and later.hedge is not None
    assert sim.stats()["batches_created"] == 4 and not later.hedge.hedged


def test_a_job_sent_realtime_or_without_a_deadline_has_no_hedge():
    sim = make_sim(processing=Processing.instant(), time_scale=20)
    job = frame(5).claude.submit("Say {t}", output="a", client=sim.client(), progress=False).wait(timeout=30)
    assert job.deadline is None and job.hedge is None and "deadline" not in render_text(snapshot(job))


def test_the_plan_splits_the_job_and_cancels_when_realtime_just_has_time():
    plan = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0, settle_seconds=60.0)
    assert plan.chunk_size == 250
    assert plan.cancel_at(400) == 3_600 - 60 - 1.5 * 40 - LOCAL_SECONDS
    assert not plan.should_cancel(3_478.0, 400) and plan.should_cancel(3_479.0, 400)
    assert not plan.should_cancel(3_599.0, 0)  # nothing waiting: nothing to cancel
    assert plan.stop_waiting_at(400) == 3_600 - 60 - LOCAL_SECONDS
    # big jobs: as many batches as the 100,000-request limit needs
    assert plan_hedge(1_000_000, deadline=3_600, now=0.0, realtime_rate=100.0).chunk_size == 100_000
    assert plan_hedge(3, deadline=60, now=0.0, realtime_rate=1.0).chunk_size == 1
    assert settle_seconds(3_600) == 60.0 and settle_seconds(100) == 20.0


def test_the_realtime_rate_is_the_slowest_of_the_three_limits():
    limits = Limits(requests_per_minute=600, input_tokens_per_minute=60_000, output_tokens_per_minute=12_000)
    assert realtime_rate(limits, input_tokens=100, output_tokens=10) == 10.0  # requests bind
    assert realtime_rate(limits, input_tokens=1_000, output_tokens=10) == 1.0  # input tokens bind
    assert realtime_rate(limits, input_tokens=100, output_tokens=400) == 0.5  # output tokens bind
    assert realtime_rate(Limits(), input_tokens=100, output_tokens=10) == float("inf")


def test_deadlines_are_times_timedeltas_or_seconds_and_must_be_ahead():
    assert deadline_at(dt.timedelta(hours=1), now=100.0) == 3_700.0
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert deadline_at(at, now=0.0) == at.timestamp()
    with pytest.raises(InvalidOptionError, match="has passed"):
        deadline_at(-5, now=100.0)
    with pytest.raises(InvalidOptionError, match="datetime, a timedelta or seconds"):
        deadline_at("tomorrow", now=100.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="realtime_rate"):
        plan_hedge(10, deadline=60, now=0.0, realtime_rate=0.0)
