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
saying when there will be room. Every :class:`MessageBatches` of a workspace asks the one
process-wide :class:`~.queue.QueueView` of that workspace before it calls ``create``: a create
over a known limit (a setting, or learned from a refusal) is held locally without a call,
earlier-planned batches first; after a refusal no create of the workspace is sent until its
``retry-after``. Either way ``send`` fails at once with a ``retry`` decision, so a million-row
job, or a run of many partitions, waits for room instead of knocking once per planned batch per
round. :attr:`MessageBatches.creates_refused` counts this backend's refusals; the view counts
the workspace's.

**A results download cut mid-body** (the connection dropped after the headers came) is read
again from the start — the download is idempotent, and nothing of a cut one is kept — up to
:data:`RESULTS_ATTEMPTS` downloads in one ``collect``, a short pause between them. If every one
is cut, ``collect`` fails with a ``stop`` decision of error type :data:`~.errors.RESULTS_CUT`: the engine
stops the job with :class:`~batchkit.errors.ResultsDownloadError` and leaves the batch
``ended``, so a re-run downloads it again (and never sends its requests again). A refusal of the
download (a 5xx, a 429) is left to the SDK's own retries and then to the engine's next round,
as before.

**300K output.** A unit planned with betas (:attr:`~batchkit.backends.UnitPlan.betas`, decided by
:func:`batchkit.core.models.unit_betas` when it was planned: some request asks for more than its
model's standard output cap) is created in the beta namespace — what
``client.beta.messages.batches.create(betas=[...])`` sends: the same path and body with the
``anthropic-beta`` header. The same batch is retrieved, read and canceled through the usual
paths (they are the beta's too). A unit planned before betas were stored with units
(``betas=None``) gets them from ``betas_for(body)`` as before
(:func:`batchkit.costs.prices.output_betas`, which scans the body against the default table).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import anthropic
from anthropic.types.beta.messages import BetaMessageBatch
from anthropic.types.messages import MessageBatch

from batchkit.core.results import ResultColumns, parse_result_stream
from batchkit.core.states import SendMode, UnitState

from .._crash import crashpoint
from . import Tracked, UnitPlan, clients
from .errors import RESULTS_CUT, Action, CallFailed, Decision, body_chunks, failing
from .queue import DEFAULT_ROOM_WAIT, MAX_ROOM_WAIT, QueueView, view_for

__all__ = [
    "DEFAULT_ROOM_WAIT",
    "MAX_ROOM_WAIT",
    "RESULTS_ATTEMPTS",
    "BetasFor",
    "MessageBatches",
    "batch_fields",
    "find_created_batch",
]

RESULTS_ATTEMPTS = 3
"""Downloads of one batch's results file that ``collect`` makes when each is cut mid-body."""

RESULTS_RETRY_PAUSE = 0.5
"""Seconds before the second download of a cut results file; doubled before each later one."""

BetasFor = Callable[[bytes], Sequence[str]]
"""The ``anthropic-beta`` values a batch body needs (empty: none), for a unit planned without
betas (``UnitPlan.betas`` None); the engine passes :func:`batchkit.costs.prices.output_betas`."""


class MessageBatches:
    """:class:`~batchkit.backends.Backend` over ``/v1/messages/batches``."""

    mode = SendMode.BATCH
    streams = False
    """Its answers come whole, once a batch has ended."""
    local = False
    """A batch runs at the API on its own: any process may follow it."""
    busy = False
    """Nothing is sent from this process once ``create`` has returned."""

    def __init__(self, client: anthropic.Anthropic, *, betas_for: BetasFor | None = None) -> None:
        """
        Args:
            client: the SDK client every call goes through.
            betas_for: the betas of a body whose unit was planned without them
                (``UnitPlan.betas`` None), e.g. :func:`batchkit.costs.prices.output_betas`; None:
                such a unit goes out in the GA namespace.
        """
        self.client = client
        self._create_client = client.with_options(max_retries=0)
        self._betas_for = betas_for
        self.queue: QueueView = view_for(client)
        """The workspace's processing queue as this process knows it (shared by every job)."""
        self.creates_refused = 0
        """Creates of this backend the API refused with 429 (no room in the processing queue, or
        the batch endpoints' rate limit)."""

    def send(
        self,
        body: bytes,
        plan: UnitPlan | None = None,
    ) -> Tracked:
        """Create a batch from a pre-serialized ``{"requests": [...]}`` body.

        In the beta namespace when the unit was planned with betas. Asks the workspace's
        :attr:`queue` first: while it has no room (or an earlier create waits for a refusal's
        ``retry-after``) fails at once with a ``retry`` decision, without a call.

        Args:
            body: the batch's body, as planned and stored.
            plan: its request count (default: counted in ``body``), its place among planned
                batches (the store's batch id; earlier goes first), the job asking, its betas,
                and who to wake when room appears (:class:`~batchkit.backends.UnitPlan`).
        """
        plan = plan or UnitPlan()
        n = plan.n_requests if plan.n_requests is not None else body.count(b'{"custom_id":')
        ticket = self.queue.admit(n, order=plan.order, owner=plan.owner, wake=plan.wake)
        betas = plan.betas if plan.betas is not None else self._legacy_betas(body)
        try:
            with failing("create"):
                if betas:
                    created: MessageBatch | BetaMessageBatch = self._create_client.post(
                        "/v1/messages/batches",
                        content=body,
                        cast_to=BetaMessageBatch,
                        options={"headers": {"anthropic-beta": ",".join(betas)}},
                    )
                else:
                    created = self._create_client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)
        except CallFailed as failure:
            self.queue.release(ticket)
            if failure.decision.status == 429:
                self.queue.refused_create(failure.decision)
                if failure.decision.action is Action.RETRY:
                    self.creates_refused += 1
            raise
        except BaseException:
            self.queue.release(ticket)
            raise
        self.queue.created(ticket, created.id, n)
        return _tracked(created)

    def _legacy_betas(self, body: bytes) -> tuple[str, ...]:
        """The betas of a unit planned without them: from ``betas_for(body)``, as before."""
        return tuple(self._betas_for(body)) if self._betas_for is not None else ()

    def stop_all(self) -> None:
        """Nothing to stop: batches run at the API on their own (``cancel`` stops one)."""

    def seconds_until_room(self) -> float:
        """Seconds until a create refused for want of queue room may be sent again (0: now)."""
        return self.queue.seconds_until_room()

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        with failing("read"):
            found = find_created_batch(self.client, n_requests=n_requests, intent_at=intent_at, claimed=claimed)
        return None if found is None else _tracked(found)

    def track(self, unit_id: str) -> Tracked:
        with failing("read"):
            tracked = _tracked(self.client.messages.batches.retrieve(unit_id))
        if tracked.state == UnitState.ENDED:
            self.queue.ended(unit_id)
        return tracked

    def collect(self, unit_id: str) -> ResultColumns:
        """Stream an ended batch's results file and parse it as it downloads.

        A download cut mid-body is made again, up to :data:`RESULTS_ATTEMPTS` in all; after the
        last, :class:`CallFailed` with a ``stop`` decision of type :data:`~.errors.RESULTS_CUT`.
        """
        for attempt in range(1, RESULTS_ATTEMPTS + 1):
            try:
                with failing("read"):
                    return parse_result_stream(_crash_after_first(self._result_chunks(unit_id)))
            except CallFailed as failure:
                decision = failure.decision
                if decision.status is not None or decision.action is not Action.RETRY:
                    raise  # the API answered (a refusal): the engine decides, as for any read
                if attempt == RESULTS_ATTEMPTS:
                    raise CallFailed(
                        Decision(
                            Action.STOP,
                            RESULTS_CUT,
                            f"the results of batch {unit_id} could not be downloaded: the connection was lost "
                            f"{RESULTS_ATTEMPTS} times in a row (last: {decision.message})",
                        )
                    ) from failure.__cause__
                time.sleep(RESULTS_RETRY_PAUSE * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def cancel(self, unit_id: str) -> Tracked:
        with failing("read"):
            return _tracked(self.client.messages.batches.cancel(unit_id))

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        return clients.poll_schedule(self.client, poll_interval)

    def _result_chunks(self, batch_id: str) -> Iterator[bytes]:
        """The raw bytes of a batch's results file, streamed."""
        with self.client.messages.batches.with_streaming_response.results(batch_id) as response:
            yield from body_chunks(response)  # as they arrive: re-chunking would only copy


def _crash_after_first(chunks: Iterable[bytes]) -> Iterable[bytes]:
    for n, chunk in enumerate(chunks):
        yield chunk
        if n == 0:
            crashpoint("streaming")


_STATES: dict[str, UnitState] = {
    "in_progress": UnitState.IN_PROGRESS,
    "canceling": UnitState.CANCELING,
    "ended": UnitState.ENDED,
}


def _tracked(batch: MessageBatch | BetaMessageBatch) -> Tracked:
    return Tracked(batch.id, _STATES[batch.processing_status], batch_fields(batch))


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
    match is ambiguous — see "Intent before money" in the docs (docs/explanations/) for the limits of this rule.
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
