"""Message Batches through the real SDK: lifecycle, results, list, cancel, delete, expiry, archive."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import anthropic
import msgspec
import pytest
from anthropic.types.beta.messages import BetaMessageBatchIndividualResponse
from anthropic.types.messages import MessageBatch
from simtools import MODEL, finish, request, requests, strict_results

from batchkit.simulator import Processing, SimConfig, Simulator

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_batch_lifecycle_counts_flip_only_at_the_end(sim: Simulator, client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(250))
    assert re.fullmatch(r"msgbatch_[0-9A-Za-z]{24}", created.id)
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 250 and created.results_url is None
    assert created.expires_at - created.created_at == timedelta(hours=24)
    # default processing: 1 s + 3 waves of 0.5 s → still running after 1.5 s, done after 3 s
    sim.clock.advance(1.5)
    mid = client.messages.batches.retrieve(created.id)
    assert mid.processing_status == "in_progress"
    assert mid.request_counts.processing == 250 and mid.request_counts.succeeded == 0
    assert mid.ended_at is None and mid.results_url is None
    sim.clock.advance(1.5)
    ended = client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 250 and ended.request_counts.processing == 0
    assert ended.ended_at is not None and ended.ended_at - ended.created_at == timedelta(seconds=2.5)
    assert ended.results_url == f"http://sim.local/v1/messages/batches/{created.id}/results"


def test_default_processing_ends_a_few_hundred_requests_within_seconds(client: anthropic.Anthropic) -> None:
    import time

    created = client.messages.batches.create(requests=requests(300))
    deadline = time.monotonic() + 6
    while client.messages.batches.retrieve(created.id).processing_status != "ended":
        assert time.monotonic() < deadline, "a 300-request batch should end in ~2.5 s at time_scale=1"
        time.sleep(0.2)


def test_wire_shape_every_field_present_and_timestamps_rfc3339(
    instant: Simulator, iclient: anthropic.Anthropic
) -> None:
    created = iclient.messages.batches.create(requests=requests(2))
    raw = iclient.messages.batches.with_raw_response.retrieve(created.id)
    assert re.fullmatch(r"req_[0-9A-Za-z]+", raw.headers["request-id"])
    body = msgspec.json.decode(raw.http_response.content)
    assert set(body) == {
        "id",
        "type",
        "processing_status",
        "request_counts",
        "created_at",
        "expires_at",
        "ended_at",
        "cancel_initiated_at",
        "archived_at",
        "results_url",
    }
    assert body["cancel_initiated_at"] is None and body["archived_at"] is None
    for key in ("created_at", "expires_at", "ended_at"):
        assert TIMESTAMP.match(body[key]), body[key]
    MessageBatch.model_validate(body)


def test_results_succeeded_with_usage_and_ids(instant: Simulator, iclient: anthropic.Anthropic) -> None:
    created = iclient.messages.batches.create(requests=requests(20))
    results = strict_results(iclient, created.id)
    assert set(results) == {f"r{i}" for i in range(20)}
    message = results["r3"].result.message
    assert results["r3"].result.type == "succeeded"
    assert re.fullmatch(r"msg_[0-9A-Za-z]{24}", message.id)
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert message.usage.service_tier == "batch" and message.usage.input_tokens > 0
    assert len({r.result.message.id for r in results.values()}) == 20
    # the SDK's own typed iterator reads the same file
    typed = {r.custom_id: r for r in iclient.messages.batches.results(created.id)}
    assert typed["r3"].result.message.content[0].text == message.content[0].text


def test_results_file_is_lf_only_jsonl_without_blank_lines(instant: Simulator, iclient: anthropic.Anthropic) -> None:
    created = iclient.messages.batches.create(requests=requests(30))
    iclient.messages.batches.retrieve(created.id)
    with iclient.messages.batches.with_streaming_response.results(created.id) as response:
        data = response.read()
    assert b"\r" not in data and b"\n\n" not in data and data.endswith(b"\n")
    assert len(data.splitlines()) == 30


def test_invalid_params_come_back_errored_after_the_batch_ends(
    instant: Simulator, iclient: anthropic.Anthropic
) -> None:
    bad = [
        {"custom_id": "no-model", "params": {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}},
        {"custom_id": "no-max", "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}},
        {
            "custom_id": "zero-max",
            "params": {"model": MODEL, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
        },
        {"custom_id": "no-msgs", "params": {"model": MODEL, "max_tokens": 5, "messages": []}},
        {
            "custom_id": "bad-role",
            "params": {"model": MODEL, "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
        },
        {
            "custom_id": "bad-block",
            "params": {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        },
        {
            "custom_id": "stream",
            "params": {"model": MODEL, "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "x"}]},
        },
        {
            "custom_id": "temperature",
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "temperature": 0.5,
                "messages": [{"role": "user", "content": "x"}],
            },
        },
        {
            "custom_id": "unknown-model",
            "params": {
                "model": "claude-nonexistent-9",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
            },
        },
        request("fine"),
    ]
    created = iclient.messages.batches.create(requests=bad)
    batch = iclient.messages.batches.retrieve(created.id)
    assert batch.request_counts.errored == 9 and batch.request_counts.succeeded == 1
    results = strict_results(iclient, created.id)
    for cid, item in results.items():
        if cid == "fine":
            assert item.result.type == "succeeded"
            continue
        assert item.result.type == "errored", cid
        error = item.result.error
        assert error.type == "error" and error.request_id.startswith("req_")
        expected = "not_found_error" if cid == "unknown-model" else "invalid_request_error"
        assert error.error.type == expected, (cid, error.error)
    assert "max_tokens" in results["no-max"].result.error.error.message
    assert "temperature" in results["temperature"].result.error.error.message


def test_sampling_params_pass_on_the_old_version_or_when_allowed(instant: Simulator) -> None:
    old = instant.client(default_headers={"anthropic-version": "2023-06-01"}, max_retries=0)
    created = old.messages.batches.create(requests=[request("t", temperature=0.2)])
    assert old.messages.batches.retrieve(created.id).request_counts.succeeded == 1
    lax = Simulator(SimConfig(reject_sampling_params=False, processing=Processing.instant())).client()
    created = lax.messages.batches.create(requests=[request("t", top_k=3)])
    assert lax.messages.batches.retrieve(created.id).request_counts.succeeded == 1


def test_list_newest_first_with_envelope_and_both_cursors(instant: Simulator, iclient: anthropic.Anthropic) -> None:
    ids = [iclient.messages.batches.create(requests=requests(1)).id for _ in range(7)]
    newest_first = ids[::-1]
    page = iclient.messages.batches.list(limit=3)
    assert [b.id for b in page.data] == newest_first[:3]
    assert page.has_more is True and page.first_id == newest_first[0] and page.last_id == newest_first[2]
    # SDK auto-pagination follows after_id to the end
    assert [b.id for b in iclient.messages.batches.list(limit=3)] == newest_first
    # before_id pages towards newer batches, and auto-pagination follows first_id
    before = iclient.messages.batches.list(limit=2, before_id=ids[0])
    assert [b.id for b in before.data] == newest_first[-3:-1]
    walked = [b.id for b in iclient.messages.batches.list(limit=2, before_id=ids[0])]
    assert walked == [ids[2], ids[1], ids[4], ids[3], ids[6], ids[5]]  # page by page, each newest first
    last = iclient.messages.batches.list(limit=5, after_id=ids[2])
    assert [b.id for b in last.data] == [ids[1], ids[0]] and last.has_more is False
    assert iclient.messages.batches.list().data[0].id == ids[-1]
    with pytest.raises(anthropic.BadRequestError):
        iclient.messages.batches.list(limit=1001)
    with pytest.raises(anthropic.BadRequestError):
        iclient.messages.batches.list(limit=0)


def test_cancel_settles_unstarted_requests_as_canceled(sim: Simulator, client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(500))
    sim.clock.advance(1.2)  # first wave (100 requests) in flight
    canceling = client.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == 500
    ended = finish(sim, client, created.id, 5)
    counts = ended.request_counts
    assert (counts.succeeded, counts.canceled, counts.processing) == (100, 400, 0)
    results = strict_results(client, created.id)
    assert sum(r.result.type == "canceled" for r in results.values()) == 400
    assert results["r0"].result.type == "succeeded" and results["r499"].result.type == "canceled"


def test_cancel_before_anything_started_cancels_everything(sim: Simulator, client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(3))
    client.messages.batches.cancel(created.id)
    ended = finish(sim, client, created.id, 1)
    assert ended.request_counts.canceled == 3 and ended.ended_at is not None


def test_delete_only_once_ended_and_never_409(sim: Simulator, client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.delete(created.id)
    assert info.value.status_code == 400 and info.value.type == "invalid_request_error"
    finish(sim, client, created.id)
    deleted = client.messages.batches.delete(created.id)
    assert deleted.id == created.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(created.id)
    assert created.id not in [b.id for b in client.messages.batches.list()]


def test_unknown_batch_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.batches.retrieve("msgbatch_013Zva2CMHLNnXjNJJKqJ2EF")
    assert info.value.body["error"]["type"] == "not_found_error"
    assert info.value.request_id and info.value.request_id.startswith("req_")


def test_results_before_the_end_are_refused(sim: Simulator, client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(created.id)
    with pytest.raises(anthropic.BadRequestError):
        client.get(f"/v1/messages/batches/{created.id}/results", cast_to=object)


def test_unprocessed_requests_expire_at_24_hours() -> None:
    # 2 requests per day: the first finishes, the second would finish after expires_at
    slow = Simulator(SimConfig(processing=Processing(fixed_latency=0, per_request=20 * 3600, concurrency=1)))
    client = slow.client(_strict_response_validation=True)
    created = client.messages.batches.create(requests=requests(3))
    slow.clock.advance(23 * 3600)
    assert client.messages.batches.retrieve(created.id).processing_status == "in_progress"
    slow.clock.advance(3600)
    ended = client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended" and ended.ended_at == ended.expires_at
    assert (ended.request_counts.succeeded, ended.request_counts.expired) == (1, 2)
    assert {r.result.type for r in strict_results(client, created.id).values()} == {"succeeded", "expired"}


def test_fast_clock_expires_and_archives_in_wall_seconds() -> None:
    import time

    fast = Simulator(
        SimConfig(
            time_scale=3600 * 24 * 30,  # a month per wall second
            processing=Processing(fixed_latency=0, per_request=30 * 3600, concurrency=1),
        )
    )
    client = fast.client(_strict_response_validation=True)
    created = client.messages.batches.create(requests=requests(2))
    time.sleep(0.2)  # ≈ 6 simulated days
    ended = client.messages.batches.retrieve(created.id)
    assert ended.request_counts.expired == 2 and ended.archived_at is None
    time.sleep(0.9)
    archived = client.messages.batches.retrieve(created.id)
    assert archived.archived_at == archived.created_at + timedelta(days=29)


def test_archived_results_are_gone_with_a_clear_404(instant: Simulator, iclient: anthropic.Anthropic) -> None:
    created = iclient.messages.batches.create(requests=requests(2))
    assert len(strict_results(iclient, created.id)) == 2
    instant.clock.advance(29 * 24 * 3600)
    batch = iclient.messages.batches.retrieve(created.id)
    assert batch.archived_at is not None and batch.processing_status == "ended"
    with pytest.raises(anthropic.NotFoundError, match="archived"):
        list(iclient.messages.batches.results(created.id))


def test_beta_namespace_same_paths_and_records_the_header(instant: Simulator) -> None:
    client = instant.client(_strict_response_validation=True)
    created = client.beta.messages.batches.create(requests=requests(2), betas=["output-300k-2026-03-24"])
    assert client.beta.messages.batches.retrieve(created.id).processing_status == "ended"
    assert [r.custom_id for r in client.beta.messages.batches.results(created.id)] == ["r0", "r1"]
    with client.beta.messages.batches.with_streaming_response.results(created.id) as response:
        for line in response.iter_lines():
            item = BetaMessageBatchIndividualResponse.model_validate(msgspec.json.decode(line))
            assert item.result.type == "succeeded" and item.result.message.usage.service_tier == "batch"
    assert created.id in [b.id for b in client.beta.messages.batches.list()]
    assert instant.engine.get(created.id).betas == ("output-300k-2026-03-24",)
    # an old SDK's ?beta=true is ignored
    old_style = client.get(
        f"/v1/messages/batches/{created.id}", options={"params": {"beta": "true"}}, cast_to=MessageBatch
    )
    assert old_style.id == created.id
    assert client.beta.messages.batches.delete(created.id).type == "message_batch_deleted"


def test_results_url_follows_the_host_and_path_prefix(instant: Simulator) -> None:
    client = instant.client(base_url="http://sim.local/some/prefix")
    created = client.messages.batches.create(requests=requests(1))
    batch = client.messages.batches.retrieve(created.id)
    assert batch.results_url == f"http://sim.local/some/prefix/v1/messages/batches/{created.id}/results"
    assert [r.custom_id for r in client.messages.batches.results(created.id)] == ["r0"]


def test_async_client_full_cycle(instant: Simulator) -> None:
    async def run() -> list[str]:
        client = instant.async_client(_strict_response_validation=True)
        created = await client.messages.batches.create(requests=requests(5))
        batch = await client.messages.batches.retrieve(created.id)
        assert batch.processing_status == "ended"
        ids = [b.id async for b in client.messages.batches.list(limit=1)]
        assert ids == [created.id]
        out = [r.custom_id async for r in await client.messages.batches.results(created.id)]
        beta = await client.beta.messages.batches.cancel(created.id)
        assert beta.processing_status == "ended"
        await client.close()
        return out

    assert sorted(asyncio.run(run())) == [f"r{i}" for i in range(5)]
