"""mode="batch" | "realtime" | "auto": one call, one store, either backend.

On the in-process simulator with a latency model for ``POST /v1/messages`` (``start_simulator``
and ``make_sim`` answer at once unless told otherwise), what a user notices: a sample in
realtime comes back in about one request's latency; ``auto`` chooses by the job's size and
says why; answers are reused across modes; each answer is priced at the mode it was paid at.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

import batchkit
from batchkit import APIRefusedError, InvalidOptionError, SpendLimitError
from batchkit.backends.limits import forget_learned_limits
from batchkit.display.progress import render_html, render_line, render_text, snapshot
from batchkit.simulator import Latency, Processing, RateLimits, SimConfig, Simulator, SpendLimit
from tests.conftest import frame, make_sim

LATENCY = Latency(first_token=1.0)
"""Every realtime answer takes one second: a sample of 20 in realtime should take about that."""


@pytest.fixture(autouse=True)
def _default_mode_restored():
    forget_learned_limits()  # every in-process simulator has the same base URL
    yield
    batchkit.set_default_mode(None)
    forget_learned_limits()


def _slow_batches():
    """Batches that take 30 s, realtime answers that take 1 s."""
    return make_sim(latency=LATENCY, processing=Processing(fixed_latency=30.0, per_request=0.0))


def test_a_sample_in_realtime_returns_in_about_one_requests_latency():
    sim = _slow_batches()
    started = time.monotonic()
    out = frame(20).claude.batch("Say {t}", mode="realtime", client=sim.client(), progress=False)
    took = time.monotonic() - started
    assert out["response"].tolist() == [f"re:Say row {i}" for i in range(20)]
    assert 1.0 <= took < 3.0, took  # one request's latency (1 s), not a batch's (30 s)
    stats = sim.stats()
    assert stats["messages_answered"] == 20 and stats["batches_created"] == 0
    job = batchkit.Job.of(out)
    assert job.mode == "realtime" and "asked" in job.mode_reason
    assert set(job.outcomes()["mode"]) == {"realtime"}


def test_auto_picks_realtime_for_20_rows_and_batch_for_5000_and_says_why():
    sim = make_sim(latency=Latency(first_token=0.2))
    few = frame(20).claude.submit("Say {t}", mode="auto", client=sim.client()).wait()
    assert few.mode == "realtime"
    assert "20 requests to send, fewer than 100" in few.mode_reason
    assert "realtime — auto: 20 requests" in render_text(snapshot(few))
    many = frame(5000).claude.submit("Echo {t}", mode="auto", client=sim.client()).wait()
    assert many.mode == "batch"
    assert "5,000 requests to send (≥ 100)" in many.mode_reason and "half the price" in many.mode_reason
    assert 'data-mode="batch"' in render_html(snapshot(many))
    stats = sim.stats()
    assert stats["messages_answered"] == 20 and stats["batch_requests_received"] == 5000


def test_realtime_answers_are_reused_by_a_later_batch_of_the_whole_frame():
    sim = make_sim(latency=Latency(first_token=0.1))
    df = frame(100)
    sample = df.head(20).claude.batch("Say {t}", mode="realtime", client=sim.client(), progress=False)
    whole = df.claude.batch("Say {t}", client=sim.client(), progress=False)  # mode="batch", the default
    assert whole["response"].head(20).tolist() == sample["response"].tolist()
    assert whole["response"].tolist() == [f"re:Say row {i}" for i in range(100)]
    stats = sim.stats()
    assert stats["messages_answered"] == 20 and stats["batch_requests_received"] == 80  # only the rest
    job = batchkit.Job.of(whole)
    outcomes = job.outcomes()
    assert outcomes["mode"].tolist() == ["realtime"] * 20 + ["batch"] * 80
    assert (outcomes["cost"].head(20) == 0).all()  # paid by the sample's job
    assert job.cost.requests_reused == 20 and job.cost.requests_paid == 80


def test_the_cost_splits_by_mode_at_standard_and_batch_prices():
    sim = make_sim()
    df = frame(10)
    realtime = batchkit.Job.of(df.claude.batch("Say {t}", mode="realtime", client=sim.client(), progress=False))
    batch = batchkit.Job.of(df.claude.batch("Say {t}!", client=sim.client(), progress=False))
    rt, bt = realtime.cost, batch.cost
    assert set(rt.by_mode) == {"realtime"} and set(bt.by_mode) == {"batch"}
    assert rt.by_mode["realtime"][1] == 10
    assert rt.total == pytest.approx(rt.standard)  # realtime pays the standard price
    assert "by mode: realtime $" in str(rt)
    assert realtime.outcomes()["cost"].sum() == pytest.approx(rt.total)
    per_answer_rt = rt.total / rt.requests_paid
    per_answer_batch = bt.total / bt.requests_paid
    assert per_answer_batch < per_answer_rt  # half price, on prompts one character longer
    listing = batchkit.jobs().set_index("job_id")
    assert listing.loc[realtime.job_id, "mode"] == "realtime" and listing.loc[batch.job_id, "mode"] == "batch"
    assert listing.loc[realtime.job_id, "batches"] == 1  # one realtime run, however many answer groups
    assert listing.loc[realtime.job_id, "cost"] == pytest.approx(rt.total)


def test_a_default_mode_for_the_notebook(monkeypatch):
    sim = make_sim()
    batchkit.set_default_mode("realtime")
    assert batchkit.default_mode() == "realtime"
    job = batchkit.Job.of(frame(3).claude.batch("Say {t}", client=sim.client(), progress=False))
    assert job.mode == "realtime"
    batchkit.set_default_mode(None)
    monkeypatch.setenv("BATCHKIT_MODE", "auto")
    assert batchkit.default_mode() == "auto"
    job = frame(4).claude.submit("Say {t}", client=sim.client()).wait()
    assert job.mode == "realtime" and job.mode_reason.startswith("auto:")
    job = frame(5).claude.submit("Echo {t}", mode="batch", client=sim.client()).wait()  # the call wins
    assert job.mode == "batch"
    assert sim.stats()["batch_requests_received"] == 5


def test_a_mode_that_does_not_exist_is_refused_before_any_call(monkeypatch):
    sim = make_sim()
    with pytest.raises(InvalidOptionError, match=r"'batch'.*'realtime'.*'auto'.*not 'fast'"):
        frame(3).claude.batch("Say {t}", mode="fast", client=sim.client())
    with pytest.raises(InvalidOptionError):
        batchkit.set_default_mode("sometimes")
    monkeypatch.setenv("BATCHKIT_MODE", "quick")
    with pytest.raises(InvalidOptionError, match="BATCHKIT_MODE"):
        frame(3).claude.batch("Say {t}", client=sim.client())
    assert sim.stats()["messages.create"] == 0 and sim.stats()["batches_created"] == 0


@pytest.mark.parametrize("kind", ["monthly", "workspace"])
def test_a_spend_limit_stops_a_realtime_job_within_one_round(kind):
    sim = make_sim(latency=Latency(first_token=0.05), spend_limit=SpendLimit(requests=30, kind=kind))
    job = frame(300).claude.submit("Say {t}", mode="realtime", client=sim.client())
    with pytest.raises(SpendLimitError, match="spend or usage limit") as caught:
        job.wait()
    assert isinstance(caught.value, APIRefusedError) and caught.value.job_id == job.job_id
    assert "re-run the same call" in str(caught.value)
    stats = sim.stats()
    assert stats["messages_answered"] == 30
    # Sending stops at the first refusal: only the requests already on the wire were refused too.
    assert stats["messages.create"] - 30 <= 64, stats["messages.create"]
    assert job.status == "failed"
    assert job.summary().by_status.get("succeeded") == 30  # what came back is kept
    time.sleep(0.3)
    assert sim.stats()["messages.create"] == stats["messages.create"]  # and nothing more is sent


def test_an_auth_error_stops_a_realtime_job_with_the_apis_reason():
    sim = make_sim(api_keys=frozenset({"sk-right"}))
    client = sim.client()
    wrong = client.with_options(api_key="sk-wrong")
    with pytest.raises(APIRefusedError, match=r"authentication_error.*check the API key"):
        frame(10).claude.batch("Say {t}", mode="realtime", client=wrong, progress=False)


def test_no_credit_in_realtime_stops_at_the_first_refusal_and_the_same_call_runs_after_the_fix():
    from batchkit.simulator import Faults

    # No credit: every call is refused with 402.
    broke = make_sim(
        latency=Latency(first_token=0.05), faults=Faults(schedule=(("messages.create", range(1, 10_000), 402),))
    )
    df = frame(300)
    with pytest.raises(APIRefusedError, match=r"402 billing_error.*add credit") as caught:
        df.claude.batch("Say {t}", mode="realtime", client=broke.client(), progress=False)
    assert caught.value.status_code == 402
    assert broke.stats()["messages.create"] <= 64  # not one refused call per row: only what was on the wire
    paid = make_sim(latency=Latency(first_token=0.05))  # the same API once credit is added
    out = df.claude.batch("Say {t}", mode="realtime", client=paid.client(), progress=False)
    assert out["response"].notna().all()  # the refused rows were not kept as (failed) answers
    assert paid.stats()["messages_answered"] == 300


def test_a_realtime_answer_lost_on_the_way_back_is_sent_again_counted_and_shown():
    from batchkit import BatchkitWarning
    from batchkit.simulator import Faults

    # The API answers (and charges) calls 3 and 7, but the connection drops before the response.
    sim = make_sim(faults=Faults(schedule=(("messages.create", [3, 7], "lose"),)))
    with pytest.warns(BatchkitWarning, match="2 realtime responses .* were lost on the way back"):
        out = frame(20).claude.batch("Say {t}", mode="realtime", client=sim.client(), progress=False)
    assert out["response"].tolist() == [f"re:Say row {i}" for i in range(20)]
    assert sim.stats()["messages_answered"] == 22  # what the API charged: two answers twice
    cost = batchkit.Job.of(out).cost
    assert cost.requests_paid == 20 and cost.lost_responses == 2
    assert cost.lost_cost == pytest.approx(2 * cost.total / 20)
    assert "2 realtime responses were lost on the way back" in str(cost)


def test_series_and_structured_calls_take_mode():
    sim = make_sim()
    s = pd.Series(["good", "bad"], name="t")
    out = s.claude.batch("Say {}", mode="realtime", client=sim.client(), progress=False)
    assert out.tolist() == ["re:Say good", "re:Say bad"]
    assert sim.stats()["messages_answered"] == 2 and sim.stats()["batches_created"] == 0
    schema_sim = Simulator(config=SimConfig(processing=Processing.instant()))  # answers within the schema
    labels = frame(3).claude.classify(
        "{t}", labels=["a", "b"], mode="realtime", client=schema_sim.client(), progress=False
    )
    assert labels["classification"].isin(["a", "b"]).all()
    assert batchkit.Job.of(labels).mode == "realtime"
    facts = frame(2).claude.extract(
        "{t}", schema={"n": int}, mode="realtime", client=schema_sim.client(), progress=False
    )
    assert facts["n"].notna().all()
    assert schema_sim.stats()["messages_answered"] == 5 and schema_sim.stats()["batches_created"] == 0


def test_estimate_shows_the_time_to_finish_in_each_mode():
    sim = make_sim()
    e = frame(5000).claude.estimate("Say {t}", mode="auto", client=sim.client(), max_tokens=20)
    assert e.finish_seconds["batch"] == 3600 and e.finish_seconds["batch_max"] == 86400
    assert 0 < e.finish_seconds["realtime"] < 3600
    text = str(e)
    assert "Time to finish: realtime ≈" in text and "batch typically within 1 h, at most 24 h" in text
    assert "at default limits" in text  # no realtime answer yet: the default limits
    assert "mode='auto' sends these as batch" in text
    assert e["standard"].typical == pytest.approx(2 * e["batch"].typical)


def test_the_progress_views_show_realtime_rows_rate_eta_and_cost_so_far():
    sim = make_sim(latency=Latency(first_token=0.4, jitter=0.5), rate_limits=RateLimits(requests_per_minute=2400))
    job = frame(120).claude.submit("Say {t}", mode="realtime", client=sim.client())
    seen = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snap = snapshot(job)
        if snap.status == "running" and 0 < snap.realtime_answers < 120 and snap.eta is not None:
            seen = snap
            break
        time.sleep(0.05)
    assert seen is not None, "no snapshot caught the job mid-run"
    line = render_line(seen)
    assert " rows/s, ETA " in line and "so far" in line and "waiting for their answer" in line
    assert seen.rows_done < 120 and seen.rate and seen.rate > 0
    assert 'class="batchkit-speed"' in render_html(seen)  # the widget's details
    job.wait()
    done = snapshot(job)
    assert done.realtime_answers == 120 and done.eta is None
    assert "(standard prices)" in render_text(done)


def test_auto_times_realtime_by_the_workspaces_limits_once_the_api_gave_them():
    # A workspace allowed 60 requests a minute: 150 requests take 2.5 min in realtime.
    sim = make_sim(rate_limits=RateLimits(requests_per_minute=60))
    frame(2).claude.batch("Hi {t}", mode="realtime", client=sim.client(), progress=False)  # headers seen
    e = frame(150).claude.estimate("Echo {t}", mode="auto", client=sim.client(), max_tokens=20)
    assert e.finish_seconds["realtime"] == pytest.approx(150.0)
    assert "requests per minute binds, the workspace's limits" in str(e)


def test_cancel_stops_a_realtime_job_and_keeps_what_came_back():
    sim = make_sim(latency=Latency(first_token=0.3), rate_limits=RateLimits(requests_per_minute=600))
    job = frame(200).claude.submit("Say {t}", mode="realtime", client=sim.client())
    deadline = time.monotonic() + 30
    while sim.stats()["messages_answered"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    assert job.status == "canceled"
    sent = sim.stats()["messages.create"]
    time.sleep(0.5)
    assert sim.stats()["messages.create"] == sent  # nothing more goes out
    outcomes = job.outcomes()
    answered = int((outcomes["status"] == "succeeded").sum())
    assert answered == sim.stats()["messages_answered"] and 10 <= answered < 200
    assert set(outcomes["status"]) == {"succeeded", "canceled"}


def test_the_auto_rule_with_a_deadline():
    from batchkit.core.modes import RealtimeLimits, choose

    limits = RealtimeLimits(requests_per_minute=600, input_tokens_per_minute=1e6, output_tokens_per_minute=1e6)
    # 3,000 requests take 5 min in realtime: a 20-minute deadline is met, a batch's hour is not.
    mode, why = choose("auto", requests=3000, input_tokens=3e5, output_tokens=3e4, deadline_seconds=1200, limits=limits)
    assert mode == "realtime" and "deadline is in 20 min" in why and "5 min" in why
    # A deadline realtime cannot meet either, or one a batch meets: batch, at half the price.
    assert (
        choose("auto", requests=30000, input_tokens=3e6, output_tokens=3e5, deadline_seconds=1200, limits=limits)[0]
        == "batch"
    )
    assert (
        choose("auto", requests=3000, input_tokens=3e5, output_tokens=3e4, deadline_seconds=8 * 3600, limits=limits)[0]
        == "batch"
    )
    # The binding limit is the slowest of the three.
    slow_output = RealtimeLimits(requests_per_minute=1e6, input_tokens_per_minute=1e9, output_tokens_per_minute=1000)
    assert (
        "output tokens per minute binds"
        in choose("auto", requests=500, input_tokens=1e4, output_tokens=60_000, limits=slow_output)[1]
    )
    assert choose("realtime", requests=10**6, input_tokens=0, output_tokens=0) == (
        "realtime",
        "mode='realtime' was asked",
    )


def test_a_realtime_job_can_be_awaited_without_blocking_the_callers_loop():
    import asyncio

    sim = make_sim(latency=Latency(first_token=0.5))

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        job = await frame(10).claude.submit("Say {t}", mode="realtime", client=sim.client()).wait_async()
        task.cancel()
        return job, ticks

    job, ticks = asyncio.run(main())
    assert job.summary().by_status == {"succeeded": 10}
    assert ticks >= 5  # the caller's loop kept running while the answers came
