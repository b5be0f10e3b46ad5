"""The realtime backend: the rate-limit governor (pure, on a fake clock) and the sender (real SDK
against the simulator)."""

from __future__ import annotations

import asyncio
import threading

import anthropic
import msgspec
import pytest

from batchkit import SpendLimitError
from batchkit.backends.limits import Limits, rate_limit_group
from batchkit.backends.ratelimit import Governor, Reservation
from batchkit.backends.sender import RealtimeSender
from batchkit.core.results import parse_result_stream
from batchkit.simulator import Faults, Latency, RateLimits, SimConfig, Simulator, SpendLimit, serve
from tests.conftest import echo

MODEL = "claude-haiku-4-5"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def headers(rpm: int, rpm_left: int, itpm: int = 0, itpm_left: int = 0, otpm: int = 0, otpm_left: int = 0) -> dict:
    out = {"anthropic-ratelimit-requests-limit": str(rpm), "anthropic-ratelimit-requests-remaining": str(rpm_left)}
    if itpm:
        out |= {
            "anthropic-ratelimit-input-tokens-limit": str(itpm),
            "anthropic-ratelimit-input-tokens-remaining": str(itpm_left),
        }
    if otpm:
        out |= {
            "anthropic-ratelimit-output-tokens-limit": str(otpm),
            "anthropic-ratelimit-output-tokens-remaining": str(otpm_left),
        }
    return out


def grant(governor: Governor, group: str = "g", tokens: int = 10, max_tokens: int = 20) -> Reservation:
    got = governor.acquire(group, tokens, max_tokens)
    assert isinstance(got, Reservation), got
    return got


# --------------------------------------------------------------------------- the governor


def test_buckets_are_keyed_by_rate_limit_group_not_model_id() -> None:
    opus = rate_limit_group("claude-opus-4-6")
    assert opus == rate_limit_group("claude-opus-4-8") == rate_limit_group("claude-opus-4-1")
    assert rate_limit_group("claude-sonnet-4-5-20250929") == rate_limit_group("claude-sonnet-4-6")
    assert rate_limit_group("claude-haiku-4-5") != rate_limit_group("claude-sonnet-4-6")
    clock = Clock()
    governor = Governor(fallback=Limits(requests_per_minute=2), clock=clock)
    grant(governor, rate_limit_group("claude-opus-4-6"))
    grant(governor, rate_limit_group("claude-opus-4-7"))
    assert governor.acquire(rate_limit_group("claude-opus-4-8"), 10, 20) == pytest.approx(30.0)
    grant(governor, rate_limit_group("claude-haiku-4-5"))  # another group has its own buckets


def test_gentle_start_then_one_more_in_flight_per_answer_until_a_429() -> None:
    clock = Clock()
    governor = Governor(clock=clock, initial_concurrency=3, max_concurrency=10)
    held = [grant(governor) for _ in range(3)]
    assert governor.acquire("g", 10, 20) == 0.0  # all slots taken: wait for an answer
    for reservation in held:
        governor.release(reservation, input_tokens=10, output_tokens=5)
        governor.succeeded()
    assert governor.concurrency == 6
    governor.rate_limited_for(2.0)
    assert governor.concurrency == 3  # halved...
    clock.t += 0.5
    governor.rate_limited_for(2.0)  # ...once for the whole round that met the limit
    assert governor.concurrency == 3
    clock.t += 2.0  # then growing by about one per round
    for _ in range(3):
        governor.succeeded()
    assert 3.9 < governor.concurrency < 4.1


def test_limits_are_learned_from_headers_and_pace_the_requests() -> None:
    clock = Clock()
    governor = Governor(clock=clock, max_concurrency=256, initial_concurrency=256)
    first = grant(governor)
    governor.release(first, input_tokens=10, output_tokens=5, headers=headers(60, 59, itpm=600, itpm_left=590))
    assert governor.limits("g") == Limits(60, 600, None)
    for _ in range(59):
        governor.release(grant(governor), input_tokens=10, output_tokens=5)
    wait = governor.acquire("g", 10, 20)
    assert wait == pytest.approx(1.0)  # 60 a minute: one a second once the bucket is empty
    clock.t += 1.0
    grant(governor)


def test_requests_sent_before_the_limits_were_known_are_accounted_when_they_are() -> None:
    clock = Clock()
    governor = Governor(clock=clock, initial_concurrency=4)
    held = [grant(governor) for _ in range(4)]  # gentle start, limits still unknown
    governor.release(held[0], input_tokens=10, output_tokens=5, headers=headers(100, 99))
    # the server had counted only the first: the three still in flight must come off too
    assert governor._groups["g"].buckets[0].level == pytest.approx(96)


def test_reserve_expected_output_and_reconcile_with_usage() -> None:
    clock = Clock()
    governor = Governor(fallback=Limits(None, 1000, 1000), clock=clock)
    assert governor.expected_output("g", 5000) == 1024  # nothing seen yet: max_tokens up to 1,024
    first = grant(governor, tokens=100, max_tokens=5000)
    assert first.output_tokens == 1024
    governor.release(first, input_tokens=40, output_tokens=10)
    buckets = governor._groups["g"].buckets
    assert buckets[1].level == pytest.approx(1000 - 40)  # 100 reserved, 40 counted: 60 back
    assert buckets[2].level == pytest.approx(1000 - 10)  # 1,024 reserved, 10 produced
    assert governor.expected_output("g", 5000) == 11  # what answers produce, +10%, not max_tokens
    assert governor.expected_output("g", 8) == 8
    second = grant(governor, tokens=100, max_tokens=5000)
    assert second.output_tokens == 11


def test_headers_lower_the_level_but_never_raise_it() -> None:
    clock = Clock()
    governor = Governor(clock=clock)
    governor.sync("g", headers(100, 100))
    for _ in range(4):
        grant(governor)
    assert governor._groups["g"].buckets[0].level == pytest.approx(96)
    governor.sync("g", headers(100, 99))  # stale: the server had not seen the others yet
    assert governor._groups["g"].buckets[0].level == pytest.approx(96)
    governor.sync("g", headers(100, 10))  # someone else uses the same key
    assert governor._groups["g"].buckets[0].level == pytest.approx(10)


def test_a_429_pauses_every_group_until_retry_after() -> None:
    clock = Clock()
    governor = Governor(clock=clock)
    governor.rate_limited_for(3.0, "g", headers(100, 0))
    assert governor.acquire("g", 10, 20) == pytest.approx(3.0)
    assert governor.acquire("other", 10, 20) == pytest.approx(3.0)
    clock.t += 3.0
    grant(governor, "other")
    assert governor.rate_limited == 1


def test_529_backs_off_globally_without_shrinking_the_rate_estimate() -> None:
    clock = Clock()
    governor = Governor(clock=clock, initial_concurrency=8)
    governor.sync("g", headers(600, 600))
    waits = [governor.overloaded_for() for _ in range(7)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
    assert governor.limits("g").requests_per_minute == 600 and governor.concurrency == 8
    assert governor.acquire("g", 10, 20) == pytest.approx(16.0)
    clock.t += 16.0
    governor.release(grant(governor), input_tokens=1, output_tokens=1)
    governor.succeeded()
    assert governor.overloaded_for() == 0.5  # an answer ended the streak


# --------------------------------------------------------------------------- the sender


def body(i: int, model: str = MODEL, **extra) -> bytes:
    return msgspec.json.encode(
        {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": f"question {i}"}], **extra}
    )


def requests(n: int, **extra) -> list[tuple[str, bytes]]:
    return [(f"k{i}", body(i, **extra)) for i in range(n)]


def sim_of(**config) -> Simulator:
    return Simulator(SimConfig(seed=2, **config), responder=echo)


def test_every_request_is_answered_under_its_own_key_whatever_the_order() -> None:
    sim = sim_of(latency=Latency(first_token=0.01, per_output_token=0.0, jitter=0.9))
    chunks: list[bytes] = []
    progress = RealtimeSender(sim.client()).send(requests(120), chunks.append)
    assert progress.succeeded == 120 and progress.errored == 0 and not progress.stopped
    assert len(chunks) > 1  # delivered as it came, in small groups
    cols = parse_result_stream(chunks)
    assert sorted(cols.keys) == sorted(f"k{i}" for i in range(120))
    assert cols.keys != [f"k{i}" for i in range(120)]  # they came back out of order...
    for pos, key in enumerate(cols.keys):  # ...and each answer is its own row's
        assert cols.status(pos) == "succeeded" and cols.answers[pos] == f"re:question {key[1:]}"
    assert (cols.usage[:, 0] > 0).all() and sim.stats()["messages.create"] == 120


def test_transient_errors_are_retried_by_one_bounded_loop_and_others_come_back_errored() -> None:
    faults = Faults(
        schedule=[
            ("messages.create", [2, 3], 429),
            ("messages.create", 5, 529),
            ("messages.create", 7, 500),
            ("messages.create", 9, "drop"),
        ],
        retry_after=0.01,
    )
    sim = sim_of(faults=faults)
    chunks: list[bytes] = []
    todo = [*requests(20), ("bad-model", body(0, model="claude-nope")), ("bad-param", body(0, temperature=0.5))]
    progress = RealtimeSender(sim.client()).send(todo, chunks.append)
    cols = parse_result_stream(chunks)
    by_key = {key: pos for pos, key in enumerate(cols.keys)}
    assert len(by_key) == 22 and progress.succeeded == 20 and progress.errored == 2
    assert cols.errors[by_key["bad-model"]][0] == "not_found_error"
    assert cols.errors[by_key["bad-param"]][0] == "invalid_request_error"
    assert progress.errored == 2
    assert progress.rate_limited == 2 and progress.overloaded == 1 and progress.retries == 5
    assert sim.stats()["messages.create"] == 22 + 5  # the SDK's own retries were off

    flaky = sim_of(faults=Faults(http_error_rate={500: 1.0}, retry_after=0.001))
    chunks = []
    progress = RealtimeSender(flaky.client(), max_attempts=2).send(requests(3), chunks.append)
    cols = parse_result_stream(chunks)
    assert progress.errored == 3 and {cols.errors[i][0] for i in range(3)} == {"api_error"}
    assert flaky.stats()["messages.create"] == 6  # bounded: two tries each


def test_a_spend_limit_stops_everything_within_one_round_and_keeps_the_answers() -> None:
    sim = sim_of(spend_limit=SpendLimit(requests=30), latency=Latency(first_token=0.02))
    chunks: list[bytes] = []
    sender = RealtimeSender(sim.client(), initial_concurrency=8, max_concurrency=16)
    with pytest.raises(SpendLimitError) as info:
        sender.send(requests(400), chunks.append)
    error = info.value
    assert "spend limit" in str(error) and "enforced_spend_limit_reached" in str(error)
    assert error.status_code == 429 and error.answered == 30 and error.unsent == 370
    assert len(parse_result_stream(chunks)) == 30  # every answer that came back is kept
    assert sim.stats()["messages.create"] <= 30 + 16  # at most one round was refused: no storm

    workspace = sim_of(spend_limit=SpendLimit(requests=5, kind="workspace"))
    with pytest.raises(SpendLimitError) as info:
        RealtimeSender(workspace.client()).send(requests(50), lambda chunk: None)
    assert info.value.status_code == 400 and "usage limits" in info.value.api_message


def test_an_auth_error_stops_at_once_with_the_sdk_error() -> None:
    sim = sim_of(api_keys=frozenset({"right"}))
    with pytest.raises(anthropic.AuthenticationError):
        RealtimeSender(sim.client(api_key="wrong")).send(requests(50), lambda chunk: None)
    assert sim.stats()["messages.create"] <= 4


def test_the_stop_event_stops_sending_and_keeps_what_came_back() -> None:
    sim = sim_of(latency=Latency(first_token=0.02))
    stop = threading.Event()
    chunks: list[bytes] = []

    def on_results(chunk: bytes) -> None:
        chunks.append(chunk)
        stop.set()

    progress = RealtimeSender(sim.client(), group_size=2).send(requests(300), on_results, stop=stop)
    answered = sim.stats()["messages_answered"]
    assert progress.stopped and 0 < progress.done < 300
    assert len(parse_result_stream(chunks)) == progress.done == answered  # nothing paid was dropped


def test_ctrl_c_stops_at_once_delivers_what_came_back_and_re_raises() -> None:
    sim = sim_of(latency=Latency(first_token=0.02))
    chunks: list[bytes] = []

    def on_results(chunk: bytes) -> None:
        chunks.append(chunk)
        if len(chunks) == 2:
            raise KeyboardInterrupt

    sender = RealtimeSender(sim.client(), group_size=2)
    with pytest.raises(KeyboardInterrupt):
        sender.send(requests(300), on_results)
    assert sender.progress.stopped and len(parse_result_stream(chunks)) == sender.progress.done < 300


def test_send_works_inside_a_running_event_loop_and_send_async_does_not_block_it() -> None:
    sim = sim_of(latency=Latency(first_token=0.02))
    sender = RealtimeSender(sim.client())

    async def notebook_cell() -> tuple[int, int, int]:
        blocking = sender.send(requests(10), lambda chunk: None)  # as a cell in a running kernel
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        chunks: list[bytes] = []
        progress = await sender.send_async(requests(40), chunks.append)
        task.cancel()
        return blocking.succeeded, progress.succeeded + len(parse_result_stream(chunks)), ticks

    blocking, answered, ticks = asyncio.run(notebook_cell())
    assert blocking == 10 and answered == 80
    assert ticks > 3  # the caller's loop kept running while the sender worked


def test_rate_limits_from_headers_avoid_429s_over_http() -> None:
    sim = sim_of(
        rate_limits=RateLimits(requests_per_minute=300, input_tokens_per_minute=None, output_tokens_per_minute=None),
        latency=Latency(first_token=0.02),
    )
    with serve(sim, port=0) as server:
        client = server.client()
        chunks: list[bytes] = []
        progress = RealtimeSender(client).send(requests(306), chunks.append)  # 6 past the bucket: 1.2 s
        client.close()
    assert progress.succeeded == 306 and progress.rate_limited == 0
    assert progress.elapsed >= 1.0  # paced by the limit the headers gave


def test_the_async_client_comes_from_a_registered_twin_or_is_given() -> None:
    from batchkit.backends.twins import register_async_twin

    sim = sim_of()
    client = sim.client()
    made: list[anthropic.AsyncAnthropic] = []

    def factory() -> anthropic.AsyncAnthropic:
        made.append(sim.async_client())
        return made[-1]

    register_async_twin(client, factory)
    assert RealtimeSender(client).send(requests(3), lambda chunk: None).succeeded == 3
    assert len(made) == 1
    assert RealtimeSender(async_client=factory).send(requests(2), lambda chunk: None).succeeded == 2
    assert len(made) == 2
    assert RealtimeSender(client).send([], lambda chunk: None).done == 0  # nothing to send: no call
    assert sim.stats()["messages.create"] == 5


def test_a_429_that_says_no_retry_comes_back_errored_at_once() -> None:
    sim = sim_of(rate_limits=RateLimits(input_tokens_per_minute=50))
    chunks: list[bytes] = []
    long = msgspec.json.encode({"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 400}]})
    progress = RealtimeSender(sim.client()).send([("long", long), *requests(1)], chunks.append)
    cols = parse_result_stream(chunks)
    assert progress.errored == 1 and progress.retries == 0
    assert cols.errors[cols.keys.index("long")][0] == "rate_limit_error"
    assert sim.stats()["messages.create"] == 2
