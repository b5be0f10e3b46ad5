"""The deadline hedge on the simulator's fast clock: batches the simulator holds past the deadline
are canceled in time, the rows they had not processed are answered through realtime, the cost
shows the split, and no row is merged twice."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit.backends.ratelimit import Limits
from batchkit.backends.realtime import RealtimeSender
from batchkit.errors import InvalidOptionError
from batchkit.hedge import (
    HedgePlan,
    cancel_running,
    deadline_at,
    hedge_report,
    plan_hedge,
    realtime_rate,
    rows_waiting,
    run_with_deadline,
    send_unanswered,
)
from batchkit.simulator import Processing
from tests.conftest import frame, make_sim

# 20 requests of a batch at a time, 20 simulated seconds each: a batch of 100 needs 101 s;
# the clock runs 10× faster than the wall clock
SLOW = Processing(fixed_latency=1.0, per_request=20.0, concurrency=20, cancel_latency=0.5)
ROWS = 400


def _submit(sim, plan: HedgePlan):
    return frame(ROWS).claude.submit("Say {t}", output="a", client=sim.client(), chunk_size=plan.chunk_size,
                                     poll_interval=0.05, progress=False)


def test_a_job_whose_batches_run_past_the_deadline_ends_in_time_with_every_row_answered():
    sim = make_sim(processing=SLOW, time_scale=10)
    clock = sim.clock.timestamp
    plan = plan_hedge(ROWS, deadline=100, now=clock(), realtime_rate=20.0, settle_seconds=30.0)
    assert plan.chunk_size == 100
    job = _submit(sim, plan)
    report = run_with_deadline(job, plan, RealtimeSender(sim.client()), clock=clock, poll=0.02)
    # every row answered, by the deadline, each once
    assert report.met, report
    out = job.result()
    assert out["a"].tolist() == [f"re:Say row {i}" for i in range(ROWS)]
    assert set(job.outcomes()["status"]) == {"succeeded"}
    # the batches were canceled part way: what they had processed is kept at batch price,
    # and only the rows that came back canceled went through realtime
    stats = sim.stats()
    assert report.batches_canceled == 4 and stats["requests_canceled"] == report.rows_canceled > 0
    assert report.answered_realtime == report.rows_canceled == stats["messages_answered"]
    assert report.answered_batch + report.answered_realtime == ROWS and report.answered_twice == 0
    # the cost shows the split: a realtime answer costs about twice a batch one
    assert report.cost_batch > 0 and report.cost_realtime > 0
    per_batch_row = report.cost_batch / report.answered_batch
    per_realtime_row = report.cost_realtime / report.answered_realtime
    assert per_realtime_row == pytest.approx(2 * per_batch_row, rel=0.1)
    assert "through realtime" in str(report) and "before the deadline" in str(report)


def test_a_job_that_finishes_early_sends_nothing_through_realtime():
    sim = make_sim(processing=Processing.instant(), time_scale=20)
    clock = sim.clock.timestamp
    plan = plan_hedge(ROWS, deadline=3_600, now=clock(), realtime_rate=20.0)
    job = _submit(sim, plan)
    report = run_with_deadline(job, plan, RealtimeSender(sim.client()), clock=clock, poll=0.02)
    assert report.met and report.batches_canceled == 0 and report.answered_realtime == 0
    assert report.answered_batch == ROWS and sim.stats()["messages_answered"] == 0


def test_rows_answered_both_ways_are_counted_and_merged_once():
    """The deadline came while the cancel was settling: every row went realtime at once, and
    the rows the batches had processed are answered twice."""
    sim = make_sim(processing=SLOW, time_scale=10)
    clock = sim.clock.timestamp
    plan = plan_hedge(ROWS, deadline=600, now=clock(), realtime_rate=20.0)
    job = _submit(sim, plan)
    give_up = time.monotonic() + 10
    while job.store.batches(job_id=job.job_id, states=("submitting",)) and time.monotonic() < give_up:
        time.sleep(0.01)  # until the worker has created the batches
    assert rows_waiting(job) == ROWS
    sim.advance(30)  # one wave of 20 done per batch, the next in flight
    assert len(cancel_running(job)) == 4
    sent = send_unanswered(job, RealtimeSender(sim.client()), include_waiting=True)
    assert sent == ROWS  # nothing had come back yet
    job.wait(timeout=30)
    report = hedge_report(job, deadline=plan.deadline, finished_at=clock(), batches_canceled=4)
    assert report.answered_realtime == ROWS
    assert report.answered_twice == report.answered_batch == 4 * 40  # processed, and in flight at the cancel
    assert "answered both ways" in str(report)
    out = job.result()
    assert len(out) == ROWS and out["a"].tolist() == [f"re:Say row {i}" for i in range(ROWS)]


def test_the_plan_splits_the_job_and_cancels_when_realtime_just_has_time():
    plan = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0, settle_seconds=60.0)
    assert plan.chunk_size == 250
    assert plan.cancel_at(400) == 3_600 - 60 - 1.5 * 40
    assert not plan.should_cancel(3_479.0, 400) and plan.should_cancel(3_480.0, 400)
    assert not plan.should_cancel(3_599.0, 0)  # nothing waiting: nothing to cancel
    assert plan.stop_waiting_at(400) == 3_600 - 60
    # big jobs: as many batches as the 100,000-request limit needs
    assert plan_hedge(1_000_000, deadline=3_600, now=0.0, realtime_rate=100.0).chunk_size == 100_000
    assert plan_hedge(3, deadline=60, now=0.0, realtime_rate=1.0).chunk_size == 1


def test_the_realtime_rate_is_the_slowest_of_the_three_limits():
    limits = Limits(requests_per_minute=600, input_tokens_per_minute=60_000, output_tokens_per_minute=12_000)
    assert realtime_rate(limits, input_tokens=100, output_tokens=10) == 10.0  # requests bind
    assert realtime_rate(limits, input_tokens=1_000, output_tokens=10) == 1.0  # input tokens bind
    assert realtime_rate(limits, input_tokens=100, output_tokens=400) == 0.5  # output tokens bind
    assert realtime_rate(Limits(), input_tokens=100, output_tokens=10) == float("inf")


def test_deadlines_are_times_timedeltas_or_seconds_and_must_be_ahead():
    assert deadline_at(dt.timedelta(hours=1), now=100.0) == 3_700.0
    at = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert deadline_at(at, now=0.0) == at.timestamp()
    with pytest.raises(InvalidOptionError, match="has passed"):
        deadline_at(-5, now=100.0)
    with pytest.raises(InvalidOptionError, match="datetime, a timedelta or seconds"):
        deadline_at("tomorrow", now=100.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="realtime_rate"):
        plan_hedge(10, deadline=60, now=0.0, realtime_rate=0.0)
