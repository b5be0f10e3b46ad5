"""Fault injection: by rate and by schedule, reproducible from the seed; rate limits; stats."""

from __future__ import annotations

import time

import anthropic
import httpx2
import pytest
from simtools import BODY_CUT, MODEL, request, requests, strict_results

from batchkit.simulator import Faults, Processing, SimConfig, Simulator


def faulty(seed: int = 1, **faults) -> Simulator:
    return Simulator(SimConfig(seed=seed, processing=Processing.instant(), faults=Faults(**faults)))


def outcome(sim: Simulator, reqs: list[dict]) -> dict[str, str]:
    client = sim.client(max_retries=0)
    batch = client.messages.batches.create(requests=reqs)
    results = strict_results(client, batch.id)
    return {
        cid: (r.result.type if r.result.type != "errored" else r.result.error.error.type) for cid, r in results.items()
    }


def test_errored_and_expired_rates_are_reproducible_from_the_seed() -> None:
    rates = {"errored_rate": {"api_error": 0.1, "overloaded_error": 0.1}, "expired_rate": 0.1}
    first = outcome(faulty(seed=3, **rates), requests(1000))
    again = outcome(faulty(seed=3, **rates), requests(1000))
    other = outcome(faulty(seed=4, **rates), requests(1000))
    assert first == again and first != other
    counts = {kind: list(first.values()).count(kind) for kind in set(first.values())}
    for kind in ("api_error", "overloaded_error", "expired"):
        assert 60 <= counts[kind] <= 140, counts
    assert counts["succeeded"] > 600


def test_a_retry_in_a_new_batch_draws_again() -> None:
    sim = faulty(errored_rate={"api_error": 0.5})
    first = outcome(sim, requests(200))
    failed = [cid for cid, kind in first.items() if kind == "api_error"]
    retry = outcome(sim, [request(cid) for cid in failed])
    assert "succeeded" in retry.values() and "api_error" in retry.values()


def test_duplicate_answers_are_counted_in_stats() -> None:
    sim = faulty(errored_rate={"api_error": 0.5})
    first = outcome(sim, requests(100))
    ok = [cid for cid, kind in first.items() if kind == "succeeded"]
    stats = sim.stats()
    assert stats["duplicate_custom_ids_answered"] == 0 and stats["requests_processed"] == len(ok)
    second = outcome(sim, [request(cid) for cid in ok[:5]])
    third = outcome(sim, [request(cid) for cid in ok[:5]])  # a third answer of an id counts once
    paid_again = {cid for cid in ok[:5] if "succeeded" in (second[cid], third[cid])}
    stats = sim.stats()
    assert paid_again and stats["duplicate_custom_ids_answered"] == len(paid_again)
    assert stats["batches_created"] == 3 and stats["batch_requests_received"] == 110
    assert [b["processing_status"] for b in stats["batches"]] == ["ended"] * 3
    sim.reset_stats()
    assert sim.stats()["batches_created"] == 0


def test_http_500_by_rate_is_retried_by_the_sdk_and_reproducible() -> None:
    def calls(seed: int) -> int:
        sim = faulty(seed=seed, http_error_rate={500: 0.3, 529: 0.2})
        client = sim.client(max_retries=10)
        for _ in range(20):
            client.models.list()
        return sim.stats()["models.list"]

    n = calls(5)
    assert n > 20 and calls(5) == n


def test_429_retry_after_is_small_and_honoured() -> None:
    sim = faulty(schedule=[("models.list", [1, 2], 429)], retry_after=0.05)
    client = sim.client(max_retries=2)
    start = time.monotonic()
    assert client.models.list().data
    assert time.monotonic() - start < 1.0  # the SDK slept 2 × 0.05 s, not its default backoff
    assert sim.stats()["models.list"] == 3 and sim.stats()["faults"] == {"http_429": 2}
    with pytest.raises(anthropic.RateLimitError) as info:
        faulty(schedule=[("*", 1, 429)]).client(max_retries=0).models.list()
    assert float(info.value.response.headers["retry-after"]) == 0.05


def test_schedule_by_route_and_kind_is_exact() -> None:
    sim = faulty(schedule=[("POST /v1/messages/batches", 1, 500), ("batches.retrieve", 2, 529)])
    client = sim.client(max_retries=0)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.batches.create(requests=requests(1))
    batch = client.messages.batches.create(requests=requests(1))
    client.messages.batches.retrieve(batch.id)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.batches.retrieve(batch.id)
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"
    client.messages.batches.retrieve(batch.id)


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        Faults(schedule=[("GET results", 1, 500)])
    with pytest.raises(ValueError, match="action"):
        Faults(schedule=[("batches.results", 1, "explode")])


def test_dropped_results_stream_in_process() -> None:
    sim = faulty(schedule=[("batches.results", 1, "drop")])
    client = sim.client(max_retries=0)
    batch = client.messages.batches.create(requests=requests(50))
    client.messages.batches.retrieve(batch.id)
    with pytest.raises(BODY_CUT):
        list(client.messages.batches.results(batch.id))
    assert len(list(client.messages.batches.results(batch.id))) == 50  # the next try works


def test_dropped_connection_before_a_response_is_retried_by_the_sdk() -> None:
    sim = faulty(schedule=[("models.list", 1, "drop")])
    assert sim.client(max_retries=1).models.list().data
    with pytest.raises(anthropic.APIConnectionError):
        faulty(schedule=[("models.list", 1, "drop")]).client(max_retries=0).models.list()


def test_slow_responses_take_wall_time() -> None:
    sim = faulty(slow=0.2)
    start = time.monotonic()
    sim.client().models.list()
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    faulty(schedule=[("models.list", 1, "slow:0.3")]).client().models.list()
    assert time.monotonic() - start >= 0.3


def test_rpm_limit_on_messages_returns_429_with_retry_after() -> None:
    sim = Simulator(SimConfig(faults=Faults(rpm=2)))
    client = sim.client(max_retries=0)
    ask = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    client.messages.create(**ask)
    client.messages.create(**ask)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(**ask)
    assert 0 < float(info.value.response.headers["retry-after"]) <= 30
    sim.clock.advance(30)
    assert client.messages.create(**ask).content


def test_tpm_limit_counts_input_tokens() -> None:
    sim = Simulator(SimConfig(faults=Faults(tpm=100)))
    client = sim.client(max_retries=0)
    big = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 300}]}  # 82 tokens
    client.messages.create(**big)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**big)
    huge = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 1000}]}
    with pytest.raises(anthropic.RateLimitError) as info:
        sim.client(max_retries=3).messages.create(**huge)
    assert info.value.response.headers["x-should-retry"] == "false"


def test_control_endpoints_are_never_faulted() -> None:
    sim = faulty(http_error_rate={500: 1.0})
    with httpx2.Client(
        transport=httpx2.WSGITransport(app=sim.wsgi_app), base_url="http://sim.local", headers={"x-api-key": "k"}
    ) as http:
        assert http.get("/_sim/stats").status_code == 200
        assert http.post("/_sim/clock/advance", json={"seconds": 10}).status_code == 200
        assert http.get("/v1/models", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}).status_code == 500


def test_batch_ids_are_unique_across_instances_while_fault_draws_repeat_for_a_seed():
    from batchkit.simulator import Faults, Processing, SimConfig, Simulator

    def run():
        sim = Simulator(
            config=SimConfig(seed=5, processing=Processing.instant(), faults=Faults(errored_rate={"api_error": 0.3}))
        )
        client = sim.client()
        batch = client.messages.batches.create(
            requests=[
                {
                    "custom_id": f"r{i}",
                    "params": {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": f"hi {i}"}],
                    },
                }
                for i in range(40)
            ]
        )
        client.messages.batches.retrieve(batch.id)
        return batch.id, sorted(
            r.custom_id for r in client.messages.batches.results(batch.id) if r.result.type == "errored"
        )

    (id1, errored1), (id2, errored2) = run(), run()
    assert id1 != id2  # a restarted simulator never reuses an id a client may have stored
    assert errored1 == errored2 and 3 < len(errored1) < 25
