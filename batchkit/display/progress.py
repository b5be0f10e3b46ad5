"""A job's progress: one pure snapshot and its text and HTML renderings.

The Message Batches API says nothing about a batch's progress until the whole batch ends:
``request_counts`` stay at "processing" until then. So nothing here shows a percentage of a
running batch. A batch shows its state and how long it has run against the typical (under an
hour) and the maximum (24 h, then it expires) duration; the rows fill in when their batch ends.

:func:`snapshot` reads a :class:`~batchkit.Job` through its public methods only — ``summary()``
and ``batches()`` on every refresh, ``outcomes()`` only when a batch has been collected — so
a refresh stays cheap for a job of a million rows. The views are plain functions of the
snapshot:

=====================  ======================================================================
:func:`render_line`    one line, for logs and a terminal's live status
:func:`render_text`    a few lines: rows by status, batches, cost, errors
:func:`render_html`    the same as HTML (what ``Job._repr_html_`` shows)
=====================  ======================================================================

The live views — an ipywidgets widget with Cancel and Retry failed buttons, and text lines
for terminals — are in :mod:`batchkit.display.views`.

The bar turns green when every row succeeded and red when any row failed for good; once a
widget has turned red, a later success does not turn it green (tqdm's rule), until the
user asks for a retry from the widget.

>>> print(render_text(snapshot(job)))      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
import sqlite3
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.core import _json
from batchkit.core.results import TRANSIENT_ERRORS, output_label
from batchkit.errors import UnknownModelError

from .queues import QueueSnapshot, queue_of

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job

__all__ = [
    "MAX_BATCH_SECONDS",
    "TYPICAL_BATCH_SECONDS",
    "BatchProgress",
    "Snapshot",
    "render_html",
    "render_line",
    "render_text",
    "snapshot",
]

TYPICAL_BATCH_SECONDS = 3600.0
"""Anthropic: most batches end within an hour."""
MAX_BATCH_SECONDS = 24 * 3600.0
"""A batch not ended 24 h after it was created expires (its unprocessed requests ``expired``)."""

FAILED_STATUSES = ("errored", "expired", "invalid_output")
"""Row statuses that mean "no usable answer" and that the Retry button resubmits."""
_ANSWERED = ("succeeded", "truncated")
_ENDED_STATES = frozenset({"ended", "collected", "failed", "abandoned", "lost"})
_ACTIVE_STATES = frozenset({"in_progress", "canceling", "ended"})
"""Batch states whose results have not been collected (a planned batch of a finished job never will)."""
_STATE_LABELS = {
    "submitting": "submitting",
    "in_progress": "in progress",
    "canceling": "canceling",
    "ended": "ended",
    "collected": "ended",
    "failed": "refused",
    "abandoned": "abandoned",
    "lost": "lost (the API no longer knows it)",
}
_COLORS = {
    "succeeded": "#2ca02c",
    "truncated": "#98c93c",
    "retrying": "#f0ad4e",
    "errored": "#d62728",
    "expired": "#e4574f",
    "invalid_output": "#a50f15",
    "canceled": "#7f7f7f",
    "skipped": "#c7c7c7",
    "pending": "#e8e8e8",
}
_ORDER = (
    "succeeded",
    "truncated",
    "retrying",
    "errored",
    "expired",
    "invalid_output",
    "canceled",
    "skipped",
    "pending",
)
_LABELS = {"pending": "waiting for their batch", "retrying": "failed, retry pending"}
_MAX_LISTED_BATCHES = 12
SIMULATED_NOTE = "from batchkit's local simulator, not Claude (set ANTHROPIC_API_KEY for real ones)"
"""What the views say under a job whose answers are simulated."""


# --------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class BatchProgress:
    """One batch of a job as the store last saw it."""

    api_id: str | None
    """The API's batch id; None while the batch is only planned (``submitting``)."""
    state: str
    """The store's state: submitting, in_progress, canceling, ended, collected, failed, abandoned."""
    attempt: int
    """1 for the first submission of its rows, 2 for their first retry, … (0: cache primer)."""
    requests: int
    created_at: dt.datetime | None
    ended_at: dt.datetime | None
    expires_at: dt.datetime | None
    elapsed: float | None
    """Seconds it has run: API clock from create to end once ended, else since it was submitted."""
    counts: Mapping[str, int] | None
    """The API's ``request_counts`` — only once the batch has ended (before that they say nothing)."""
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in _ENDED_STATES

    @property
    def label(self) -> str:
        return _STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class Snapshot:
    """Everything a progress view shows about a job at one moment. Plain data, no I/O."""

    job_id: str
    model: str
    output: str
    status: str
    """The job's status: ``running``, ``ended``, ``canceled`` or ``failed``."""
    taken_at: dt.datetime
    started_at: dt.datetime | None
    rows: int
    by_status: Mapping[str, int]
    """Rows by status (``pending``: its batch has not ended yet)."""
    by_error: Mapping[str, int]
    """Failed rows by error type."""
    batches: tuple[BatchProgress, ...] = ()
    cost: float | None = None
    """Dollars for the results received so far; None when they could not be priced."""
    cost_requests: int = 0
    """Requests whose results are in that :attr:`cost` covers."""
    estimated_total: float | None = None
    """Dollars the whole job is expected to cost; None until there is a basis for it."""
    estimate_basis: str = ""
    """Where :attr:`estimated_total` comes from, in a few words."""
    estimate_range: tuple[float, float] | None = None
    """The (low, high) dollars estimated when the job was submitted, if it was."""
    typical_seconds: float = TYPICAL_BATCH_SECONDS
    max_seconds: float = MAX_BATCH_SECONDS
    simulated: bool = False
    """The answers come from batchkit's local simulator (the job's store says so), not Claude."""
    mode: str = "batch"
    """How the job sends what it has left: ``batch`` or ``realtime`` (see :attr:`batchkit.Job.mode`)."""
    mode_reason: str = ""
    """Why (the ``auto`` rule's reasoning, or that the mode was asked)."""
    realtime_answers: int = 0
    """Requests answered one by one (realtime) so far."""
    realtime_seconds: float | None = None
    """Seconds since the first realtime request of the job was sent."""
    deadline: str = ""
    """A job with a ``deadline=``: when it is, when the hedge fires (or what it did); else empty."""
    queue: QueueSnapshot | None = None
    """The job's batches in the workspace's processing queue — waiting (planned, not created), in
    flight, done — and the queue's limit with where it came from (see :mod:`batchkit.display.queues`)."""

    # -- derived figures

    @property
    def rate(self) -> float | None:
        """Realtime answers per second so far (None for a job sent as batches)."""
        if not self.realtime_answers or not self.realtime_seconds:
            return None
        return self.realtime_answers / self.realtime_seconds

    @property
    def eta(self) -> float | None:
        """Seconds until every pending row is answered at the realtime :attr:`rate` (None if unknown)."""
        rate = self.rate
        if rate is None or self.status != "running":
            return None
        return self.pending / rate

    @property
    def done(self) -> bool:
        """The job has finished and none of its batches is still running or uncollected
        (a canceled job's batches settle a little after the cancel)."""
        return self.status != "running" and not any(b.state in _ACTIVE_STATES for b in self.batches)

    @property
    def pending(self) -> int:
        """Rows whose batch has not ended yet (or whose retry is planned and not back)."""
        return int(self.by_status.get("pending", 0))

    @property
    def rows_done(self) -> int:
        """Rows with an outcome, final or about to be retried."""
        return self.rows - self.pending

    @property
    def succeeded(self) -> int:
        return sum(int(self.by_status.get(s, 0)) for s in _ANSWERED)

    @property
    def failed(self) -> int:
        """Rows that came back without a usable answer (some may still be retried)."""
        return sum(int(self.by_status.get(s, 0)) for s in FAILED_STATUSES)

    @property
    def retrying(self) -> int:
        """Failed rows the job will resubmit by itself while it runs (transient errors,
        expiries, invalid output). An upper bound: a row past ``max_retries`` stays failed."""
        return dict(self.segments()).get("retrying", 0)

    @property
    def failed_for_good(self) -> int:
        """Failed rows that will stay failed unless retried by hand."""
        return self.failed - self.retrying

    @property
    def attempts(self) -> int:
        """The highest attempt among the job's batches (1: no retry yet; 0 without batches)."""
        return max((b.attempt for b in self.batches), default=0)

    @property
    def elapsed(self) -> float | None:
        """Seconds since the job was submitted, while it runs; once done, the API's time from
        the first batch created to the last one ended (None if it sent nothing)."""
        if not self.done:
            return None if self.started_at is None else max(0.0, (self.taken_at - self.started_at).total_seconds())
        created = [b.created_at for b in self.batches if b.created_at is not None]
        ended = [b.ended_at for b in self.batches if b.ended_at is not None]
        if not created or not ended:
            return None
        return max(0.0, (max(ended) - min(created)).total_seconds())

    @property
    def style(self) -> str:
        """``"success"`` (green), ``"danger"`` (red), ``"warning"`` (canceled) or ``""`` (running)."""
        if self.failed_for_good or self.status == "failed":
            return "danger"
        if not self.done:
            return ""
        if self.status == "canceled" or self.by_status.get("canceled"):
            return "warning"
        return "success"

    @property
    def state_label(self) -> str:
        """The job's state in a word or two, for a header."""
        if self.status == "canceled":
            return "canceled" if self.done else "canceling"
        if self.status == "failed":  # job.retry() after the fix
            if any(b.state == "ended" and b.error for b in self.batches):
                return "stopped: results download cut"
            return "stopped: the API refused its requests"
        if not self.done:
            return "running"
        return "ended with failures" if self.failed else "succeeded"

    def segments(self) -> list[tuple[str, int]]:
        """Rows by display category, in bar order, zero counts dropped."""
        counts = {s: int(self.by_status.get(s, 0)) for s in _ORDER}
        if self.status == "running":
            transient = sum(int(n) for t, n in self.by_error.items() if t in TRANSIENT_ERRORS)
            moved = {
                "errored": min(counts["errored"], transient),
                "expired": counts["expired"],
                "invalid_output": counts["invalid_output"],
            }
            for status, n in moved.items():
                counts[status] -= n
                counts["retrying"] += n
        extra = [(s, int(n)) for s, n in self.by_status.items() if s not in counts and n]
        return [(s, counts[s]) for s in _ORDER if counts[s]] + extra


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
    """Read ``job``'s progress into a :class:`Snapshot`.

    Cheap enough to call every second on a job of a million rows: its summary and batch
    records are read again only when the store has changed, and the cost only when a batch
    has been collected.
    """
    now = now or dt.datetime.now(dt.UTC)
    with _CACHES_LOCK:
        cache = _CACHES.setdefault(job, _Cache())
    version = _store_version(job)
    if cache.read is None or version is None or version != cache.version:
        status = job.status  # first: a summary read after it is at least as new
        cache.read = (status, job.summary(), job.store.batches(job_id=job.job_id))
        cache.simulated = _simulated(job)
        cache.version = version
    status, summary, rows = cache.read
    groups = [r for r in rows if _is_group(r)]  # answers stored one group at a time (realtime)
    batches = tuple(_batch_progress(row, now) for row in rows if not _is_group(row))
    cost, cost_requests, bounds = _cost(job, cache, batches, status, len(groups))
    started = [
        t
        for b in batches
        if b.created_at is not None and not str(b.api_id or "").startswith("msgbatch")
        for t in (b.created_at,)
    ]
    realtime_answers = sum(int(r["n_requests"]) for r in groups)
    last = max((_timestamp(r["ended_at"]) for r in groups), default=None, key=lambda t: t or now)
    until = now if status == "running" else (last or now)
    realtime_seconds = (until - min(started)).total_seconds() if started and groups else None
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
        mode=str(getattr(job, "mode", "batch")),
        mode_reason=str(getattr(job, "mode_reason", "")),
        realtime_answers=realtime_answers,
        realtime_seconds=realtime_seconds,
        deadline=str(getattr(job, "deadline_text", lambda: "")()),
        queue=_queue(job, rows),
    )


def _queue(job: Job, rows: list[dict[str, Any]]) -> QueueSnapshot | None:
    """The job's batches in the processing queue (None for a job that sends none as batches)."""
    if not any(r.get("mode", "batch") == "batch" for r in rows):
        return None
    spec = getattr(job, "spec", None)
    setting = getattr(getattr(spec, "run", None), "queue_limit", None)
    return queue_of(rows, getattr(job, "queue", None), setting=setting)


def _is_group(row: Mapping[str, Any]) -> bool:
    """A group of realtime answers stored as they arrived (not a unit of work of its own)."""
    return row.get("mode", "batch") != "batch" and not row["api_id"] and row["state"] == "collected"


def _simulated(job: Job) -> bool:
    """Whether the job's store holds answers from the local simulator (recorded when it first sent)."""
    try:
        rows = job.store.query("SELECT value FROM meta WHERE name = 'backend'")
    except (AttributeError, sqlite3.Error):
        return False
    return bool(rows) and rows[0][0] == "simulator"


def _store_version(job: Job) -> Any:
    version = getattr(job.store, "version", None)
    return version() if callable(version) else None


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
    elif intent is not None and state not in _ENDED_STATES:
        # The API's clock can run ahead of ours (a simulator's fast clock): count from our
        # own record of when the batch was submitted instead.
        elapsed = (now - intent).total_seconds()
    else:
        elapsed = None
    counts = None
    raw = row["request_counts"]
    if state in _ENDED_STATES and isinstance(raw, (str, bytes)) and raw:
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
    collected = tuple(b.api_id for b in batches if b.state == "collected")
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
    if status != "running":
        return (cost, "final") if cost is not None else (None, "")
    if bounds is not None:
        return bounds[1], "estimated at submission"
    to_send = sum(b.requests for b in batches if b.attempt <= 1)
    if cost is None or not cost_requests or not to_send:
        return None, ""
    return cost / cost_requests * to_send, f"projected from {cost_requests:,} answered requests"


# --------------------------------------------------------------------------- text


def _duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h``, ``2 h 04 min``, ``24 h``, ``3 d 2 h``.

    >>> _duration(59.6), _duration(185), _duration(3600), _duration(86400)
    ('1 min 00 s', '3 min 05 s', '1 h', '24 h')
    """
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 2 * 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m:02d} min" if m else f"{h} h"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _dollars(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def _row_parts(snap: Snapshot) -> list[str]:
    labels = _LABELS if snap.mode == "batch" else {**_LABELS, "pending": "waiting for their answer"}
    return [f"{n:,} {labels.get(s, s)}" for s, n in snap.segments()]


def _batch_summary(snap: Snapshot) -> str:
    if not snap.batches:
        return "none sent (every row was already answered or skipped)" if snap.done else "none yet"
    by_state: dict[str, int] = {}
    for b in snap.batches:
        by_state[b.label] = by_state.get(b.label, 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in by_state.items())
    retries = f"; {snap.attempts - 1} round(s) of retries" if snap.attempts > 1 else ""
    return f"{len(snap.batches)} ({states}){retries}"


def _batch_time(b: BatchProgress, snap: Snapshot, *, limits: bool = True) -> str:
    if b.ended:
        return f"took {_duration(b.elapsed)}" if b.elapsed is not None else ""
    if b.state == "submitting":
        return "being created"
    if not limits:
        return f"{_duration(b.elapsed)} so far"
    limit = f"typical < {_duration(snap.typical_seconds)}, limit {_duration(snap.max_seconds)}"
    return f"{_duration(b.elapsed)} so far ({limit})"


def _batch_result(b: BatchProgress) -> str:
    if b.error:
        return b.error
    if b.counts is None:
        return "counts come when the batch ends" if not b.ended else ""
    return ", ".join(f"{n:,} {k}" for k, n in b.counts.items() if n and k != "processing") or "no results"


def _queue_matters(snap: Snapshot) -> bool:
    """Whether the processing queue is worth a line: a limit the user set or batchkit learned from
    a refusal, or batches of a running job still waiting to be created. A finished job on a queue
    whose limit nobody knows shows none (there is nothing to act on)."""
    queue = snap.queue
    if queue is None or not queue.batches:
        return False
    return queue.limit is not None or queue.refused > 0 or (snap.status == "running" and queue.waiting_batches > 0)


def _cost_text(snap: Snapshot) -> str:
    if snap.done and not snap.batches and not snap.cost:
        return "$0 (nothing sent: " + ("no rows)" if not snap.rows else "every row was already answered or skipped)")
    if snap.done:
        prices = (
            "batch prices"
            if not snap.realtime_answers
            else (
                "standard prices"
                if snap.mode != "batch"
                and snap.batches
                and all(not str(b.api_id or "").startswith("msgbatch") for b in snap.batches)
                else "batch and standard prices"
            )
        )
        text = f"{_dollars(snap.cost)} ({prices})" if snap.cost is not None else "unknown"
        if snap.estimate_range is not None:
            low, high = snap.estimate_range
            text += f"; estimated {_dollars(low)}–{_dollars(high)}"
        return text
    text = f"{_dollars(snap.cost)} so far"
    if snap.cost_requests:
        text += f" for {snap.cost_requests:,} answered requests"
    if snap.estimated_total is not None:
        text += f"; about {_dollars(snap.estimated_total)} in all ({snap.estimate_basis})"
    else:
        text += "; a total is projected once the first batch ends"
    return text


def render_line(snap: Snapshot) -> str:
    """One line: state, rows with an outcome, batches ended, cost.

    >>> snap = Snapshot("job_1", "claude-haiku-4-5", "out", "running",
    ...                 dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), None, 10,
    ...                 {"pending": 4, "succeeded": 6}, {})
    >>> render_line(snap)
    'job_1 running: 6 of 10 rows back (6 succeeded, 4 waiting for their batch); batches: none yet; $0 so far'
    """
    when = f" {_duration(snap.elapsed)}" if snap.elapsed is not None else ""
    rows = f"{snap.rows_done:,} of {snap.rows:,} rows back" if not snap.done else f"{snap.rows:,} rows"
    parts = ", ".join(_row_parts(snap))
    ended = sum(b.ended for b in snap.batches)
    batches = f"{ended} of {len(snap.batches)} batches ended" if snap.batches else _batch_summary(snap)
    cost = _dollars(snap.cost) + ("" if snap.done else " so far")
    if snap.mode != "batch" or snap.realtime_answers:
        return f"{snap.job_id} {snap.state_label}{when}: {rows} ({parts}); {_realtime_text(snap)}; {cost}"
    queue = snap.queue
    if queue is not None and queue.waiting_batches and snap.status == "running":
        used = queue.workspace_in_flight if queue.workspace_in_flight is not None else queue.in_flight
        held = queue.limit is not None and used + queue.waiting > queue.limit  # else: about to be created
        batches += f", {queue.waiting_batches} " + ("waiting for room in the queue" if held else "not created yet")
    return f"{snap.job_id} {snap.state_label}{when}: {rows} ({parts}); batches: {batches}; {cost}"


def _realtime_text(snap: Snapshot) -> str:
    """``realtime: 12.5 rows/s, ETA 8 s`` (what a realtime job shows instead of batch times)."""
    rate = snap.rate
    text = f"{snap.mode}: " + (f"{rate:,.1f} rows/s" if rate is not None else "starting")
    if snap.eta is not None:
        text += f", ETA {_duration(snap.eta)}"
    return text


def render_text(snap: Snapshot, *, max_batches: int = _MAX_LISTED_BATCHES) -> str:
    """A few lines for a terminal or a log: header, rows, batches (each with its time), cost, errors."""
    when = f", {_duration(snap.elapsed)}" if snap.elapsed is not None else ""
    lines = [
        f"batchkit job {snap.job_id} ({snap.model} → {snap.output!r}): {snap.state_label}{when}",
        f"  rows     {snap.rows:,}: " + (", ".join(_row_parts(snap)) or "none"),
        f"  mode     {snap.mode} — {snap.mode_reason}" if snap.mode_reason else f"  mode     {snap.mode}",
        f"  batches  {_batch_summary(snap)}",
    ]
    if _queue_matters(snap):
        lines.append(f"  queue    {snap.queue.text()}")  # type: ignore[union-attr]
    if snap.deadline:
        lines.insert(3, f"  deadline {snap.deadline}")
    if snap.realtime_answers or (snap.mode != "batch" and not snap.done):  # no "starting" once done
        lines.insert(2, f"  speed    {_realtime_text(snap)}")
    for b in snap.batches[:max_batches]:
        name = b.api_id or "(planned)"
        lines.append(
            f"    {name:<34} attempt {b.attempt}  {b.label:<11} {b.requests:>7,} requests  "
            f"{_batch_time(b, snap)}  {_batch_result(b)}".rstrip()
        )
    if len(snap.batches) > max_batches:
        lines.append(f"    … and {len(snap.batches) - max_batches} more")
    lines.append(f"  cost     {_cost_text(snap)}")
    if snap.by_error:
        lines.append("  errors   " + ", ".join(f"{t}: {n:,}" for t, n in snap.by_error.items()))
    if snap.simulated:
        lines.append(f"  answers  {SIMULATED_NOTE}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML


_BAR_STYLE_COLORS = {"success": "#2ca02c", "danger": "#d62728", "warning": "#f0ad4e", "": "#4c72b0"}


def _rows_bar_html(snap: Snapshot) -> str:
    esc = html.escape
    total = max(snap.rows, 1)
    cells = []
    for status, n in snap.segments():
        width = 100.0 * n / total
        label = _LABELS.get(status, status)
        pattern = (
            (";background-image:repeating-linear-gradient(45deg,transparent 0 6px,rgba(255,255,255,.55) 6px 12px)")
            if status == "pending"
            else ""
        )
        cells.append(
            f'<div class="batchkit-seg batchkit-seg-{esc(status)}" title="{n:,} {esc(label)}" '
            f'style="width:{width:.3f}%;background:{_COLORS.get(status, "#999")}{pattern}"></div>'
        )
    return (
        '<div class="batchkit-rows-bar" style="display:flex;height:12px;border-radius:3px;'
        'overflow:hidden;background:#eee;margin:4px 0;max-width:640px">' + "".join(cells) + "</div>"
    )


def _time_gauge_html(b: BatchProgress, snap: Snapshot) -> str:
    """Time used of the 24 h limit, with a tick at the typical duration — time, not progress."""
    if b.elapsed is None or b.state == "submitting":
        return ""
    share = min(1.0, b.elapsed / snap.max_seconds)
    tick = 100.0 * snap.typical_seconds / snap.max_seconds
    color = "#999" if b.ended else ("#4c72b0" if b.elapsed <= snap.typical_seconds else "#dd8452")
    title = (
        f"{_duration(b.elapsed)} of the {_duration(snap.max_seconds)} limit "
        f"(most batches end within {_duration(snap.typical_seconds)})"
    )
    return (
        f'<div title="{html.escape(title)}" style="position:relative;width:120px;height:6px;background:#eee;'
        f'border-radius:3px"><div style="width:{100 * share:.2f}%;min-width:2px;height:100%;'
        f'background:{color};border-radius:3px"></div><div style="position:absolute;left:{tick:.2f}%;'
        'top:-2px;width:1px;height:10px;background:#555"></div></div>'
    )


def _queue_html(queue: QueueSnapshot) -> str:
    """The queue in one line: waiting / in flight / done, and the limit with where it came from."""
    cells = [
        ("waiting", queue.waiting_batches, queue.waiting),
        ("in-flight", queue.in_flight_batches, queue.in_flight),
        ("done", queue.done_batches, queue.done),
    ]
    parts = " · ".join(
        f'<span class="batchkit-queue-{name}" data-batches="{n}" data-requests="{requests}">'
        f"{n:,} {name.replace('-', ' ')}</span>"
        for name, n, requests in cells
    )
    return (
        f'<div class="batchkit-queue" data-limit="{queue.limit or ""}" data-source="{queue.source or ""}">'
        f"queue: {parts}; limit {html.escape(queue.limit_text())}</div>"
    )


def render_html(snap: Snapshot, *, max_batches: int = _MAX_LISTED_BATCHES, bar: bool = True) -> str:
    """The snapshot as one self-contained HTML block (inline styles, no scripts).

    ``bar=False`` leaves out the rows bar (the widget draws its own).
    """
    esc = html.escape
    color = _BAR_STYLE_COLORS[snap.style]
    when = f" · {_duration(snap.elapsed)}" if snap.elapsed is not None else ""
    head = (
        f"<div><b>batchkit job</b> <code>{esc(snap.job_id)}</code> · {esc(snap.model)} → "
        f'<code>{esc(snap.output)}</code> · <span class="batchkit-state" data-state="{esc(snap.status)}" '
        f'style="color:{color};font-weight:600">{esc(snap.state_label)}</span>{esc(when)}</div>'
    )
    rows = f'<div class="batchkit-rows">{snap.rows:,} rows: ' + esc(", ".join(_row_parts(snap)) or "none") + "</div>"
    rows += (
        f'<div class="batchkit-mode" data-mode="{esc(snap.mode)}">mode: <b>{esc(snap.mode)}</b>'
        + (f" — {esc(snap.mode_reason)}" if snap.mode_reason else "")
        + "</div>"
    )
    if snap.mode != "batch" or snap.realtime_answers:
        rows += f'<div class="batchkit-speed">{esc(_realtime_text(snap))}</div>'
    if snap.deadline:
        rows += f'<div class="batchkit-deadline">deadline: {esc(snap.deadline)}</div>'
    if snap.queue is not None and snap.queue.batches:
        rows += _queue_html(snap.queue)

    cell = 'style="padding:1px 8px 1px 0;text-align:{}"'
    body = []
    for b in snap.batches[:max_batches]:
        body.append(
            "<tr>"
            f"<td {cell.format('left')}><code>{esc(b.api_id or '(planned)')}</code></td>"
            f"<td {cell.format('right')}>{b.attempt}</td>"
            f'<td {cell.format("left")} class="batchkit-batch-state">{esc(b.label)}</td>'
            f"<td {cell.format('right')}>{b.requests:,}</td>"
            f"<td {cell.format('left')}>{esc(_batch_time(b, snap, limits=False))}</td>"
            f"<td {cell.format('left')}>{_time_gauge_html(b, snap)}</td>"
            f"<td {cell.format('left')}>{esc(_batch_result(b))}</td>"
            "</tr>"
        )
    more = ""
    if len(snap.batches) > max_batches:
        more = f'<div style="color:#666">… and {len(snap.batches) - max_batches} more batches</div>'
    table = ""
    if snap.batches:
        heads = (
            "batch",
            "attempt",
            "state",
            "requests",
            f"time (typical < {_duration(snap.typical_seconds)})",
            f"of the {_duration(snap.max_seconds)} limit",
            "results",
        )
        header = "".join(f"<th {cell.format('left')}>{h}</th>" for h in heads)
        table = (
            f'<table class="batchkit-batches" style="border-collapse:collapse;font-size:90%">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
        )
    else:
        table = f"<div>batches: {esc(_batch_summary(snap))}</div>"
    errors = ""
    if snap.by_error:
        errors = (
            '<div class="batchkit-errors">errors: '
            + esc(", ".join(f"{t}: {n:,}" for t, n in snap.by_error.items()))
            + "</div>"
        )
    cost = f'<div class="batchkit-cost">cost: {esc(_cost_text(snap))}</div>'
    if snap.simulated:
        errors += f'<div class="batchkit-simulated" style="color:#666">answers: {esc(SIMULATED_NOTE)}</div>'
    return (
        f'<div class="batchkit-job" data-job="{esc(snap.job_id)}" data-status="{esc(snap.status)}" '
        f'data-done="{str(snap.done).lower()}" data-style="{esc(snap.style)}" '
        'style="font-size:13px;line-height:1.45">'
        + head
        + (_rows_bar_html(snap) if bar else "")
        + rows
        + table
        + cost
        + errors
        + "</div>"
    )


# --------------------------------------------------------------------------- live views
