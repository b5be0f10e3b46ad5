"""A third way of sending plugs in through ``backends/choice.py`` alone, and a job runs on it end to end.

:class:`OneByOne` is what a third backend module (``batchkit/backends/<name>.py``) would hold: a
class with every member of :class:`batchkit.backends.Backend`, here one that sends a unit's
requests through the *sync* SDK client one after the other. It is registered for the
``realtime`` mode with :func:`batchkit.backends.choice.register_backend` — the one line a new
module would add to ``choice.py`` — and the engine drives it knowing nothing of its class.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

import batchkit
from batchkit.backends import Backend, QueueView, Tracked, UnitPlan
from batchkit.backends.choice import register_backend
from batchkit.core import _json
from batchkit.core.results import ResultColumns, parse_result_stream
from batchkit.core.states import SendMode, UnitState
from tests.conftest import frame, make_sim


class OneByOne:
    """:class:`~batchkit.backends.Backend` that sends each request of a unit in turn, synchronously."""

    mode = SendMode.REALTIME
    streams = False
    local = True  # its units' answers live in this process until collected
    queue: QueueView | None = None
    busy = False

    def __init__(self, client: anthropic.Anthropic) -> None:
        self.client = client.with_options(max_retries=2)
        self.sent: list[str] = []
        self._answers: dict[str, list[bytes]] = {}

    def send(self, body: bytes, plan: UnitPlan | None = None) -> Tracked:
        unit_id = f"onebyone_{uuid.uuid4().hex[:12]}"
        lines = []
        for request in _json.loads(body)["requests"]:
            key, params = request["custom_id"], _json.dumps(request["params"])
            self.sent.append(key)
            try:
                answer = self.client.post("/v1/messages", content=params, cast_to=httpx2.Response)
                line = b'{"custom_id":' + _json.dumps(key) + b',"result":{"type":"succeeded","message":'
                lines.append(line + answer.content + b"}}\n")
            except anthropic.APIStatusError as exc:
                error = {"custom_id": key, "result": {"type": "errored", "error": exc.body}}
                lines.append(_json.dumps(error) + b"\n")
        self._answers[unit_id] = lines
        return Tracked(unit_id, UnitState.ENDED, {"created_at": _now(), "ended_at": _now()})

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        return None  # nothing survives the process: the engine sends the unanswered keys again

    def track(self, unit_id: str) -> Tracked:
        return Tracked(unit_id, UnitState.ENDED, {})

    def collect(self, unit_id: str) -> ResultColumns:
        return parse_result_stream(self._answers.pop(unit_id, []))

    def cancel(self, unit_id: str) -> Tracked:
        return Tracked(unit_id, UnitState.ENDED, {})

    def stop_all(self) -> None:
        pass  # send() returns only once every request is answered

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        return (poll_interval or 0.05,)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@pytest.fixture
def one_by_one() -> Iterator[list[OneByOne]]:
    made: list[OneByOne] = []

    def factory(client: Any, **options: Any) -> Backend:
        made.append(OneByOne(client))
        return made[-1]

    previous = register_backend("realtime", factory)
    try:
        yield made
    finally:
        register_backend("realtime", previous)


def test_the_test_backend_has_every_member_the_engine_uses() -> None:
    backend: Backend = OneByOne(make_sim().client())  # mypy checks the Protocol here
    assert backend.mode == "realtime" and backend.queue is None and not backend.busy


def test_a_job_runs_end_to_end_on_a_backend_plugged_in_through_choice(one_by_one) -> None:
    sim = make_sim()
    job = frame(5).claude.submit("Say {t}", output="o", mode="realtime", client=sim.client(), poll_interval=0.05)
    out = job.wait(timeout=60).result()
    assert list(out["o"]) == [f"re:Say row {i}" for i in range(5)]
    assert len(one_by_one) == 1 and isinstance(job.backend, OneByOne)
    assert sorted(one_by_one[0].sent) == sorted(job.store.batch_keys(job.store.batches(job_id=job.job_id)[0]["id"]))
    assert sim.stats()["messages_answered"] == 5 and sim.stats()["batches_created"] == 0
    assert set(job.outcomes()["status"]) == {"succeeded"}
    # paid at the mode it registered for: standard price, as realtime answers are
    assert {b["mode"] for b in job.store.batches(job_id=job.job_id)} == {"realtime"}
    assert batchkit.Job.load(job.job_id, store=job.store).status == "ended"
