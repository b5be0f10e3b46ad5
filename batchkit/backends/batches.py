"""The Message Batches backend: a unit of work is one batch.

Half the standard price; a batch holds up to 100,000 requests or 256 MB and ends within 24 h
(most within an hour); the API reports its counts only when it ends. Each batch is sent as one
pre-serialized body through the SDK's generic ``post`` and its results are read as raw bytes
through ``with_streaming_response`` — one pydantic object per *batch*, never one per request
or result line.

``create`` is sent with the SDK's retries off: a retried create whose first attempt did reach
the API would be a second, paid batch. Its failures are decided by :mod:`.errors` (a dropped
connection or a 5xx is *reconciled* against the batch list instead).

**The processing queue.** A workspace may hold only so many batch requests waiting to be
processed (e.g. 200,000); a create that would go over is refused with 429 and a ``retry-after``
saying when there will be room. The backend then holds every create until that time — no other
create is sent meanwhile, each fails at once with the same ``retry`` decision — so a
million-row job waits for room instead of knocking once per planned batch per round. A 429
that does not say when is held :data:`DEFAULT_ROOM_WAIT` seconds, doubling per refusal in a row
up to :data:`MAX_ROOM_WAIT`.
:attr:`MessageBatches.creates_refused` counts the refusals.

**300K output.** A body in which some request asks for more than its model's standard output
cap on a model the ``output-300k-2026-03-24`` beta covers (the engine passes
:func:`batchkit.prices.output_betas` as ``betas_for``) is created in the beta namespace — what
``client.beta.messages.batches.create(betas=[...])`` sends: the same path and body with the
``anthropic-beta`` header. The same batch is retrieved, read and canceled through the usual
paths (they are the beta's too).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import anthropic
from anthropic.types.beta.messages import BetaMessageBatch
from anthropic.types.messages import MessageBatch

from .. import backend as clients
from .._crash import crashpoint
from ..results import ResultColumns, parse_result_stream
from . import Tracked, UnitState
from .errors import Action, CallFailed, Decision, failing

__all__ = ["BetasFor", "MessageBatches", "batch_fields", "find_created_batch"]

DEFAULT_ROOM_WAIT = 30.0
"""Seconds a create refused with 429 but no ``retry-after`` is held (doubling per refusal in a row)."""
MAX_ROOM_WAIT = 300.0
"""The longest such hold."""

BetasFor = Callable[[bytes], Sequence[str]]
"""The ``anthropic-beta`` values a batch body needs (empty: none); the engine passes
:func:`batchkit.prices.output_betas`, which reads the model table."""


class MessageBatches:
    """:class:`~batchkit.backends.Backend` over ``/v1/messages/batches``."""

    mode = "batch"

    def __init__(self, client: anthropic.Anthropic, *, betas_for: BetasFor | None = None) -> None:
        """
        Args:
            client: the SDK client every call goes through.
            betas_for: the betas a batch body needs, e.g. :func:`batchkit.prices.output_betas`
                (the 300K-output beta when a request asks for more than its model's standard
                cap); None: every batch goes out in the GA namespace.
        """
        self.client = client
        self._create_client = client.with_options(max_retries=0)
        self._betas_for = betas_for
        self.creates_refused = 0
        """Creates the API refused with 429 (no room in the processing queue, or the batch endpoints' rate limit)."""
        self._room_at = 0.0  # time.monotonic() before which no create is sent
        self._refused_in_a_row = 0
        self._room_wait: Decision | None = None

    def send(self, body: bytes) -> Tracked:
        """Create a batch from a pre-serialized ``{"requests": [...]}`` body.

        In the beta namespace when ``betas_for`` says the body needs a beta.
        While an earlier create waits for room in the processing queue, fails at once with the
        same ``retry`` decision, without a call.
        """
        self._hold_for_room()
        betas = tuple(self._betas_for(body)) if self._betas_for is not None else ()
        try:
            with failing("create"):
                if betas:
                    created: MessageBatch | BetaMessageBatch = self._create_client.post(
                        "/v1/messages/batches", content=body, cast_to=BetaMessageBatch,
                        options={"headers": {"anthropic-beta": ",".join(betas)}},
                    )
                else:
                    created = self._create_client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)
        except CallFailed as failure:
            self._note_refusal(failure.decision)
            raise
        self._refused_in_a_row = 0
        return _tracked(created)

    def seconds_until_room(self) -> float:
        """Seconds until a create refused for want of queue room may be sent again (0: now)."""
        return max(0.0, self._room_at - time.monotonic())

    def _hold_for_room(self) -> None:
        wait = self._room_at - time.monotonic()
        if wait > 0 and self._room_wait is not None:
            held = self._room_wait
            raise CallFailed(Decision(Action.RETRY, held.error_type, held.message, held.status, wait))

    def _note_refusal(self, decision: Decision) -> None:
        if decision.status == 429 and decision.action is Action.RETRY:
            self.creates_refused += 1
            self._refused_in_a_row += 1
            wait = decision.retry_after
            if wait is None:  # no word on when: back off, 30 s doubling to 5 min
                wait = min(MAX_ROOM_WAIT, DEFAULT_ROOM_WAIT * 2 ** (self._refused_in_a_row - 1))
            self._room_at = time.monotonic() + wait
            self._room_wait = decision

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        with failing("read"):
            found = find_created_batch(self.client, n_requests=n_requests, intent_at=intent_at, claimed=claimed)
        return None if found is None else _tracked(found)

    def track(self, unit_id: str) -> Tracked:
        with failing("read"):
            return _tracked(self.client.messages.batches.retrieve(unit_id))

    def collect(self, unit_id: str) -> ResultColumns:
        """Stream an ended batch's results file and parse it as it downloads."""
        with failing("read"):
            return parse_result_stream(_crash_after_first(self._result_chunks(unit_id)))

    def cancel(self, unit_id: str) -> Tracked:
        with failing("read"):
            return _tracked(self.client.messages.batches.cancel(unit_id))

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        return clients.poll_schedule(self.client, poll_interval)

    def _result_chunks(self, batch_id: str) -> Iterator[bytes]:
        """The raw bytes of a batch's results file, streamed."""
        with self.client.messages.batches.with_streaming_response.results(batch_id) as response:
            yield from response.iter_bytes()  # as they arrive: re-chunking would only copy


def _crash_after_first(chunks: Iterable[bytes]) -> Iterable[bytes]:
    for n, chunk in enumerate(chunks):
        yield chunk
        if n == 0:
            crashpoint("streaming")


def _tracked(batch: MessageBatch | BetaMessageBatch) -> Tracked:
    state: UnitState = batch.processing_status
    return Tracked(batch.id, state, batch_fields(batch))


def find_created_batch(
    client: anthropic.Anthropic,
    *,
    n_requests: int,
    intent_at: dt.datetime,
    claimed: set[str],
    window: dt.timedelta = dt.timedelta(minutes=10),
) -> MessageBatch | None:
    """Find a batch a dead process created but did not record.

    Lists batches newest first back to a little before ``intent_at`` and returns the one with
    ``n_requests`` requests created within ``window`` after the intent, not already ``claimed``
    by another record. None when there is none (the create never reached the API) or when the
    match is ambiguous — see the README's "Recovery" section for the limits of this rule.
    """
    earliest = intent_at - dt.timedelta(seconds=60)  # tolerate clock skew between us and the API
    latest = intent_at + window
    matches: list[MessageBatch] = []
    for batch in client.messages.batches.list(limit=100):
        created = batch.created_at
        if created < earliest:
            break
        counts = batch.request_counts
        total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        if created <= latest and total == n_requests and batch.id not in claimed:
            matches.append(batch)
    return matches[0] if len(matches) == 1 else None  # two candidates: adopt neither


def batch_fields(batch: MessageBatch | BetaMessageBatch) -> dict[str, Any]:
    """The fields of a batch the store keeps."""
    counts = batch.request_counts
    return {
        "created_at": _iso(batch.created_at),
        "ended_at": _iso(batch.ended_at),
        "expires_at": _iso(batch.expires_at),
        "request_counts": {
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
    }


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
