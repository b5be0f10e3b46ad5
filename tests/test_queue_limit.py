"""A job bigger than the workspace's processing queue waits for room instead of failing.

The simulator holds at most ``max_queued_batch_requests`` batch requests not yet processed; a
create over that is refused with 429 and a ``retry-after`` saying when there will be room. The
job must end with every row answered, no error raised, and the refusals few: each wait is one
refusal, not one per planned batch per round.
"""

from __future__ import annotations

import dataclasses
import time

import anthropic
import pytest

import batchkit  # registers df.claude
from batchkit import APIRefusedError, InvalidOptionError, OptionTypeError
from batchkit.backends import Action, CallFailed
from batchkit.backends.batches import DEFAULT_ROOM_WAIT, MessageBatches
from batchkit.backends.queue import QueueView, view_for
from batchkit.core.plan import chunk_requests, make_line
from batchkit.display.progress import render_html, render_line, render_text, snapshot
from batchkit.display.queues import snapshot as queue_snapshot
from batchkit.simulator import Faults, Processing
from tests.conftest import frame, make_sim

# 100 requests at a time, 1 simulated second each, 20× faster than the wall clock:
# a batch of 500 is done 0.3 s (wall) after it is created
PACED = Processing(fixed_latency=1.0, per_request=1.0, concurrency=100)


def test_a_job_bigger_than_the_queue_waits_for_room_and_every_row_is_answered():
    sim = make_sim(processing=PACED, time_scale=5, max_queued_batch_requests=1_000)  # a batch: 1.2 s
    job = frame(2_000).claude.submit("Say {t}", output="a", client=sim.client(), chunk_size=500, progress=False)
    job.wait(timeout=60)
    out = job.result()
    assert out["a"].tolist() == [f"re:Say row {i}" for i in range(2_000)]
    stats = sim.stats()
    assert stats["batches_created"] == 4 and stats["requests_errored"] == 0
    refused = stats["faults"].get("queue_full", 0)
    assert refused >= 1  # the queue did fill: the job had to wait
    assert isinstance(job.backend, MessageBatches) and job.backend.creates_refused == refused
    # one refusal per wait, not one per planned batch per round: two batches waited, each at most twice
    assert refused <= 4


def _unit(n: int, start: int = 0) -> bytes:
    body = b'{"max_tokens":20,"messages":[{"content":"hi %d","role":"user"}],"model":"claude-haiku-4-5"}'
    return chunk_requests({f"k{i}": make_line(f"k{i}", body % i) for i in range(start, start + n)})[0].body


def test_a_refused_create_holds_the_next_ones_until_its_retry_after_without_a_call():
    sim = make_sim(processing=PACED, time_scale=20, max_queued_batch_requests=10)
    backend = MessageBatches(sim.client())
    first = backend.send(_unit(10))
    calls = sim.stats()["batches.create"]
    for start in (10, 20, 30):
        with pytest.raises(CallFailed) as info:
            backend.send(_unit(10, start))
        decision = info.value.decision
        assert decision.action is Action.RETRY and "processing queue" in decision.message
        if decision.status == 429:  # held until the refusal's retry-after …
            assert 0 < (decision.retry_after or 0) <= 60
        else:  # … or, once that has passed (a slow machine), by the limit the refusal taught
            assert "held locally" in decision.message
    assert sim.stats()["batches.create"] == calls + 1  # only the first of the three reached the API
    assert backend.creates_refused == 1 and backend.seconds_until_room() > 0
    time.sleep(backend.seconds_until_room() + 0.05)
    # the refusal taught the limit (10): the next create is held until a poll sees the first end
    assert backend.queue.limit == 10 and backend.queue.source == "learned"
    with pytest.raises(CallFailed) as info:
        backend.send(_unit(10, 10))
    assert info.value.decision.action is Action.RETRY and "held locally" in info.value.decision.message
    assert sim.stats()["batches.create"] == calls + 1
    assert backend.track(first.id).state == "ended"
    assert backend.send(_unit(10, 10)).state == "in_progress"
    assert sim.stats()["faults"] == {"queue_full": 1}


def test_a_batch_alone_over_the_queue_limit_stops_the_job_naming_chunk_size():
    sim = make_sim(processing=PACED, time_scale=20, max_queued_batch_requests=100)
    with pytest.raises(APIRefusedError) as info:
        frame(300).claude.batch("Say {t}", output="a", client=sim.client(), progress=False)
    assert "chunk_size=" in str(info.value) and "processing queue" in str(info.value)
    assert sim.stats()["faults"] == {"queue_full": 1}  # refused once, never resent
    # the fix it names works (a new call: a failed job re-run keeps the chunk size it stored)
    out = frame(300).claude.batch("Say {t}", output="b", client=sim.client(), chunk_size=100, progress=False)
    assert out["b"].notna().all()


def test_a_429_that_does_not_say_when_holds_creates_for_a_backoff():
    sim = make_sim(faults=Faults(retry_after=None, schedule=(("batches.create", 1, 429),)))
    backend = MessageBatches(sim.client())
    for _ in range(3):
        with pytest.raises(CallFailed) as info:
            backend.send(_unit(1))
        assert info.value.decision.action is Action.RETRY
    assert sim.stats()["batches.create"] == 1 and backend.creates_refused == 1
    assert 25 < backend.seconds_until_room() <= DEFAULT_ROOM_WAIT


# --------------------------------------------------------------------------- one view per workspace


def test_a_queue_limit_setting_keeps_the_queue_under_it_without_a_single_refusal():
    sim = make_sim(processing=PACED, time_scale=5, max_queued_batch_requests=1_000)
    job = frame(2_000).claude.submit(
        "Say {t}", output="a", client=sim.client(), chunk_size=500, queue_limit=1_000, progress=False
    )
    job.wait(timeout=60)
    assert job.result()["a"].tolist() == [f"re:Say row {i}" for i in range(2_000)]
    stats = sim.stats()
    assert stats["batches_created"] == 4 and stats["faults"].get("queue_full", 0) == 0
    assert job.backend.creates_refused == 0 and job.queue is not None
    assert (job.queue.limit, job.queue.source) == (1_000, "setting")
    assert job.queue.state().in_flight == 0  # every batch seen to end
    assert job.store.load_job(job.job_id)["spec"]["queue_limit"] == 1_000  # a re-attached job keeps it


def test_a_queue_limit_setting_cuts_batches_to_fit_before_they_are_written_down():
    sim = make_sim(processing=PACED, time_scale=20, max_queued_batch_requests=100)
    out = frame(300).claude.batch("Say {t}", output="a", client=sim.client(), queue_limit=100, progress=False)
    assert out["a"].notna().all()
    job = batchkit.Job.of(out)
    assert job.batches()["n_requests"].tolist() == [100, 100, 100]
    assert sim.stats()["faults"].get("queue_full", 0) == 0


def test_a_learned_limit_costs_one_refusal_then_none():
    sim = make_sim(processing=PACED, time_scale=5, max_queued_batch_requests=1_000)
    job = frame(3_000).claude.submit("Say {t}", output="a", client=sim.client(), chunk_size=500, progress=False)
    job.wait(timeout=90)
    assert job.result()["a"].notna().all()
    assert sim.stats()["batches_created"] == 6
    assert sim.stats()["faults"] == {"queue_full": 1}  # it learned the limit from the first refusal
    assert (job.queue.limit, job.queue.source) == (1_000, "learned") and job.queue.refused == 1


def test_two_jobs_in_one_process_share_the_workspace_view_and_never_overfill_it():
    sim = make_sim(processing=PACED, time_scale=5, max_queued_batch_requests=1_000)
    client = sim.client()
    first = frame(1_500).claude.submit("Say {t}", output="a", client=client, chunk_size=500, progress=False)
    second = frame(1_500).claude.submit(
        "Tell {t}", output="b", client=sim.client(), chunk_size=500, progress=False
    )  # another client object, the same workspace
    first.wait(timeout=90)
    second.wait(timeout=90)
    assert first.result()["a"].notna().all() and second.result()["b"].notna().all()
    assert first.queue is second.queue  # one view
    # the view is shared: the queue was learned once, and then neither job knocked again
    assert sim.stats()["faults"] == {"queue_full": 1}
    assert first.backend.creates_refused + second.backend.creates_refused == 1


def test_two_simulators_in_one_process_are_two_workspaces():
    one, two = make_sim(), make_sim()
    assert view_for(one.client()) is view_for(one.client())
    assert view_for(one.client()) is not view_for(two.client())
    served_like = [
        anthropic.Anthropic(api_key=key, base_url=url)
        for key, url in (
            ("sk-a", "http://127.0.0.1:1"),
            ("sk-a", "http://127.0.0.1:1/"),
            ("sk-b", "http://127.0.0.1:1"),
        )
    ]
    assert view_for(served_like[0]) is view_for(served_like[1]) is not view_for(served_like[2])
    assert "sk-a" not in repr(view_for(served_like[0]))


def test_held_creates_go_in_planned_order_and_a_batch_over_the_limit_is_refused_before_any_call():
    view = QueueView("test")
    view.set_limit(10)
    first = view.admit(6, order=1, owner="a")
    with pytest.raises(CallFailed) as held:
        view.admit(6, order=2, owner="a")  # no room
    assert held.value.decision.action is Action.RETRY and "held locally" in held.value.decision.message
    with pytest.raises(CallFailed) as later:
        view.admit(3, order=3, owner="b")  # it would fit, but #2 was planned first
    assert "planned earlier" in later.value.decision.message
    view.created(first, "msgbatch_1", 6)
    view.ended("msgbatch_1")
    view.created(view.admit(6, order=2, owner="a"), "msgbatch_2", 6)
    view.created(view.admit(3, order=3, owner="b"), "msgbatch_3", 3)
    assert view.state().in_flight == 9
    with pytest.raises(CallFailed) as alone:
        view.admit(11, order=4, owner="a")
    decision = alone.value.decision
    assert decision.action is Action.STOP and "chunk_size=10" in decision.message
    assert "limit of 10" in decision.message and "queue_limit=" in decision.message


def test_until_the_limit_is_known_one_create_is_in_the_air_and_the_held_one_is_woken_when_it_lands():
    view = QueueView("test")
    woken: list[str] = []
    first = view.admit(500, order=1, owner="a", wake=lambda: woken.append("a"))
    with pytest.raises(CallFailed) as held:  # another job's create, sent together, could be refused too
        view.admit(500, order=7, owner="b", wake=lambda: woken.append("b"))
    assert held.value.decision.action is Action.RETRY and "not known yet" in held.value.decision.message
    view.created(first, "msgbatch_1", 500)
    assert "b" in woken
    view.created(view.admit(500, order=7, owner="b"), "msgbatch_2", 500)  # now it goes
    assert view.state().in_flight == 1_000 and view.state().held == 0


def test_a_store_sync_counts_batches_of_other_processes_and_frees_those_that_ended():
    view = QueueView("test")
    view.set_limit(10, "learned")
    view.sync("store-a", {"msgbatch_x": 8})
    with pytest.raises(CallFailed):
        view.admit(5, order=1, owner="a")
    view.sync("store-a", {})  # the store says it ended (another process collected it)
    assert view.state().in_flight == 0
    view.release(view.admit(5, order=1, owner="a"))
    view.set_limit(50, "learned")
    view.set_limit(20, "setting")
    view.set_limit(50, "learned")  # a setting is never replaced by what a refusal says
    assert (view.limit, view.source) == (20, "setting")


def test_the_progress_view_shows_the_queue_waiting_in_flight_done_and_where_the_limit_came_from():
    sim = make_sim(
        processing=Processing(fixed_latency=30.0, per_request=1.0, concurrency=100),
        time_scale=5,
        max_queued_batch_requests=1_000,
    )
    job = frame(2_000).claude.submit(
        "Say {t}",
        output="a",
        client=sim.client(),
        chunk_size=500,
        queue_limit=1_000,
        poll_interval=0.05,
        progress=False,
    )
    deadline = time.monotonic() + 10
    snap = snapshot(job)
    while (snap.queue is None or snap.queue.in_flight_batches < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
        snap = snapshot(job)
    queue = snap.queue
    assert queue is not None
    assert (queue.waiting_batches, queue.in_flight_batches, queue.done_batches) == (2, 2, 0)
    assert (queue.waiting, queue.in_flight, queue.limit, queue.source) == (1_000, 1_000, 1_000, "setting")
    text = render_text(snap)
    assert (
        "  queue    2 waiting (1,000 requests) · 2 in flight (1,000 requests) · 0 done; "
        "limit 1,000 requests (setting: queue_limit=)"
    ) in text
    assert "2 waiting for room in the queue" in render_line(snap)
    # planned and not created, with no limit known to hold them: not said to wait for room
    unheld = dataclasses.replace(snap, queue=dataclasses.replace(queue, limit=None, source=None))
    assert "2 not created yet" in render_line(unheld) and "room" not in render_line(unheld)
    page = render_html(snap)
    assert 'class="batchkit-queue" data-limit="1000" data-source="setting"' in page
    assert 'class="batchkit-queue-waiting" data-batches="2" data-requests="1000"' in page
    job.wait(timeout=90)
    done = snapshot(job).queue
    assert done is not None and (done.waiting_batches, done.in_flight_batches, done.done_batches) == (0, 0, 4)
    assert "0 waiting · 0 in flight · 4 done" in render_text(snapshot(job))
    assert "waiting for room" not in render_line(snapshot(job))
    # the same numbers from the store alone, as a run's view reads them for several jobs
    assert queue_snapshot(job.store, [job.job_id], view=job.queue) == done
    assert sim.stats()["faults"].get("queue_full", 0) == 0


def test_queue_limit_is_checked_like_the_other_options():
    for bad, error in (
        (0, InvalidOptionError),
        (-5, InvalidOptionError),
        (1.5, OptionTypeError),
        ("200000", OptionTypeError),
        (True, OptionTypeError),
    ):
        with pytest.raises(error) as info:
            frame(3).claude.estimate("Say {t}", queue_limit=bad)
        assert "queue_limit" in str(info.value) and "processing queue" in str(info.value)


def test_the_docstring_examples_run():
    import doctest

    import batchkit.backends.queue
    import batchkit.display.queues

    for module in (batchkit.backends.queue, batchkit.display.queues):
        assert doctest.testmod(module).failed == 0
