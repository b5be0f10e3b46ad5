"""Prompt caching: hits follow from timing, minimum lengths per model, TTLs, usage fields."""

from __future__ import annotations

import anthropic
import pytest
from simtools import strict_results

from batchkit.simulator import SimConfig, Simulator

SONNET = "claude-sonnet-5"  # minimum cacheable prefix 1024 tokens (the default)
SYSTEM = "Background. " * 420  # 5040 bytes → 1260 tokens


def cached_request(cid: str, model: str = SONNET, system: str = SYSTEM, ttl: str | None = None) -> dict:
    cache_control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {
        "custom_id": cid,
        "params": {
            "model": model,
            "max_tokens": 20,
            "system": [{"type": "text", "text": system, "cache_control": cache_control}],
            "messages": [{"role": "user", "content": f"Question {cid}: what colour is the sky?"}],
        },
    }


def usage_by_id(client: anthropic.Anthropic, batch_id: str) -> dict:
    return {cid: r.result.message.usage for cid, r in strict_results(client, batch_id).items()}


def run(sim: Simulator, reqs: list[dict], wait: float = 600) -> dict:
    client = sim.client(_strict_response_validation=True)
    created = client.messages.batches.create(requests=reqs)
    sim.clock.advance(wait)
    assert client.messages.batches.retrieve(created.id).processing_status == "ended"
    return usage_by_id(client, created.id)


def test_first_wave_writes_later_waves_read(sim: Simulator) -> None:
    usage = run(sim, [cached_request(f"q{i}") for i in range(300)])
    prefix = 1260
    writes = [cid for cid, u in usage.items() if u.cache_creation_input_tokens]
    reads = [cid for cid, u in usage.items() if u.cache_read_input_tokens]
    assert sorted(writes, key=lambda c: int(c[1:])) == [f"q{i}" for i in range(100)]  # wave 0, concurrent
    assert len(reads) == 200
    first, later = usage["q0"], usage["q150"]
    assert first.cache_creation_input_tokens == prefix and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.cache_creation.ephemeral_1h_input_tokens == 0
    assert later.cache_read_input_tokens == prefix and later.cache_creation_input_tokens == 0
    # input_tokens is the uncached remainder: total = input + write + read
    total = 3 + prefix + 4 + (len("Question q0: what colour is the sky?") + 3) // 4
    assert first.input_tokens + first.cache_creation_input_tokens == total


def test_prefix_below_the_model_minimum_is_not_cached(sim: Simulator) -> None:
    usage = run(sim, [cached_request(f"s{i}", system="Short. " * 100) for i in range(150)])
    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for u in usage.values())


def test_minimum_depends_on_the_model(sim: Simulator) -> None:
    # 1260 tokens: enough for Sonnet 5 (1024), not for Haiku 4.5 (4096)
    usage = run(sim, [cached_request(f"h{i}", model="claude-haiku-4-5") for i in range(150)])
    assert not any(u.cache_creation_input_tokens for u in usage.values())
    custom = Simulator(SimConfig(min_cacheable_tokens={"claude-haiku-4-5": 512}))
    usage = run(custom, [cached_request(f"h{i}", model="claude-haiku-4-5") for i in range(150)])
    assert sum(bool(u.cache_read_input_tokens) for u in usage.values()) == 50


def test_caches_are_per_model(sim: Simulator) -> None:
    run(sim, [cached_request("a0")])
    usage = run(sim, [cached_request("b0", model="claude-opus-5")])
    assert usage["b0"].cache_read_input_tokens == 0


def test_requests_running_at_the_same_moment_all_miss(instant: Simulator) -> None:
    usage = run(instant, [cached_request(f"i{i}") for i in range(50)])
    assert all(u.cache_creation_input_tokens == 1260 for u in usage.values())


def test_a_later_batch_reads_within_ttl_and_misses_after_it(sim: Simulator) -> None:
    run(sim, [cached_request("w0")], wait=10)  # written 1.5 s after create, good for 5 minutes
    sim.clock.advance(200)
    assert run(sim, [cached_request("r0")], wait=10)["r0"].cache_read_input_tokens == 1260
    sim.clock.advance(250)  # the read refreshed the TTL: still there 4.5 minutes later
    assert run(sim, [cached_request("r1")], wait=10)["r1"].cache_read_input_tokens == 1260
    sim.clock.advance(400)  # more than 5 minutes without use: gone
    assert run(sim, [cached_request("m0")], wait=10)["m0"].cache_read_input_tokens == 0


def test_one_hour_ttl_survives_where_five_minutes_does_not(sim: Simulator) -> None:
    first = run(sim, [cached_request("w1", ttl="1h")], wait=10)["w1"]
    assert first.cache_creation.ephemeral_1h_input_tokens == 1260
    other = "Elsewhere. " * 458  # a different prefix of 1260 tokens, on the 5-minute TTL
    assert (
        run(sim, [cached_request("w5", system=other)], wait=10)["w5"].cache_creation.ephemeral_5m_input_tokens == 1260
    )
    sim.clock.advance(1200)
    assert run(sim, [cached_request("r1", ttl="1h")], wait=10)["r1"].cache_read_input_tokens == 1260
    assert run(sim, [cached_request("r5", system=other)], wait=10)["r5"].cache_read_input_tokens == 0


def test_messages_endpoint_shares_the_cache(sim: Simulator) -> None:
    client = sim.client(_strict_response_validation=True)
    params = cached_request("x")["params"]
    first = client.messages.create(**params)
    second = client.messages.create(**params)
    assert first.usage.cache_creation_input_tokens == 1260 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 1260 and second.usage.service_tier == "standard"


def test_top_level_cache_control_caches_the_whole_prompt(sim: Simulator) -> None:
    client = sim.client()
    params = {
        "model": SONNET,
        "max_tokens": 10,
        "cache_control": {"type": "ephemeral"},
        "messages": [{"role": "user", "content": SYSTEM}],
    }
    first = client.messages.create(**params)
    second = client.messages.create(**params)
    assert first.usage.cache_creation_input_tokens == 4 + 1260
    assert second.usage.cache_read_input_tokens == 4 + 1260 and second.usage.input_tokens == 3


def test_cache_miss_rate_forces_misses() -> None:
    lossy = Simulator(SimConfig(cache_miss_rate=1.0))
    usage = run(lossy, [cached_request(f"q{i}") for i in range(200)])
    assert not any(u.cache_read_input_tokens for u in usage.values())


def test_more_than_four_breakpoints_is_an_error(instant: Simulator) -> None:
    client = instant.client()
    block = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    params = {"model": SONNET, "max_tokens": 5, "messages": [{"role": "user", "content": [block] * 5}]}
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        client.messages.create(**params)
