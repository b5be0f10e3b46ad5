"""When the work is done: in slices, in the background when served, never ahead of the clock.

Results follow from the simulated clock alone, so none of this may change what a batch returns;
what it changes is who waits for whom.
"""

from __future__ import annotations

import time

import anthropic
import msgspec
import pytest
from anthropic.types.messages import MessageBatch
from simtools import request, strict_results

import batchkit.simulator._engine as engine_module
from batchkit.simulator import Faults, Processing, SimConfig, Simulator, serve

SONNET = "claude-sonnet-5"
SYSTEM = "Background. " * 420  # over the 1024-token minimum: cacheable


def mixed_requests(n: int) -> list[dict]:
    """Cache writes and reads, injected faults and plain answers, in one batch."""
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(
                {
                    "custom_id": f"c{i}",
                    "params": {
                        "model": SONNET,
                        "max_tokens": 20,
                        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
                        "messages": [{"role": "user", "content": f"Question {i}: is this review positive? I loved it"}],
                    },
                }
            )
        else:
            out.append(request(f"r{i}", f"Classify item {i} as red, green or blue"))
    return out


def outcome(client: anthropic.Anthropic, batch_id: str) -> dict:
    """Every result, without the ids that differ between simulator instances."""
    found = {}
    for cid, r in strict_results(client, batch_id).items():
        if r.result.type == "succeeded":
            m = r.result.message
            found[cid] = ("succeeded", m.content[0].text, m.stop_reason, m.usage.model_dump())
        elif r.result.type == "errored":
            found[cid] = ("errored", r.result.error.error.type)
        else:
            found[cid] = (r.result.type,)
    return found


def test_processing_in_slices_gives_what_one_pass_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig(
        seed=3,
        processing=Processing(fixed_latency=1, per_request=0.5, concurrency=40),
        faults=Faults(errored_rate={"api_error": 0.05}, expired_rate=0.02),
    )
    seen = []
    for slice_size in (10**9, 7):  # one pass per wave, then waves cut into slices of 7
        monkeypatch.setattr(engine_module, "SLICE", slice_size)
        sim = Simulator(config=config)
        client = sim.client(_strict_response_validation=True, max_retries=0)
        first = client.messages.batches.create(requests=mixed_requests(120))
        sim.advance(1.2)  # the second batch starts while the first is under way: their waves interleave
        second = client.messages.batches.create(requests=mixed_requests(90))
        sim.advance(3600)
        seen.append((outcome(client, first.id), outcome(client, second.id)))
    assert seen[0] == seen[1]
    kinds = {v[0] for first, second in seen for v in (*first.values(), *second.values())}
    assert kinds == {"succeeded", "errored", "expired"}
    assert any(v[3]["cache_read_input_tokens"] for v in seen[0][1].values() if v[0] == "succeeded"), (
        "the later batch reads the cache the first one wrote"
    )


def test_a_create_does_not_do_another_batchs_work_and_a_poll_does_only_what_it_needs(
    instant: Simulator, iclient: anthropic.Anthropic
) -> None:
    first = iclient.messages.batches.create(requests=[request(f"a{i}") for i in range(30)])
    second = iclient.messages.batches.create(requests=[request(f"b{i}") for i in range(20)])
    assert instant.stats(catch_up=False)["requests_processed"] == 0  # in process nothing works ahead
    assert iclient.messages.batches.retrieve(first.id).processing_status == "ended"
    assert instant.stats(catch_up=False)["requests_processed"] == 30  # the first batch only
    assert len(list(iclient.messages.batches.results(second.id))) == 20
    assert instant.stats(catch_up=False)["requests_processed"] == 50


def test_served_the_simulator_works_batches_through_in_the_background() -> None:
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    with serve(sim) as server, server.client(max_retries=0) as client:
        client.messages.batches.create(requests=[request(f"r{i}") for i in range(500)])
        deadline = time.monotonic() + 30
        while sim.stats(catch_up=False)["requests_processed"] < 500:  # no request asks for it
            assert time.monotonic() < deadline, "the background worker never processed the batch"
            time.sleep(0.02)


def test_served_a_create_does_not_wait_for_a_big_batch_being_processed() -> None:
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    n = 60_000
    body = msgspec.json.encode({"requests": [request(f"r{i}", f"Tell me about item {i}") for i in range(n)]})
    with serve(sim) as server, server.client(max_retries=0) as client:
        client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)
        while sim.stats(catch_up=False)["requests_processed"] == 0:
            time.sleep(0.001)  # the worker has started on the big batch
        small = client.messages.batches.create(requests=[request("small")])
        assert sim.stats(catch_up=False)["requests_processed"] < n, "the create waited for the whole batch"
        assert client.messages.batches.retrieve(small.id).processing_status == "ended"
        assert sim.stats(catch_up=False)["requests_processed"] == n + 1
