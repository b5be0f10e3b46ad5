"""A job bigger than the workspace's processing queue waits for room instead of failing.

The simulator holds at most ``max_queued_batch_requests`` batch requests not yet processed; a
create over that is refused with 429 and a ``retry-after`` saying when there will be room. The
job must end with every row answered, no error raised, and the refusals few: each wait is one
refusal, not one per planned batch per round.
"""

from __future__ import annotations

import time

import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit import APIRefusedError
from batchkit.backends import Action, CallFailed
from batchkit.backends.batches import DEFAULT_ROOM_WAIT, MessageBatches
from batchkit.requests import chunk_requests, make_line
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
        assert decision.action is Action.RETRY and decision.status == 429
        assert "processing queue" in decision.message and 0 < (decision.retry_after or 0) <= 60
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
