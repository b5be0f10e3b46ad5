"""The backend seam: Message Batches through the interface, and the one SDK-error map.

Errors come from the real SDK talking to the simulator (its fault schedule); the few the
simulator cannot produce yet (spend limits) are SDK exceptions built from a response.
"""

from __future__ import annotations

import datetime as dt

import anthropic
import httpx2
import pytest

from batchkit.backends import RESULTS_CUT, Action, Backend, CallFailed, decide
from batchkit.backends.batches import RESULTS_ATTEMPTS, MessageBatches
from batchkit.core.plan import chunk_requests, make_line
from batchkit.core.results import CODE_STATUS
from batchkit.simulator import Faults, Processing, serve
from tests.conftest import make_sim

BODY = b'{"model":"claude-haiku-4-5","max_tokens":20,"messages":[{"role":"user","content":"hi %d"}]}'


def _unit(n: int) -> tuple[list[str], bytes]:
    chunk = chunk_requests({f"k{i}": make_line(f"k{i}", BODY % i) for i in range(n)})[0]
    return chunk.keys, chunk.body


def _failure(sim, call) -> CallFailed:
    backend = MessageBatches(sim.client())
    with pytest.raises(CallFailed) as info:
        call(backend)
    assert isinstance(info.value.__cause__, anthropic.APIError)  # the SDK's own error rides along
    return info.value


def test_message_batches_sends_tracks_and_collects_a_unit():
    sim = make_sim(processing=Processing(fixed_latency=5.0, per_request=0.0), time_scale=50)
    backend: Backend = MessageBatches(sim.client())
    keys, body = _unit(3)
    sent = backend.send(body)
    assert sent.id.startswith("msgbatch_") and sent.state == "in_progress"
    assert sent.fields["request_counts"]["processing"] == 3 and sent.fields["created_at"].endswith("Z")
    found = backend.find_sent(n_requests=3, intent_at=dt.datetime.now(dt.UTC), claimed=set())
    assert found is not None and found.id == sent.id
    assert backend.find_sent(n_requests=3, intent_at=dt.datetime.now(dt.UTC), claimed={sent.id}) is None
    sim.clock.advance(10)
    ended = backend.track(sent.id)
    assert ended.state == "ended" and ended.fields["request_counts"]["succeeded"] == 3
    columns = backend.collect(sent.id)
    assert sorted(columns.keys) == sorted(keys)
    assert {CODE_STATUS[c] for c in columns.statuses} == {"succeeded"}
    assert backend.poll_schedule(0.25) == (0.25,)


def test_cancel_goes_through_the_interface():
    sim = make_sim(processing=Processing(fixed_latency=60.0, per_request=0.0))
    backend = MessageBatches(sim.client())
    sent = backend.send(_unit(2)[1])
    assert backend.cancel(sent.id).state in ("canceling", "ended")
    assert sim.stats()["batches.cancel"] == 1


@pytest.mark.parametrize(
    ("status", "action", "fix"),
    [
        (400, Action.STOP, "fix what the API's message names"),
        (401, Action.STOP, "check the API key"),
        (402, Action.STOP, "add credit"),
        (403, Action.STOP, "use a key whose workspace"),
        (413, Action.STOP, "chunk_bytes="),
        (429, Action.RETRY, None),
        (529, Action.RETRY, None),
        (500, Action.RECONCILE, None),
        (409, Action.RECONCILE, None),
    ],
)
def test_a_failed_create_is_decided_once_for_every_backend(status, action, fix):
    sim = make_sim(faults=Faults(schedule=(("batches.create", 1, status),)))
    decision = _failure(sim, lambda b: b.send(_unit(1)[1])).decision
    assert decision.action is action and decision.status == status
    assert decision.message == f"Simulated {status} fault"
    if fix:
        assert fix in decision.fix
    assert sim.stats()["batches_created"] == 0


def test_a_dropped_create_is_reconciled_and_a_dropped_read_retried():
    sim = make_sim(faults=Faults(schedule=(("batches.create", 1, "drop"), ("batches.retrieve", [1, 2, 3], "drop"))))
    assert _failure(sim, lambda b: b.send(_unit(1)[1])).decision.action is Action.RECONCILE
    sent = MessageBatches(sim.client()).send(_unit(1)[1])
    dropped = _failure(sim, lambda b: b.track(sent.id)).decision
    assert dropped.action is Action.RETRY and dropped.error_type == "connection_error"


def test_a_results_download_cut_midway_is_read_again_from_the_start():
    sim = make_sim(faults=Faults(schedule=(("batches.results", 1, "drop"),)))
    backend = MessageBatches(sim.client())
    keys, body = _unit(40)
    sent = backend.send(body)
    columns = backend.collect(sent.id)  # the first download is cut halfway; the second is whole
    assert sorted(columns.keys) == sorted(keys) and len(columns.keys) == 40
    assert {CODE_STATUS[c] for c in columns.statuses} == {"succeeded"}
    assert sim.stats()["batches.results"] == 2


def test_a_results_download_cut_every_time_is_a_decision_of_the_sdks_own_error_class():
    sim = make_sim(faults=Faults(schedule=(("batches.results", [1, 2, 3], "drop"),)))
    sent = MessageBatches(sim.client()).send(_unit(5)[1])
    failure = _failure(sim, lambda b: b.collect(sent.id))
    assert isinstance(failure.__cause__, anthropic.APIConnectionError)  # not the transport's own error type
    decision = failure.decision
    assert decision.action is Action.STOP and decision.error_type == RESULTS_CUT and decision.status is None
    assert f"results of batch {sent.id} could not be downloaded" in decision.message
    assert f"lost {RESULTS_ATTEMPTS} times in a row" in decision.message
    assert "peer closed connection" in decision.message
    assert sim.stats()["batches.results"] == RESULTS_ATTEMPTS


def test_a_results_download_cut_over_a_real_socket_is_read_again():
    sim = make_sim(faults=Faults(schedule=(("batches.results", 1, "drop"),)))
    with serve(sim) as server:
        client = server.client()
        backend = MessageBatches(client)
        keys, body = _unit(300)
        sent = backend.send(body)
        assert sorted(backend.collect(sent.id).keys) == sorted(keys)
        client.close()
    assert sim.stats()["batches.results"] == 2


def test_results_that_are_gone_fail_their_rows_and_a_bad_key_stops_the_job():
    sim = make_sim(faults=Faults(schedule=(("batches.results", 1, 404), ("batches.retrieve", 1, 401))))
    sent = MessageBatches(sim.client()).send(_unit(1)[1])
    assert _failure(sim, lambda b: b.track(sent.id)).decision.action is Action.STOP
    assert _failure(sim, lambda b: b.collect(sent.id)).decision.action is Action.FAIL_ROWS


def _status_error(cls, status, body, headers=None):
    request = httpx2.Request("POST", "http://sim.local/v1/messages")  # never sent
    response = httpx2.Response(status, json=body, headers=headers or {}, request=request)
    return cls(f"Error code: {status}", response=response, body=body)


def test_spend_limits_stop_the_job_instead_of_being_retried():
    capped = _status_error(
        anthropic.RateLimitError,
        429,
        {
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "You have reached your monthly spend limit.",
                "details": {"error_code": "enforced_spend_limit_reached"},
            },
        },
    )
    limited = _status_error(
        anthropic.BadRequestError,
        400,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "You have reached your specified API usage limits."},
        },
    )
    busy = _status_error(
        anthropic.RateLimitError,
        429,
        {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"},
        },
        {"retry-after": "2"},
    )
    for exc in (capped, limited):
        for call in ("create", "read", "message"):
            decision = decide(exc, call=call)
            assert decision.action is Action.STOP and "spend or usage limit" in decision.fix
    assert decide(busy, call="message").action is Action.RETRY
    assert decide(busy, call="message").retry_after == 2.0


def test_a_realtime_request_the_api_finds_invalid_fails_its_row_only():
    invalid = _status_error(
        anthropic.BadRequestError,
        400,
        {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be at most 64000"}},
    )
    decision = decide(invalid, call="message")
    assert decision.action is Action.FAIL_ROWS
    assert decision.describe() == "400 invalid_request_error: max_tokens: must be at most 64000"
    assert decide(invalid, call="create").action is Action.STOP  # a batch body it refuses stops the job


def test_both_backends_answer_every_question_the_engine_asks_through_the_interface():
    """The engine asks the Protocol, never the class: every member is there, with its meaning."""
    from batchkit.backends.choice import backend_for
    from batchkit.core.states import SendMode

    client = make_sim().client()
    batches: Backend = backend_for("batch", client)
    realtime: Backend = backend_for("realtime", client)
    assert (batches.mode, realtime.mode) == (SendMode.BATCH, SendMode.REALTIME)
    assert (batches.streams, batches.local, batches.busy) == (False, False, False)
    assert (realtime.streams, realtime.local, realtime.busy) == (True, True, False)
    assert batches.queue is not None and realtime.queue is None
    batches.stop_all()
    realtime.stop_all()


def test_a_backend_is_chosen_from_the_registry_and_can_be_replaced():
    from batchkit.backends.choice import backend_for, register_backend, registered_modes

    made: list[object] = []

    def factory(client, **options):
        made.append((client, options))
        return MessageBatches(client)

    client = make_sim().client()
    previous = register_backend("realtime", factory)
    try:
        assert isinstance(backend_for("realtime", client, betas_for=None), MessageBatches)
        assert made == [(client, {"betas_for": None})]
    finally:
        register_backend("realtime", previous)
    assert set(registered_modes()) == {"batch", "realtime"}
    assert backend_for("realtime", client).mode == "realtime"
    with pytest.raises(ValueError, match="no backend for mode 'fax'; modes are batch, realtime"):
        backend_for("fax", client)
