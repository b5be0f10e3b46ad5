"""Reading a job's progress: :func:`snapshot` turns a :class:`~batchkit.Job` into a
:class:`~batchkit.display.snapshot.Snapshot`.

It reads the job through its public methods only — ``summary()`` and the store's batch records
on every refresh, ``cost`` only when a batch has been collected — so a refresh stays cheap for
a job of a million rows, and a poller may call it every second. What it read last is kept per
job (weakly, so a view never keeps a job alive) and reused while the store's version has not
changed.

>>> snap = snapshot(job)        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.core import _json
from batchkit.core.results import output_label
from batchkit.core.states import FINISHED_UNITS, JobState, SendMode, UnitState
from batchkit.errors import UnknownModelError

from .queues import QueueSnapshot, queue_of
from .snapshot import BatchProgress, Snapshot

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job

__all__ = ["is_simulated", "snapshot"]


class _Cache:
    """What a job's previous snapshot read, reused while the store has not changed."""

    def __init__(self) -> None:
        self.version: Any = None
        self.read: tuple[str, Any, list[dict[str, Any]]] | None = None
        self.simulated = False
        self.cost_key: Any = None
        self.cost: tuple[float | None, int, tuple[float, float, float] | None] = (None, 0, None)


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def snapshot(job: Job, *, now: dt.datetime | None = None) -> Snapshot:
    """Read ``job``'s progress into a :class:`~batchkit.display.snapshot.Snapshot`.

    Cheap enough to call every second on a job of a million rows: its summary and batch
    records are read again only when the store has changed, and the cost only when a batch
    has been collected.
    """
    now = now or dt.datetime.now(dt.UTC)
    with _CACHES_LOCK:
        cache = _CACHES.setdefault(job, _Cache())
    status, summary, rows = _read(job, cache)
    groups = [r for r in rows if _is_group(r)]  # answers stored one group at a time (realtime)
    batches = tuple(_batch_progress(row, now) for row in rows if not _is_group(row))
    cost, cost_requests, bounds = _cost(job, cache, batches, status, len(groups))
    estimated, basis = _estimated_total(batches, cost, cost_requests, status, bounds)
    return Snapshot(
        job_id=job.job_id,
        model=job.model,
        output=output_label(job.output),
        status=status,
        taken_at=now,
        started_at=_timestamp(job.created_at),
        rows=int(summary.rows),
        by_status=dict(summary.by_status),
        by_error=dict(summary.by_error),
        batches=batches,
        cost=cost,
        cost_requests=cost_requests,
        estimated_total=estimated,
        estimate_basis=basis,
        estimate_range=None if bounds is None else (bounds[0], bounds[2]),
        simulated=cache.simulated,
        mode=str(job.mode),
        mode_reason=str(job.mode_reason),
        realtime_answers=sum(int(r["n_requests"]) for r in groups),
        realtime_seconds=_realtime_seconds(batches, groups, status, now),
        deadline=str(job.deadline_text()),
        queue=_queue(job, rows),
    )


def _read(job: Job, cache: _Cache) -> tuple[str, Any, list[dict[str, Any]]]:
    """The job's status, summary and batch records: read again only when the store has changed."""
    version = job.store.version()
    if cache.read is None or version != cache.version:
        status = job.status  # first: a summary read after it is at least as new
        cache.read = (status, job.summary(), job.store.batches(job_id=job.job_id))
        cache.simulated = is_simulated(job)
        cache.version = version
    return cache.read


def _realtime_seconds(
    batches: tuple[BatchProgress, ...], groups: list[dict[str, Any]], status: str, now: dt.datetime
) -> float | None:
    """Seconds from the first realtime request sent to now (running) or to the last answer stored."""
    started = [
        b.created_at for b in batches if b.created_at is not None and not str(b.api_id or "").startswith("msgbatch")
    ]
    if not started or not groups:
        return None
    last = max((_timestamp(r["ended_at"]) for r in groups), default=None, key=lambda t: t or now)
    until = now if status == JobState.RUNNING else (last or now)
    return (until - min(started)).total_seconds()


def _queue(job: Job, rows: list[dict[str, Any]]) -> QueueSnapshot | None:
    """The job's batches in the processing queue (None for a job that sends none as batches)."""
    if not any(r.get("mode", SendMode.BATCH) == SendMode.BATCH for r in rows):
        return None
    return queue_of(rows, job.queue, setting=job.spec.run.queue_limit)


def _is_group(row: Mapping[str, Any]) -> bool:
    """A group of realtime answers stored as they arrived (not a unit of work of its own)."""
    return (
        row.get("mode", SendMode.BATCH) != SendMode.BATCH and not row["api_id"] and row["state"] == UnitState.COLLECTED
    )


def is_simulated(job: Job) -> bool:
    """Whether the job's store holds answers from the local simulator (recorded when it first sent)."""
    return job.store.backend_name() == "simulator"


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _batch_progress(row: Mapping[str, Any], now: dt.datetime) -> BatchProgress:
    created, ended = _timestamp(row["created_at"]), _timestamp(row["ended_at"])
    intent = _timestamp(row["intent_at"])
    state = str(row["state"])
    elapsed: float | None
    if created is not None and ended is not None:
        elapsed = (ended - created).total_seconds()
    elif created is not None and created <= now:
        elapsed = (now - created).total_seconds()
    elif intent is not None and state not in FINISHED_UNITS:
        # The API's clock can run ahead of ours (a simulator's fast clock): count from our
        # own record of when the batch was submitted instead.
        elapsed = (now - intent).total_seconds()
    else:
        elapsed = None
    counts = None
    raw = row["request_counts"]
    if state in FINISHED_UNITS and isinstance(raw, (str, bytes)) and raw:
        counts = {str(k): int(v) for k, v in _json.loads(raw).items()}
    api_id = row["api_id"] if isinstance(row["api_id"], str) else None
    error = row["error"] if isinstance(row["error"], str) else None
    return BatchProgress(
        api_id=api_id,
        state=state,
        attempt=int(row["attempt"]),
        requests=int(row["n_requests"]),
        created_at=created,
        ended_at=ended,
        expires_at=_timestamp(row["expires_at"]),
        elapsed=None if elapsed is None else max(0.0, elapsed),
        counts=counts,
        error=error,
    )


def _cost(
    job: Job, cache: _Cache, batches: tuple[BatchProgress, ...], status: str, groups: int = 0
) -> tuple[float | None, int, tuple[float, float, float] | None]:
    """Dollars for the results received so far, their request count and the estimate made at
    submission (low, typical, high) — recomputed only when another batch has been collected.
    A model batchkit cannot price shows no cost rather than stopping the view."""
    collected = tuple(b.api_id for b in batches if b.state == UnitState.COLLECTED)
    key = (collected, status, groups)
    if key == cache.cost_key:
        return cache.cost
    try:
        cost = job.cost
    except UnknownModelError:
        result: tuple[float | None, int, tuple[float, float, float] | None] = (None, 0, None)
    else:
        estimate = cost.estimate
        bounds = None if estimate is None else (float(estimate.low), float(estimate.typical), float(estimate.high))
        result = (float(cost.total), int(cost.requests_paid), bounds)
    cache.cost_key, cache.cost = key, result
    return result


def _estimated_total(
    batches: tuple[BatchProgress, ...],
    cost: float | None,
    cost_requests: int,
    status: str,
    bounds: tuple[float, float, float] | None,
) -> tuple[float | None, str]:
    if status != JobState.RUNNING:
        return (cost, "final") if cost is not None else (None, "")
    if bounds is not None:
        return bounds[1], "estimated at submission"
    to_send = sum(b.requests for b in batches if b.attempt <= 1)
    if cost is None or not cost_requests or not to_send:
        return None, ""
    return cost / cost_requests * to_send, f"projected from {cost_requests:,} answered requests"
