"""A job's units at the API: planning them, creating, adopting, canceling, and giving them up.

A unit is one row of the store's ``batches``: a Message Batch, or a set of keys sent one by one
in realtime. :class:`Units` is the part of a job's worker that acts on one unit at a time over
the job's backends — it plans units within the batch limits (:meth:`Units.plan_batches`),
creates them (:meth:`Units.create`; a create that may have reached the API is looked for first,
:meth:`Units.reconcile`, never sent twice), cancels them, and records what the API said of each.
When the API refuses a create for a reason no retry fixes, the job stops
(:meth:`Units.stop`); when it no longer knows a unit, the unit is ``lost`` (:meth:`Units.lose`).

Units are shared: another job (of this process or another) may carry the keys this job waits
for, and a unit whose owner died is taken over by compare-and-set on its owner
(:mod:`batchkit.stores.ownership`). Everything written to the store goes through its verbs, in
one :class:`~batchkit.stores.transaction.Transaction` per step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anthropic
import numpy as np

from batchkit._crash import crashpoint
from batchkit.backends import Action, Backend, CallFailed, Decision, QueueView, Tracked, UnitPlan
from batchkit.backends.choice import backend_for
from batchkit.backends.clients import api_name, resolve_client
from batchkit.backends.queue import known_view
from batchkit.core.models import load_table, unit_betas
from batchkit.core.options import JobSpec
from batchkit.core.plan import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, Chunk, Plan, chunk_requests, make_line, select_lines
from batchkit.core.states import JobState, SendMode, UnitState
from batchkit.costs.prices import output_betas
from batchkit.errors import CancelFailedError, ServerUnreachableError, UnknownModelError
from batchkit.stores.leases import me
from batchkit.stores.ownership import owner_alive, owns
from batchkit.stores.store import Store

from .stops import LOST_WHY, refusal, reraise

if TYPE_CHECKING:
    from batchkit.stores.transaction import Transaction

__all__ = [
    "Keys",
    "Signals",
    "Units",
    "batch_size",
    "planned_betas",
    "stored_betas",
    "write_job",
]


class Keys(Protocol):
    """The keys a job still waits for (:class:`batchkit.engine.outcomes.Pending`)."""

    def __bool__(self) -> bool: ...

    def isdisjoint(self, other: Sequence[str]) -> bool: ...

    def may_share(self, unit: np.ndarray) -> bool: ...


def batch_size(spec: Mapping[str, Any], client: anthropic.Anthropic | None) -> int:
    """Requests per planned batch: ``chunk_size=``, cut to the workspace's processing queue limit
    when it is known (``queue_limit=``, or learned from a refusal in this process) — a batch
    larger than the whole queue could never be created."""
    size = int(spec.get("chunk_size") or MAX_BATCH_REQUESTS)
    limit = spec.get("queue_limit")
    if limit is None and client is not None:
        view = known_view(client)
        limit = view.limit if view is not None else None
    return min(size, int(limit)) if limit else size


def planned_betas(prices: Any, model: str, mode: str, max_tokens: int) -> tuple[str, ...] | None:
    """The betas a unit of ``mode`` is planned with (stored with it, sent with its create): the
    300K-output beta when its requests ask for more ``max_tokens`` than the model's standard cap
    in the call's *own* price table (``prices``: the call's ``prices=``, which may change a cap;
    None: the built-in table).

    None when the table gives the model no cap (a model it does not know, let through with
    ``check_model=False``, or a ``prices=`` entry without ``max_output_tokens``): the unit is
    stored without betas, and its backend reads them from its body against the smallest cap of
    the models the beta covers, as it always did for such a model."""
    try:
        cap = load_table(prices).get(model).max_output_tokens
    except UnknownModelError:
        cap = None
    if cap is None:
        return None
    return unit_betas(mode, max_tokens=max_tokens, output_cap=cap)


def stored_betas(batch: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The betas a unit was planned with, from its stored row (None: planned before the store kept
    them; its backend then derives them from the body)."""
    betas = batch.get("betas")
    return None if betas is None else tuple(b for b in betas.split(",") if b)


class Signals:
    """What a job's worker and the threads that wait on it share (no back reference to either, so
    a job nobody holds is freed at once, with its request lines)."""

    def __init__(self) -> None:
        self.done = threading.Event()  # the worker's loop has returned
        self.wake = threading.Event()  # end the worker's current sleep
        self.exiting = threading.Event()  # the interpreter is exiting: create what is planned, then stop
        self.error: BaseException | None = None  # what the worker stopped on, for the waiting thread


class _OldBetas:
    """The betas of a unit planned before the store kept them (its stored betas NULL): from its
    body, against the call's own price table — what a job's batch backend is given as
    ``betas_for``. Kept apart from :class:`Units` so the backend holds no reference back to the job:
    a job nobody holds is then freed at once, with its record (every row's key), not at the garbage
    collector's next full collection — which a partitioned run, letting go of a job per partition,
    makes rarely: its keys are strings the collector does not count, and jobs piled up by the dozen."""

    def __init__(self) -> None:
        self.prices: Any = None

    def __call__(self, body: bytes) -> tuple[str, ...]:
        return output_betas(body, self.prices)


class Units:
    """One job's hand on its units: the backends that reach the API, and what is done to a unit.

    ``record`` is the job's stored row, shared with the job's handle (its status and mode are
    updated in place); ``lines`` the job's request lines by key (its own from here on; emptied
    once its units are created); ``signals`` is shared with the job's worker (a create wakes it;
    a refusal hands it the error the job ends with).
    """

    def __init__(
        self,
        job_id: str,
        store: Store,
        record: dict[str, Any],
        spec: JobSpec,
        *,
        client: anthropic.Anthropic | None,
        lines: MutableMapping[str, bytes],
        signals: Signals,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.record = record
        self.spec = spec
        self.given_client = client  # None until the job first needs the network
        self.lines = lines
        self.batch_bodies: dict[int, bytes] = {}  # bodies built at planning, by unit id
        self.unrelated: set[int] = set()  # other jobs' units that carry none of this job's pending keys
        self.stopping = False  # Ctrl-C on a realtime job: stop sending, store what comes back, stop
        self.lost_now = False  # a unit of this job was found lost in this round (see lose)
        self.signals = signals
        self._old_betas = _OldBetas()
        self._backends: dict[str, Backend] = {}
        self._api_checked: anthropic.Anthropic | None = None  # the client whose API the store agreed to

    # ------------------------------------------------------------------ backends

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, resolved only when the job first needs the network."""
        if self.given_client is None:
            self.given_client = resolve_client(None)
        return self.given_client

    def switch_client(self, client: anthropic.Anthropic) -> None:
        """Use ``client`` from now on: a backend still sending (realtime) keeps its units; the others are rebuilt."""
        if client is self.given_client:
            return
        self.given_client = client
        self._backends = {m: b for m, b in self._backends.items() if b.busy}

    def backend_of(self, mode: str) -> Backend:
        """The backend that sends units of ``mode`` (chosen by :func:`~batchkit.backends.backend_for`)."""
        if self._api_checked is not self.given_client:
            # The store's answers and batches belong to one API: a client of the other one (the
            # simulator for a real job, or the reverse) would find none of its batches and mark
            # them lost while they run on, paid. Refused before anything is asked of it. A server
            # that does not answer is asked again next time (its calls fail and are retried).
            with contextlib.suppress(ServerUnreachableError):
                self.store.claim_backend(api_name(self.client))
                self._api_checked = self.given_client
        found = self._backends.get(mode)
        if found is None:
            found = self._backends[mode] = backend_for(mode, self.client, betas_for=self._old_betas)
            limit = self.spec.run.queue_limit
            if found.queue is not None and limit is not None:
                found.queue.set_limit(limit, "setting")
        return found

    @property
    def prices(self) -> Any:
        """The call's ``prices=`` (its own caps decide the 300K beta); not stored: a job loaded by
        another process plans with the built-in table."""
        return self._old_betas.prices

    @prices.setter
    def prices(self, prices: Any) -> None:
        self._old_betas.prices = prices

    def busy_backends(self) -> list[Backend]:
        """The backends sending units one by one right now (realtime)."""
        return [b for b in self._backends.values() if b.busy]

    def streams(self, mode: str) -> bool:
        """Whether units of ``mode`` are sent one by one by this process (and end with it)."""
        return self.backend_of(mode).local

    @property
    def queue(self) -> QueueView | None:
        """The workspace's processing queue as this process knows it; None before a batch backend was needed."""
        backend = self._backends.get(SendMode.BATCH)
        return None if backend is None else backend.queue

    def sync_queue(self) -> int:
        """Tell the workspace's queue view what the store has in flight; the requests it counts
        in flight after that (0 when the job sends no batches)."""
        queue = self.backend_of(SendMode.BATCH).queue
        if queue is None:
            return 0
        in_flight = {
            b["api_id"]: int(b["n_requests"])
            for b in self.store.batches(states=(UnitState.IN_PROGRESS, UnitState.CANCELING))
            if b["api_id"] and b["mode"] == SendMode.BATCH
        }
        queue.sync(str(self.store.path), in_flight)
        return queue.state().in_flight

    def leave_queue(self) -> None:
        """This worker asks the queue nothing more: its held creates stop keeping others waiting."""
        queue = self.queue
        if queue is not None:
            queue.withdraw(self.job_id)

    # ------------------------------------------------------------------ which units

    def status(self) -> str:
        """The job's status as the store has it now (another process, or the worker, may have moved it on)."""
        found = self.store.job_status(self.job_id)
        if found is not None:
            self.record["status"] = found
        return str(self.record["status"])

    def relevant(self, batch: Mapping[str, Any], pending: Keys) -> bool:
        """A batch of this job, or of another one that carries keys this job waits for."""
        if batch["job_id"] == self.job_id:
            return True
        if not pending or batch["id"] in self.unrelated:
            return False
        if not pending.may_share(self.store.unit_digests(batch)) or pending.isdisjoint(
            self.store.batch_keys(batch["id"])
        ):
            # A unit's keys never change and a job's pending keys only shrink until it plans again:
            # not read again every round (a partitioned run has several jobs' batches in flight).
            self.unrelated.add(batch["id"])
            return False
        return True

    def sent_here(self, batch: Mapping[str, Any]) -> bool:
        """Whether this job's worker sent ``batch`` (a unit whose handle lives in this process)."""
        return owns(batch) and batch["job_id"] == self.job_id

    # ------------------------------------------------------------------ planning

    def plan_batches(
        self,
        tx: Transaction,
        keys: Sequence[str],
        attempt: int,
        mode: str | None = None,
        *,
        max_tokens: int | None = None,
    ) -> None:
        """Plan units that send ``keys`` in ``mode`` (default: the job's), within the batch limits;
        ``max_tokens``: what their requests ask for when it is not the job's (a truncated retry)."""
        if not keys or self.stopping:
            return
        self.unrelated.clear()  # pending again: other jobs' units may carry these keys
        spec = self.record["spec"]
        missing = [k for k in keys if k not in self.lines]
        if missing:
            self.lines.update((k, make_line(k, b)) for k, b in self.store.request_bodies(missing).items())
        unit_mode = mode or str(self.record.get("mode") or SendMode.BATCH)
        betas = planned_betas(self.prices, str(self.record["model"]), unit_mode, max_tokens or self.spec.max_tokens)
        if max_tokens is None and unit_mode == SendMode.BATCH:
            betas = self._with_earlier_betas(betas)
        for chunk in chunk_requests(
            select_lines(self.lines, keys),
            max_requests=batch_size(spec, self.given_client),
            max_bytes=int(spec.get("chunk_bytes") or MAX_BATCH_BYTES),
        ):
            batch_id = tx.add_unit(
                job_id=self.job_id,
                keys=chunk.keys,
                body=chunk.stored(),
                attempt=attempt,
                owner=me(),
                mode=unit_mode,
                betas=betas,
            )
            if not chunk.streamed:
                self.batch_bodies[batch_id] = chunk.body

    def _with_earlier_betas(self, betas: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """``betas`` and those of this job's earlier batches: keys re-planned from the store (a retry)
        may carry a truncated retry's larger ``max_tokens``, which went out under the 300K beta; a beta
        on a request that does not need it changes nothing, a missing one is refused. None (the
        backend reads them from the body) when ``betas`` is, or an earlier batch was stored without
        them (a store from before betas were kept)."""
        earlier = [
            stored_betas(unit) for unit in self.store.batches(job_id=self.job_id) if unit["mode"] == SendMode.BATCH
        ]
        if betas is None or any(b is None for b in earlier):
            return None
        return tuple(sorted({b for found in earlier for b in found or ()}.union(betas)))

    # ------------------------------------------------------------------ creating

    def create(self, batch: Mapping[str, Any], *, reconciled: bool = False) -> None:
        """Send a planned unit; a create that may have reached the API is looked for, never sent again."""
        body = self.batch_bodies.pop(batch["id"], None) or self.store.batch_body(batch["id"])
        backend = self.backend_of(batch["mode"])
        if backend.streams:
            body = self._unanswered_body(batch, body)
        try:
            # a batch waits in the workspace's queue until there is room for it
            plan = UnitPlan(
                int(batch["n_requests"]), int(batch["id"]), self.job_id, stored_betas(batch), self.signals.wake.set
            )
            sent = backend.send(body, plan)
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RECONCILE:  # it may have reached the API: look first
                if not reconciled:
                    self.reconcile(batch)
            elif decision.action is not Action.RETRY:  # else: refused before anything was created
                self.stop(batch, decision, failure.__cause__ or failure)
            return
        crashpoint("after_create")
        self.record_unit(batch, sent)
        if batch["job_id"] == self.job_id and self.status() == JobState.CANCELED:
            self.cancel_unit(batch, sent.id)  # canceled while it was being created

    def _unanswered_body(self, batch: Mapping[str, Any], body: bytes) -> bytes:
        """A unit's body without the requests answered since it was planned (a unit a dead
        process had started: it stored some answers one by one)."""
        keys = self.store.batch_keys(batch["id"])
        answered = self.store.answered(keys)
        if not answered:
            return body
        rest = [k for k in keys if k not in answered]
        missing = [k for k in rest if k not in self.lines]
        if missing:
            self.lines.update((k, make_line(k, b)) for k, b in self.store.request_bodies(missing).items())
        chunks = (
            chunk_requests(
                {k: self.lines[k] for k in rest}, max_requests=len(rest) or 1, max_bytes=max(len(body), 1000)
            )
            if rest
            else []
        )
        return chunks[0].body if chunks else b'{"requests":[]}'

    def reconcile(self, batch: Mapping[str, Any], *, adopt_only: bool = False) -> Tracked | None:
        """Adopt the batch a dead process may have created, or create it if it never was.

        Returns what was adopted, if anything.
        """
        claimed = {b["api_id"] for b in self.store.batches() if b["api_id"]}
        intent = dt.datetime.fromisoformat(batch["intent_at"].replace("Z", "+00:00"))
        try:
            found = self.backend_of(batch["mode"]).find_sent(
                n_requests=batch["n_requests"], intent_at=intent, claimed=claimed
            )
        except CallFailed as failure:
            reraise(failure)  # never create what may exist: the batch stays planned and claimed
        if found is not None:
            self.record_unit(batch, found)
        elif adopt_only:
            self.store.update_batch(batch["id"], state=UnitState.ABANDONED, error="canceled before it was created")
        else:
            self.create(batch, reconciled=True)
        return found

    def record_unit(self, batch: Mapping[str, Any], unit: Tracked) -> None:
        """Write down what the backend said of a unit: its id, state and timestamps."""
        self.store.update_batch(batch["id"], api_id=unit.id, state=unit.state, **unit.fields)

    # ------------------------------------------------------------------ canceling

    def cancel_sent(self) -> None:
        """Cancel every unit of this job the API is running (a unit another live process sends
        one by one is left to it: its worker stops it when it sees the job canceled)."""
        units = [b for b in self.store.batches(job_id=self.job_id, states=(UnitState.IN_PROGRESS,)) if b["api_id"]]
        for done, batch in enumerate(units):
            if self.streams(batch["mode"]) and not self.sent_here(batch) and owner_alive(batch):
                continue
            self.cancel_unit(batch, batch["api_id"], canceled_before=done, of=len(units))

    def cancel_unit(self, batch: Mapping[str, Any], api_id: str, *, canceled_before: int = 0, of: int = 1) -> None:
        """Cancel one unit at the API; a cancel the API does not answer raises :class:`CancelFailedError`."""
        try:
            self.record_unit(batch, self.backend_of(batch["mode"]).cancel(api_id))
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.FAIL_ROWS:  # 404: nothing left to cancel at the API
                if self.store.take_over(batch):
                    self.lose(batch, decision)
                return
            if decision.action in (Action.RETRY, Action.RECONCILE):
                changed = (
                    "Nothing was changed: its batches keep running"
                    if not canceled_before
                    else f"{canceled_before} of its {of} running batches were canceled before that; the others, "
                    f"and the job, were left as they were"
                )
                raise CancelFailedError(
                    f"could not cancel job {self.job_id}: the API did not answer the cancel of batch {api_id} "
                    f"({decision.describe()}). {changed}. Try again when the API answers (batchkit cancel "
                    f"{self.job_id}, or job.cancel()).",
                    job_id=self.job_id,
                ) from failure.__cause__
            reraise(failure)

    # ------------------------------------------------------------------ stopping

    def stop(self, batch: Mapping[str, Any], decision: Decision, exc: BaseException) -> None:
        """The API refused a create for a reason a retry cannot fix: the job fails, loudly.

        The refused batch and the job's other batches not yet created are marked ``failed`` (so
        no other job waits on them); batches already created keep running and are collected.
        """
        reason = f"the API refused its requests ({decision.describe()}) — to fix: {decision.fix}"
        with self.store.transaction() as tx:
            tx.update_batch(batch["id"], state=UnitState.FAILED, error=reason)
            for other in self.store.batches(job_id=self.job_id, states=(UnitState.SUBMITTING,)):
                if owns(other):
                    tx.update_batch(other["id"], state=UnitState.FAILED, error="not created: " + reason)
            tx.fail_job(self.job_id)
        self.record["status"] = JobState.FAILED
        error = refusal(self.store, self.job_id)
        error.status_code, error.error_type, error.api_message = decision.status, decision.error_type, decision.message
        error.__cause__ = exc
        self.signals.error = error

    def lose(self, batch: Mapping[str, Any], decision: Decision) -> None:
        """The API no longer knows a unit the store recorded (404): deleted, expired, another
        workspace's key, or a simulator that died with it. The unit ends ``lost``; its rows have
        no answer and are in flight no more, so nothing waits on them. Its own job stops (a
        :class:`BatchLostError` says how many rows and about what sending them again costs;
        re-running the call or ``job.retry()`` sends them); another job waiting on those keys
        sends them itself."""
        reason = (
            f"the API no longer knows batch {batch['api_id']} ({decision.describe()}): {LOST_WHY}. "
            f"Its {int(batch['n_requests']):,} rows have no answer"
        )
        with self.store.transaction() as tx:
            tx.update_batch(batch["id"], state=UnitState.LOST, error=reason)
            if batch["job_id"] == self.job_id:
                tx.fail_job(self.job_id)
        if batch["job_id"] == self.job_id:
            self.record["status"] = JobState.FAILED
            self.lost_now = True  # the error is built once the round has seen every lost unit


def write_job(
    store: Store,
    client: anthropic.Anthropic | None,
    plan: Plan,
    fp: str,
    *,
    model: str,
    kind: str,
    output: str,
    spec: dict[str, Any],
    mode: str,
    mode_reason: str | None,
    prices: Any = None,
) -> tuple[str, dict[str, Any] | None, dict[int, bytes]]:
    """Write a new job down with its planned units, in one transaction (unless another process
    won the race): its id, its stored row (None when it already was), and the bodies built."""
    batch_bodies: dict[int, bytes] = {}
    record = None
    betas = planned_betas(prices, model, mode, int(spec["max_tokens"]))
    with store.transaction() as tx:
        job_id = tx.find_job(fp)  # another process may have won the race
        if job_id is None:
            job_id = "job_" + fp[:16]
            record = tx.insert_job(
                job_id=job_id,
                fingerprint=fp,
                model=model,
                kind=kind,
                output=output,
                spec=spec,
                row_keys=plan.row_keys,
                skipped=plan.skipped,
                mode=mode,
                mode_reason=mode_reason,
            )
            for attempt, chunk in _first_chunks(store, tx, client, plan, spec, mode):
                batch_id = tx.add_unit(
                    job_id=job_id,
                    keys=chunk.keys,
                    body=chunk.stored(),
                    attempt=attempt,
                    owner=me(),
                    mode=mode,
                    betas=betas,
                )
                if not chunk.streamed:  # images: built once, read back from the store to send
                    batch_bodies[batch_id] = chunk.body
        crashpoint("after_intent")
    return job_id, record, batch_bodies


def _first_chunks(
    store: Store, tx: Transaction, client: anthropic.Anthropic | None, plan: Plan, spec: dict[str, Any], mode: str
) -> list[tuple[int, Chunk]]:
    """A new job's first units, by attempt: what is neither answered nor in flight, within the
    batch limits (attempt 0: the cache-priming batch, created first)."""
    keys = list(plan.lines)
    answered = store.answered(keys)
    skip = answered | tx.in_flight_among(keys)
    to_send = select_lines(plan.lines, [k for k in keys if k not in skip]) if skip else plan.lines
    chunks = []
    if spec.get("cache") == "prime" and len(to_send) > 1 and mode == SendMode.BATCH:
        # A one-request batch first writes the shared prefix to the cache; the rest
        # are created only once it has ended, so they read it (attempt 0 = primer).
        primer = next(iter(to_send))
        chunks.append((0, chunk_requests({primer: to_send[primer]})[0]))
        to_send = {k: b for k, b in to_send.items() if k != primer}
    size, max_bytes = batch_size(spec, client), spec["chunk_bytes"]
    chunks += [(1, chunk) for chunk in chunk_requests(to_send, max_requests=size, max_bytes=max_bytes)]
    return chunks
