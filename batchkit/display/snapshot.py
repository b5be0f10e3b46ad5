"""What a job's progress is: the :class:`Snapshot` and its batches' :class:`BatchProgress`. Pure.

The Message Batches API says nothing about a batch's progress until the whole batch ends:
``request_counts`` stay at "processing" until then. So nothing here computes a percentage of a
running batch. A batch has its state and how long it has run against the typical (under an
hour) and the maximum (24 h, then it expires) duration; the rows fill in when their batch ends.

A snapshot is plain data, built by :func:`batchkit.display.reader.snapshot` from a job and drawn by
:mod:`batchkit.display.text` and :mod:`batchkit.display.html_view`; every figure a view shows
(rows back, retrying, failed for good, the bar's colour, the state in words) is derived here
once, so the three renderings and the widget cannot disagree.

The bar turns green when every row succeeded and red when any row failed for good
(:attr:`Snapshot.style`); that green never overwrites red is the widget's rule
(:class:`batchkit.display.views.JobWidget`), since only it remembers what it showed before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchkit.core.results import TRANSIENT_ERRORS
from batchkit.core.states import FINISHED_UNITS, SENT_UNITS, JobState, RowStatus, SendMode, UnitState

if TYPE_CHECKING:
    from .queues import QueueSnapshot  # its numbers only: the queue's view is read in the reader

__all__ = [
    "FAILED_STATUSES",
    "MAX_BATCH_SECONDS",
    "SIMULATED_NOTE",
    "TYPICAL_BATCH_SECONDS",
    "BatchProgress",
    "Snapshot",
]

TYPICAL_BATCH_SECONDS = 3600.0
"""Anthropic: most batches end within an hour."""
MAX_BATCH_SECONDS = 24 * 3600.0
"""A batch not ended 24 h after it was created expires (its unprocessed requests ``expired``)."""

FAILED_STATUSES = (RowStatus.ERRORED, RowStatus.EXPIRED, RowStatus.INVALID_OUTPUT)
"""Row statuses that mean "no usable answer" and that the Retry button resubmits."""
ANSWERED = (RowStatus.SUCCEEDED, RowStatus.TRUNCATED)
"""Row statuses that carry an answer (a truncated one is still an answer)."""
_STATE_LABELS: dict[str, str] = {
    UnitState.SUBMITTING: "submitting",
    UnitState.IN_PROGRESS: "in progress",
    UnitState.CANCELING: "canceling",
    UnitState.ENDED: "ended",
    UnitState.COLLECTED: "ended",
    UnitState.FAILED: "refused",
    UnitState.ABANDONED: "abandoned",
    UnitState.LOST: "lost (the API no longer knows it)",
}
ORDER = (
    RowStatus.SUCCEEDED,
    RowStatus.TRUNCATED,
    "retrying",
    RowStatus.ERRORED,
    RowStatus.EXPIRED,
    RowStatus.INVALID_OUTPUT,
    RowStatus.CANCELED,
    RowStatus.SKIPPED,
    "pending",
)
"""The display categories of rows, in bar order: the row statuses, plus ``retrying`` (failed, a
retry pending) and ``pending`` (its batch has not ended yet)."""
SIMULATED_NOTE = "from batchkit's local simulator, not Claude (set ANTHROPIC_API_KEY for real ones)"
"""What the views say under a job whose answers are simulated."""


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
        return self.state in FINISHED_UNITS

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
    mode: str = SendMode.BATCH
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
        if rate is None or self.status != JobState.RUNNING:
            return None
        return self.pending / rate

    @property
    def done(self) -> bool:
        """The job has finished and none of its batches is still running or uncollected
        (a canceled job's batches settle a little after the cancel)."""
        return self.status != JobState.RUNNING and not any(b.state in SENT_UNITS for b in self.batches)

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
        return sum(int(self.by_status.get(s, 0)) for s in ANSWERED)

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
        if self.failed_for_good or self.status == JobState.FAILED:
            return "danger"
        if not self.done:
            return ""
        if self.status == JobState.CANCELED or self.by_status.get(RowStatus.CANCELED):
            return "warning"
        return "success"

    @property
    def state_label(self) -> str:
        """The job's state in a word or two, for a header."""
        if self.status == JobState.CANCELED:
            return "canceled" if self.done else "canceling"
        if self.status == JobState.FAILED:  # job.retry() after the fix
            if any(b.state == UnitState.ENDED and b.error for b in self.batches):
                return "stopped: results download cut"
            return "stopped: the API refused its requests"
        if not self.done:
            return "running"
        return "ended with failures" if self.failed else "succeeded"

    def segments(self) -> list[tuple[str, int]]:
        """Rows by display category, in bar order, zero counts dropped."""
        counts = {s: int(self.by_status.get(s, 0)) for s in ORDER}
        if self.status == JobState.RUNNING:
            transient = sum(int(n) for t, n in self.by_error.items() if t in TRANSIENT_ERRORS)
            moved = {
                RowStatus.ERRORED: min(counts[RowStatus.ERRORED], transient),
                RowStatus.EXPIRED: counts[RowStatus.EXPIRED],
                RowStatus.INVALID_OUTPUT: counts[RowStatus.INVALID_OUTPUT],
            }
            for status, n in moved.items():
                counts[status] -= n
                counts["retrying"] += n
        extra = [(s, int(n)) for s, n in self.by_status.items() if s not in counts and n]
        return [(s, counts[s]) for s in ORDER if counts[s]] + extra
