"""Progress: the snapshot's arithmetic, its three renderings, and the live views on real jobs."""

from __future__ import annotations

import datetime as dt
import io
import sys
import threading

import pytest

from batchkit.display import progress, views
from batchkit.display.progress import BatchProgress, Snapshot, render_html, render_line, render_text
from batchkit.display.text import duration
from batchkit.display.views import JobWidget, TextProgress
from batchkit.simulator import Faults, Processing
from tests.conftest import frame, make_sim

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def snap(status="running", by_status=None, by_error=None, batches=(), **kw) -> Snapshot:
    by_status = by_status if by_status is not None else {"pending": 10}
    return Snapshot(
        job_id="job_x",
        model="claude-haiku-4-5",
        output="label",
        status=status,
        taken_at=T0 + dt.timedelta(seconds=90),
        started_at=T0,
        rows=sum(by_status.values()),
        by_status=by_status,
        by_error=by_error or {},
        batches=tuple(batches),
        **kw,
    )


def batch(state="in_progress", *, created=0.0, ended=None, counts=None, attempt=1, elapsed=None, n=5):
    return BatchProgress(
        api_id=f"msgbatch_{state}_{attempt}",
        state=state,
        attempt=attempt,
        requests=n,
        created_at=T0 + dt.timedelta(seconds=created),
        ended_at=None if ended is None else T0 + dt.timedelta(seconds=ended),
        expires_at=T0 + dt.timedelta(hours=24),
        elapsed=elapsed,
        counts=counts,
    )


# --------------------------------------------------------------------------- the snapshot


def test_transient_failures_of_a_running_job_are_retry_pending_not_red():
    s = snap(
        by_status={"succeeded": 90, "errored": 6, "expired": 2, "pending": 2},
        by_error={"api_error": 4, "overloaded_error": 2},
    )
    assert dict(s.segments()) == {"succeeded": 90, "retrying": 8, "pending": 2}
    assert (s.retrying, s.failed_for_good, s.style, s.state_label) == (8, 0, "", "running")
    assert s.rows_done == 98


def test_a_failure_no_retry_fixes_turns_the_bar_red_while_running():
    s = snap(by_status={"succeeded": 7, "errored": 3}, by_error={"api_error": 1, "invalid_request_error": 2})
    assert dict(s.segments()) == {"succeeded": 7, "retrying": 1, "errored": 2}
    assert s.failed_for_good == 2 and s.style == "danger"


@pytest.mark.parametrize(
    ("status", "by_status", "style", "label"),
    [
        ("ended", {"succeeded": 9, "truncated": 1}, "success", "succeeded"),
        ("ended", {"succeeded": 9, "expired": 1}, "danger", "ended with failures"),
        ("canceled", {"succeeded": 4, "canceled": 6}, "warning", "canceled"),
        ("ended", {"succeeded": 8, "skipped": 2}, "success", "succeeded"),
    ],
)
def test_a_finished_job_is_green_red_or_amber(status, by_status, style, label):
    s = snap(status=status, by_status=by_status, by_error={"api_error": 1} if "expired" in by_status else {})
    assert (s.style, s.state_label, s.retrying) == (style, label, 0)


def test_a_canceled_job_is_done_once_its_batches_have_settled():
    settling = snap(status="canceled", by_status={"canceled": 10}, batches=[batch("canceling", elapsed=3.0)])
    assert (settling.done, settling.state_label, settling.style) == (False, "canceling", "")
    settled = snap(status="canceled", by_status={"canceled": 10}, batches=[batch("collected", ended=4)])
    assert (settled.done, settled.state_label, settled.style) == (True, "canceled", "warning")


def test_elapsed_is_wall_time_while_running_and_the_batches_span_once_done():
    assert snap().elapsed == 90.0
    done = snap(
        status="ended",
        by_status={"succeeded": 10},
        batches=[batch("collected", created=5, ended=65), batch("collected", created=10, ended=125, attempt=2)],
    )
    assert done.elapsed == 120.0 and done.attempts == 2
    assert snap(status="ended", by_status={"succeeded": 10}).elapsed is None  # nothing was sent


# --------------------------------------------------------------------------- renderings


def test_a_running_batch_shows_its_time_against_the_limits_and_no_percentage():
    s = snap(batches=[batch(elapsed=125.0)])
    text = render_text(s)
    assert "2 min 05 s so far (typical < 1 h, limit 24 h)" in text
    assert "counts come when the batch ends" in text
    assert "%" not in text and "%" not in render_line(s)
    html = render_html(s)
    assert 'title="2 min 05 s of the 24 h limit (most batches end within 1 h)"' in html
    assert "2 min 05 s so far" in html


def test_an_ended_batch_shows_the_counts_the_api_reported():
    s = snap(
        status="ended",
        by_status={"succeeded": 4, "errored": 1},
        by_error={"invalid_request_error": 1},
        batches=[
            batch(
                "collected",
                ended=30,
                elapsed=30.0,
                counts={"processing": 0, "succeeded": 4, "errored": 1, "canceled": 0},
            )
        ],
        cost=0.0123,
        cost_requests=4,
        estimate_range=(0.01, 0.02),
    )
    text = render_text(s)
    assert "took 30 s  4 succeeded, 1 errored" in text
    assert "cost     $0.01 (batch prices); estimated $0.01–$0.02" in text
    assert "errors   invalid_request_error: 1" in text
    assert render_line(s) == (
        "job_x ended with failures 30 s: 5 rows (4 succeeded, 1 errored); batches: 1 of 1 batches ended; $0.01"
    )


def test_cost_while_running_says_where_the_total_comes_from():
    s = snap(
        by_status={"succeeded": 5, "pending": 5},
        cost=0.5,
        cost_requests=5,
        estimated_total=1.0,
        estimate_basis="projected from 5 answered requests",
    )
    assert "$0.50 so far for 5 answered requests; about $1.00 in all (projected from 5 answered" in render_text(s)
    assert "a total is projected once the first batch ends" in render_text(snap())


def test_html_escapes_every_value_and_draws_the_rows_in_colour():
    s = snap(by_status={"succeeded": 3, "errored": 1}, by_error={"<b>bad</b>": 1})
    s = Snapshot(**{**s.__dict__, "output": "<script>x</script>"})
    html = render_html(s)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;bad" in html
    assert 'class="batchkit-seg batchkit-seg-succeeded" title="3 succeeded" style="width:75.000%' in html
    assert 'data-style="danger"' in html
    assert "batchkit-rows-bar" not in render_html(s, bar=False)


def test_long_batch_lists_are_cut():
    s = snap(batches=[batch(attempt=i, elapsed=1.0) for i in range(1, 16)])
    assert "… and 3 more" in render_text(s, max_batches=12)
    assert "… and 3 more batches" in render_html(s, max_batches=12)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0 s"),
        (59.4, "59 s"),
        (61, "1 min 01 s"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (86400, "24 h"),
        (3 * 86400 + 7200, "3 d 2 h"),
    ],
)
def test_durations_read_naturally(seconds, text):
    assert duration(seconds) == text


# --------------------------------------------------------------------------- on real jobs


def test_snapshot_of_a_job_follows_it_from_submitted_to_ended():
    sim = make_sim(processing=Processing(fixed_latency=0.3, per_request=0.0))
    job = frame(30).claude.submit("{t}", client=sim.client(), poll_interval=0.02, chunk_size=10)
    first = progress.snapshot(job)
    assert first.status == "running" and first.by_status == {"pending": 30} and first.cost == 0.0
    assert all(b.counts is None for b in first.batches)  # nothing is known before a batch ends
    job.wait()
    last = progress.snapshot(job)
    assert last.status == "ended" and last.by_status == {"succeeded": 30} and last.style == "success"
    assert [b.requests for b in last.batches] == [10, 10, 10]
    assert all(b.counts and b.counts["succeeded"] == 10 for b in last.batches)
    assert last.cost is not None and last.cost > 0 and last.cost_requests == 30
    assert "rows     30: 30 succeeded" in render_text(last)


def test_a_rerun_that_sends_nothing_shows_no_batches_and_no_cost():
    sim = make_sim()
    df = frame(8)
    df.claude.submit("{t}", client=sim.client(), poll_interval=0.01).wait()
    again = df.head(5).claude.submit("{t}", client=sim.client(), poll_interval=0.01).wait()
    s = progress.snapshot(again)
    assert s.batches == () and s.cost == 0.0 and s.by_status == {"succeeded": 5}
    assert "none sent (every row was already answered or skipped)" in render_text(s)


def test_a_job_on_a_model_with_no_price_still_shows_its_progress_without_a_cost():
    sim = make_sim(models=("my-finetune",))
    job = (
        frame(3)
        .claude.submit("{t}", model="my-finetune", check_model=False, client=sim.client(), poll_interval=0.01)
        .wait()
    )
    snapshot = progress.snapshot(job)
    assert snapshot.done and snapshot.by_status == {"succeeded": 3} and snapshot.cost is None
    assert "3 succeeded" in repr(job) and "unknown" in render_text(snapshot)


def test_widget_fills_in_and_turns_green():
    # Batches of 5, 5 and 2 requests, one at a time: the small one ends first. The first ends
    # 0.6 s in, long enough for a loaded machine to draw the widget before any row is done.
    sim = make_sim(processing=Processing(fixed_latency=0.6, per_request=0.1, concurrency=1))
    job = frame(12).claude.submit("{t}", client=sim.client(), poll_interval=0.02, chunk_size=5)
    widget = JobWidget(job, interval=0.05)
    assert (widget.bar.value, widget.bar.max, widget.bar.bar_style) == (0, 12, "")
    assert widget.cancel_button.layout.display == "" and not widget.cancel_button.disabled
    seen = set()
    while not widget.join(0.02):
        seen.add(widget.bar.value)
    assert widget.bar.value == 12 and widget.bar.bar_style == "success"
    assert seen - {0, 12}, "the bar never showed a partial count"  # rows fill in batch by batch
    assert widget.cancel_button.layout.display == "none" and widget.retry_button.layout.display == "none"
    assert 'data-status="ended"' in widget.details.value


def test_widget_turns_red_and_retry_failed_resubmits_them():
    sim = make_sim(seed=3, faults=Faults(errored_rate={"invalid_request_error": 0.3}))
    job = frame(40).claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    job.wait()
    widget = JobWidget(job, interval=0.02)
    widget.join(5)
    failed = widget.snapshot.failed
    assert failed and widget.bar.bar_style == "danger"
    assert widget.retry_button.layout.display == "" and not widget.retry_button.disabled
    before = sim.stats()["batch_requests_received"]
    widget.retry().join(10)
    job.wait()  # the retry batch is created by the job's worker, after the button's thread returns
    assert sim.stats()["batch_requests_received"] - before == failed  # only the failed rows went out
    assert widget.join(10)
    assert widget.snapshot.done and widget.snapshot.failed < failed
    assert widget.bar.bar_style == widget.snapshot.style  # a retry from the widget starts afresh


def test_green_never_overwrites_red():
    sim = make_sim(seed=3, faults=Faults(errored_rate={"invalid_request_error": 0.3}))
    job = frame(40).claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    job.wait()
    widget = JobWidget(job, start=False)
    assert widget.bar.bar_style == "danger"
    for _ in range(20):  # retried from code, not from the widget, until every row succeeded
        if not job.summary().failed:
            break
        job.retry(statuses=["errored"])
    assert job.summary().failed == 0
    snap_now = widget.refresh()
    assert snap_now.style == "success" and widget.bar.bar_style == "danger"


def test_widget_cancel_acts_through_job_cancel():
    sim = make_sim(processing=Processing(fixed_latency=30.0, per_request=60.0))
    job = frame(20).claude.submit("{t}", client=sim.client(), poll_interval=0.01)
    while job.batches()["api_id"].isna().any():
        threading.Event().wait(0.01)
    widget = JobWidget(job, interval=0.05)
    widget.cancel().join(10)
    assert widget.join(10)
    assert job.status == "canceled" and sim.stats()["batches.cancel"] == 1
    assert widget.bar.bar_style == "warning" and widget.snapshot.state_label == "canceled"
    assert "canceled" in widget.message.value


def test_outside_a_kernel_display_job_prints_text_lines():
    sim = make_sim(processing=Processing(fixed_latency=0.3, per_request=0.0))
    job = frame(6).claude.submit("{t}", client=sim.client(), poll_interval=0.02)
    out = io.StringIO()
    view = views.display_job(job, file=out)
    assert isinstance(view, TextProgress) and view.join(10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{job.job_id} running") and "6 waiting for their batch" in lines[0]
    assert f"batchkit job {job.job_id} (claude-haiku-4-5 → 'response'): succeeded" in out.getvalue()
    assert "rows     6: 6 succeeded" in out.getvalue()


def test_without_ipywidgets_the_widget_says_how_to_install_it_and_display_falls_back(monkeypatch):
    sim = make_sim()
    job = frame(2).claude.submit("{t}", client=sim.client(), poll_interval=0.01).wait()
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=r"pip install 'ipywidgets>=8'"):
        JobWidget(job)
    monkeypatch.setattr(views, "in_kernel", lambda: True)
    out = io.StringIO()
    view = views.display_job(job, file=out)
    assert isinstance(view, TextProgress) and view.join(5)
    assert "rows     2: 2 succeeded" in out.getvalue()


def test_not_in_a_kernel_under_pytest():
    assert views.in_kernel() is False


def test_the_renderings_examples_run():
    import doctest

    from batchkit.display import queues, text

    for module in (text, queues):
        assert doctest.testmod(module).failed == 0
