"""Contract tests of what realtime needs: latency, rate limits and their headers, 529 bursts,
the spend limit, the batch queue limit and the 300K-output beta — through the real SDK."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import anthropic
import httpx2
import pytest

from batchkit.simulator import (
    Faults,
    Latency,
    Processing,
    RateLimits,
    SimConfig,
    Simulator,
    SpendLimit,
    serve,
)
from batchkit.simulator.__main__ import build_parser, config_from_args

MODEL = "claude-haiku-4-5"
ASK = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "Say hello to the world"}]}
BETA = "output-300k-2026-03-24"


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def limited(rpm=None, itpm=None, otpm=None, **config) -> Simulator:
    return Simulator(SimConfig(seed=3, rate_limits=RateLimits(rpm, itpm, otpm), **config))


def test_every_messages_response_carries_consistent_rate_limit_headers() -> None:
    sim = limited(10, 10_000, 5_000)
    client = sim.client(max_retries=0)
    raw = client.messages.with_raw_response.create(**ASK)
    message = raw.parse()
    h = raw.headers
    assert (
        h["anthropic-ratelimit-requests-limit"],
        h["anthropic-ratelimit-input-tokens-limit"],
        h["anthropic-ratelimit-output-tokens-limit"],
    ) == ("10", "10000", "5000")
    assert int(h["anthropic-ratelimit-requests-remaining"]) == 9
    assert int(h["anthropic-ratelimit-input-tokens-remaining"]) == 10_000 - message.usage.input_tokens
    assert int(h["anthropic-ratelimit-output-tokens-remaining"]) == 5_000 - message.usage.output_tokens
    # "tokens" is the token limit closer to running out: here output (5,000 a minute)
    assert h["anthropic-ratelimit-tokens-limit"] == "5000"
    assert h["anthropic-ratelimit-tokens-remaining"] == h["anthropic-ratelimit-output-tokens-remaining"]
    now = sim.clock.now()
    reset = when(h["anthropic-ratelimit-requests-reset"])
    assert now < reset <= now + dt.timedelta(seconds=6.1)  # one request of 10/min refills in 6 s
    second = client.messages.with_raw_response.create(**ASK).headers
    assert int(second["anthropic-ratelimit-requests-remaining"]) == 8
    assert when(second["anthropic-ratelimit-requests-reset"]) > reset
    # an invalid request gets the headers too
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**{**ASK, "messages": []})
    assert "anthropic-ratelimit-requests-remaining" in info.value.response.headers


def test_default_limits_are_generous_and_can_be_turned_off() -> None:
    headers = Simulator().client().messages.with_raw_response.create(**ASK).headers
    assert int(headers["anthropic-ratelimit-requests-limit"]) >= 1000
    off = Simulator(SimConfig(rate_limits=RateLimits.off())).client().messages.with_raw_response.create(**ASK)
    assert not [k for k in off.headers if k.startswith("anthropic-ratelimit")]


def test_over_the_request_limit_is_429_with_retry_after_until_the_bucket_refills() -> None:
    sim = limited(rpm=2)
    client = sim.client(max_retries=0)
    client.messages.create(**ASK)
    client.messages.create(**ASK)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(**ASK)
    response = info.value.response
    assert info.value.type == "rate_limit_error" and "2 requests per minute" in info.value.message
    assert 0 < float(response.headers["retry-after"]) <= 30.1
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    sim.clock.advance(30)
    assert client.messages.create(**ASK).content
    assert sim.stats()["faults"] == {"rate_limit": 1}


def test_output_tokens_count_as_produced_and_hold_later_requests_back() -> None:
    sim = limited(otpm=30)
    client = sim.client(max_retries=0)
    first = client.messages.with_raw_response.create(**{**ASK, "max_tokens": 1000})
    produced = first.parse().usage.output_tokens
    assert 0 < produced < 30  # what was produced counts, not max_tokens=1000
    assert int(first.headers["anthropic-ratelimit-output-tokens-remaining"]) == 30 - produced
    while True:  # spend the rest of the output bucket
        try:
            client.messages.create(**ASK)
        except anthropic.RateLimitError as exc:
            assert "output tokens per minute" in exc.message
            assert float(exc.response.headers["retry-after"]) > 0
            break


def test_cache_reads_do_not_count_toward_the_input_limit() -> None:
    sim = limited(itpm=100_000)
    client = sim.client(max_retries=0)
    system = [{"type": "text", "text": "Background. " * 2000, "cache_control": {"type": "ephemeral"}}]
    ask = {**ASK, "system": system}
    first = client.messages.with_raw_response.create(**ask)
    u1 = first.parse().usage
    assert u1.cache_creation_input_tokens > 4096 and u1.cache_read_input_tokens == 0
    left1 = int(first.headers["anthropic-ratelimit-input-tokens-remaining"])
    assert left1 >= 100_000 - u1.input_tokens - u1.cache_creation_input_tokens - 1
    sim.clock.advance(0.001)
    second = client.messages.with_raw_response.create(**ask)
    u2 = second.parse().usage
    assert u2.cache_read_input_tokens == u1.cache_creation_input_tokens
    left2 = int(second.headers["anthropic-ratelimit-input-tokens-remaining"])
    assert left1 - left2 <= u2.input_tokens + 1  # the cached prefix (thousands of tokens) was free


def test_a_prompt_over_the_input_limit_alone_is_refused_for_good() -> None:
    client = limited(itpm=50).client(max_retries=3)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(**{**ASK, "messages": [{"role": "user", "content": "x" * 400}]})
    assert info.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in info.value.response.headers


def test_overloaded_bursts_follow_the_clock() -> None:
    # A wall second is a simulated microsecond: only the test moves the clock (a slow request on a
    # loaded machine cannot shift the bursts).
    config = SimConfig(seed=1, faults=Faults(overloaded_bursts=(10.0, 4.0)), start_time=1_000_000.0, time_scale=1e-6)
    sim = Simulator(config)
    client = sim.client(max_retries=0)
    outcomes = []
    for _ in range(20):
        try:
            client.messages.create(**ASK)
            outcomes.append("ok")
        except anthropic.OverloadedError as exc:
            assert exc.status_code == 529 and "retry-after" not in exc.response.headers
            outcomes.append("529")
        sim.clock.advance(1.0)
    assert outcomes.count("529") == 8  # 4 s of every 10 s, in two runs of 4
    text = "".join("x" if o == "529" else "." for o in outcomes)
    assert "xxxx" in text and "xxxxx" not in text


def test_monthly_spend_limit_is_429_without_retry_after_and_stops_the_sdk_retrying() -> None:
    sim = Simulator(SimConfig(spend_limit=SpendLimit(requests=2)))
    client = sim.client(max_retries=2)
    client.messages.create(**ASK)
    client.messages.create(**ASK)
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as info:
        client.messages.create(**ASK)
    exc = info.value
    assert isinstance(exc, anthropic.RateLimitError) and exc.error_code == "enforced_spend_limit_reached"
    assert "retry-after" not in exc.response.headers and exc.response.headers["x-should-retry"] == "false"
    assert "spend limit" in exc.message
    assert sim.stats()["messages.create"] == 3  # refused once, not retried


def test_workspace_usage_limit_by_dollars_is_the_400_form() -> None:
    sim = Simulator(SimConfig(spend_limit=SpendLimit(dollars=0.0001, kind="workspace")))
    client = sim.client(max_retries=0)
    answered = 0
    with pytest.raises(anthropic.BadRequestError) as info:
        for _ in range(100):
            client.messages.create(**ASK)  # each costs ~$0.00003 at Haiku 4.5's standard price
            answered += 1
    assert "You have reached your specified workspace API usage limits" in info.value.message
    assert 2 <= answered <= 5


def test_a_create_over_the_queue_limit_is_429_until_there_is_room() -> None:
    sim = Simulator(SimConfig(max_queued_batch_requests=10, processing=Processing(concurrency=2)))
    client = sim.client(max_retries=0)
    requests = [{"custom_id": f"r{i}", "params": ASK} for i in range(6)]
    client.messages.batches.create(requests=requests)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.batches.create(requests=requests)
    assert "processing queue" in info.value.message and "10" in info.value.message
    wait = float(info.value.response.headers["retry-after"])
    assert wait == pytest.approx(1.5, abs=0.05)  # when the first wave of 2 has finished: room for 6
    sim.clock.advance(wait * 0.8)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.batches.create(requests=requests)
    sim.clock.advance(wait * 0.2)
    assert client.messages.batches.create(requests=requests).processing_status == "in_progress"
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": ASK} for i in range(11)])
    assert info.value.response.headers["x-should-retry"] == "false"  # alone over the limit
    assert sim.stats()["faults"] == {"queue_full": 3}


def _big(model: str, max_tokens: int = 300_000) -> dict:
    return {"custom_id": model.replace(".", "-"), "params": {**ASK, "model": model, "max_tokens": max_tokens}}


def test_300k_output_beta_is_accepted_for_covered_models_on_batches_only() -> None:
    sim = Simulator(SimConfig(processing=Processing.instant()))
    client = sim.client(max_retries=0, _strict_response_validation=True)
    batch = client.beta.messages.batches.create(
        betas=[BETA],
        requests=[
            _big("claude-opus-4-6"),
            _big("claude-sonnet-4-6"),
            _big("claude-opus-5"),
            _big("claude-haiku-4-5"),
            _big("claude-sonnet-4-5"),
        ],
    )
    client.beta.messages.batches.retrieve(batch.id, betas=[BETA])
    results = {r.custom_id: r.result for r in client.beta.messages.batches.results(batch.id, betas=[BETA])}
    assert {k for k, r in results.items() if r.type == "succeeded"} == {
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-opus-5",
    }
    haiku = results["claude-haiku-4-5"]
    assert haiku.type == "errored" and haiku.error.error.type == "invalid_request_error"
    assert "64000" in haiku.error.error.message and "does not cover claude-haiku-4-5" in haiku.error.error.message
    # the same requests without the header: the standard caps apply
    plain = client.messages.batches.create(
        requests=[_big("claude-opus-4-6"), _big("claude-opus-4-6", 128_000) | {"custom_id": "at-cap"}]
    )
    client.messages.batches.retrieve(plain.id)
    by_id = {r.custom_id: r.result for r in client.messages.batches.results(plain.id)}
    assert by_id["at-cap"].type == "succeeded"
    assert by_id["claude-opus-4-6"].type == "errored" and BETA in by_id["claude-opus-4-6"].error.error.message
    over = client.beta.messages.batches.create(betas=[BETA], requests=[_big("claude-opus-4-6", 300_001)])
    client.beta.messages.batches.retrieve(over.id, betas=[BETA])
    assert next(iter(client.beta.messages.batches.results(over.id, betas=[BETA]))).result.type == "errored"


def test_300k_output_is_refused_on_messages_even_with_the_header() -> None:
    client = Simulator().client(max_retries=0)
    body = {**ASK, "model": "claude-opus-4-6", "max_tokens": 300_000}
    for headers in ({}, {"anthropic-beta": BETA}):
        with pytest.raises(anthropic.BadRequestError) as info:
            client.post("/v1/messages", body=body, cast_to=httpx2.Response, options={"headers": headers})
        assert "300000 > 128000" in info.value.message and "Message Batches API only" in info.value.message


def test_latency_is_slept_per_request_so_concurrent_requests_overlap() -> None:
    sim = Simulator(SimConfig(latency=Latency(first_token=0.25, per_output_token=0.001)))
    with serve(sim, port=0) as server:
        aclient = server.async_client(max_retries=0)

        async def run() -> list[float]:
            async def one() -> float:
                start = time.monotonic()
                await aclient.messages.create(**ASK)
                return time.monotonic() - start

            try:
                return await asyncio.gather(*(one() for _ in range(12)))
            finally:
                await aclient.close()

        start = time.monotonic()
        each = asyncio.run(run())
        total = time.monotonic() - start
    assert min(each) >= 0.25
    assert total < 0.25 * 12 / 3  # 12 requests of >= 0.25 s overlap: far less than 3 s
    # instant (the default) does not sleep
    client = Simulator().client()
    start = time.monotonic()
    for _ in range(5):
        client.messages.create(**ASK)
    assert time.monotonic() - start < 0.5


def test_latency_runs_on_the_simulated_clock() -> None:
    sim = Simulator(SimConfig(time_scale=100, latency=Latency(first_token=20.0)))
    start = time.monotonic()
    sim.client().messages.create(**ASK)
    assert 0.2 <= time.monotonic() - start < 1.5  # 20 simulated seconds at 100x


def test_cli_flags_build_the_realtime_config() -> None:
    config = config_from_args(
        build_parser().parse_args(
            [
                "--latency",
                "typical",
                "--rpm",
                "50",
                "--itpm",
                "20000",
                "--otpm",
                "4000",
                "--queue-limit",
                "100000",
                "--spend-limit-dollars",
                "5",
                "--spend-limit-kind",
                "workspace",
                "--overloaded-bursts",
                "60:5",
            ]
        )
    )
    assert config.latency == Latency.typical()
    assert config.rate_limits == RateLimits(50, 20_000, 4_000)
    assert config.max_queued_batch_requests == 100_000
    assert config.spend_limit == SpendLimit(dollars=5.0, kind="workspace")
    assert config.faults.overloaded_bursts == (60.0, 5.0)
    off = config_from_args(build_parser().parse_args(["--no-rate-limits"]))
    assert off.rate_limits == RateLimits.off() and off.latency == Latency() and off.spend_limit is None
