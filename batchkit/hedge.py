"""The deadline hedge: batch prices for what finishes in time, realtime for the rest.

A batch is all-or-nothing — its results come only when it ends — and can only be canceled
whole. So a job with a ``deadline=`` is split into several batches (:func:`plan_hedge`); while
they run, :meth:`HedgePlan.should_cancel` says, from the clock and the rows still waiting, when
the time left is only just enough to send those rows through realtime; then the batches still
running are canceled (:func:`cancel_running`) — requests already processed are kept and paid at
batch price, the rest come back ``canceled`` — and only the rows that came back canceled (or
were never sent) go through realtime (:func:`send_unanswered`), each answer stored as it
arrives. :func:`run_with_deadline` does all of it for a submitted job.

A row can be answered twice: when the deadline comes while a cancel is still settling, its rows
are sent realtime at once, and some of them may still finish in the batch. Both answers were
paid for and both are counted (:attr:`HedgeReport.answered_twice`), but a row is merged once:
the store keeps one answer per request key.

The clock is a function returning seconds since the epoch: ``time.time`` for the real API; for
the simulator on a fast clock, its simulated time (``sim.clock.timestamp``), so a deadline of an
hour is tested in seconds.

Pure planning (:func:`plan_hedge`, :class:`HedgePlan`) is apart from the I/O (the rest, which
drives a :class:`batchkit.Job`'s store and backend and a
:class:`~batchkit.backends.realtime.RealtimeSender`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np

from .backends import CallFailed
from .backends.ratelimit import Limits
from .errors import InvalidOptionError
from .pricing import kind_costs
from .requests import MAX_BATCH_REQUESTS, make_line
from .results import ANSWERED, STATUS_CODE, parse_result_stream

if TYPE_CHECKING:
    from .backends.realtime import RealtimeSender
    from .jobs import Job

__all__ = [
    "REALTIME_UNIT_PREFIX",
    "Clock",
    "Deadline",
    "HedgePlan",
    "HedgeReport",
    "cancel_running",
    "deadline_at",
    "hedge_report",
    "plan_hedge",
    "realtime_rate",
    "rows_waiting",
    "run_with_deadline",
    "send_unanswered",
]

Clock = Callable[[], float]
"""Seconds since the epoch, now (``time.time``, or a simulator's ``clock.timestamp``)."""

Deadline = Union[dt.datetime, dt.timedelta, float, int]  # noqa: UP007
"""A ``datetime`` (naive: local time), a ``timedelta`` from now, or seconds from now."""

REALTIME_UNIT_PREFIX = "realtime_"
"""The ``api_id`` prefix of the store's units that hold answers sent through realtime."""

_WAITING = ("submitting", "in_progress", "canceling", "ended")
"""Unit states whose rows have no final result yet (``ended``: not yet collected)."""


# --------------------------------------------------------------------------- planning (pure)


def deadline_at(deadline: Deadline, now: float) -> float:
    """The deadline as seconds since the epoch on the clock that read ``now``.

    >>> deadline_at(90, now=1_000.0), deadline_at(dt.timedelta(minutes=1), now=1_000.0)
    (1090.0, 1060.0)

    Raises:
        InvalidOptionError: the deadline is not a time, or has passed.
    """
    if isinstance(deadline, dt.datetime):
        at = deadline.timestamp()  # naive: local time, as datetime.now() gives
    elif isinstance(deadline, dt.timedelta):
        at = now + deadline.total_seconds()
    elif isinstance(deadline, (int, float)) and not isinstance(deadline, bool) and math.isfinite(deadline):
        at = now + float(deadline)
    else:
        raise InvalidOptionError(
            f"deadline= must be a datetime, a timedelta or seconds from now, not {deadline!r}", option="deadline")
    if at <= now:
        raise InvalidOptionError(
            f"deadline= has passed ({at - now:,.0f} s from now); give a time in the future, or leave it out "
            "to wait for the batches however long they take", option="deadline")
    return at


def realtime_rate(limits: Limits, *, input_tokens: float, output_tokens: float) -> float:
    """Requests per second realtime can sustain within ``limits``: the slowest of the request,
    input-token and output-token limits, for requests of ``input_tokens`` and ``output_tokens``
    on average. ``inf`` when no limit is known.

    >>> realtime_rate(Limits(1_000, 2_000_000, 400_000), input_tokens=500, output_tokens=200)
    16.666666666666668
    """
    per_minute = [
        limit / each
        for limit, each in ((limits.requests_per_minute, 1.0), (limits.input_tokens_per_minute, input_tokens),
                            (limits.output_tokens_per_minute, output_tokens))
        if limit is not None and each > 0
    ]
    return min(per_minute) / 60.0 if per_minute else math.inf


@dataclass(frozen=True)
class HedgePlan:
    """How a job with a deadline is run. Build it with :func:`plan_hedge`.

    Attributes:
        deadline: when every row must be answered (seconds since the epoch, on the hedge's clock).
        chunk_size: requests per batch.
        realtime_rate: requests per second realtime is expected to sustain (the slowest of the
            workspace's request, input-token and output-token limits).
        settle_seconds: time a cancel is given to settle before the rows are sent anyway.
        safety: the realtime time is planned this many times longer than the rate says.
    """

    deadline: float
    chunk_size: int
    realtime_rate: float
    settle_seconds: float = 60.0
    safety: float = 1.5

    def realtime_seconds(self, rows: int) -> float:
        """Time planned for sending ``rows`` through realtime."""
        return self.safety * rows / self.realtime_rate

    def cancel_at(self, rows_waiting: int) -> float:
        """The last moment to cancel, with ``rows_waiting`` rows still in batches."""
        return self.deadline - self.settle_seconds - self.realtime_seconds(rows_waiting)

    def should_cancel(self, now: float, rows_waiting: int) -> bool:
        """Whether the batches still running must be canceled now."""
        return rows_waiting > 0 and now >= self.cancel_at(rows_waiting)

    def stop_waiting_at(self, rows_waiting: int) -> float:
        """The last moment to wait for canceled batches to end before their rows go realtime anyway."""
        return self.deadline - self.realtime_seconds(rows_waiting)


def plan_hedge(
    n_requests: int,
    *,
    deadline: Deadline,
    now: float,
    realtime_rate: float,
    settle_seconds: float = 60.0,
    safety: float = 1.5,
    min_batches: int = 4,
    max_requests: int = MAX_BATCH_REQUESTS,
) -> HedgePlan:
    """Split ``n_requests`` into batches for a hedge against ``deadline``.

    At least ``min_batches`` batches (as many as the 100,000-request limit needs, if more), of
    equal size: each ends, and is collected at batch price, on its own, so a late one costs only
    its own rows at realtime price.

    >>> plan = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0)
    >>> plan.chunk_size, plan.cancel_at(rows_waiting=400)
    (250, 3480.0)

    Raises:
        InvalidOptionError: the deadline has passed, or realtime could not send a single row
            (``realtime_rate`` ≤ 0).
    """
    at = deadline_at(deadline, now)
    if not realtime_rate > 0:
        raise InvalidOptionError(f"realtime_rate must be > 0 requests per second, not {realtime_rate!r}",
                                 option="deadline")
    n = max(0, int(n_requests))
    batches = max(int(min_batches), math.ceil(n / max_requests), 1)
    return HedgePlan(deadline=at, chunk_size=max(1, math.ceil(n / batches)), realtime_rate=float(realtime_rate),
                     settle_seconds=float(settle_seconds), safety=float(safety))


# --------------------------------------------------------------------------- the job's side


def rows_waiting(job: Job) -> int:
    """Requests of ``job`` in units that have no final result yet (cheap: the store's counts)."""
    return sum(int(b["n_requests"]) for b in job.store.batches(job_id=job.job_id, states=_WAITING))


def cancel_running(job: Job) -> list[str]:
    """Cancel every batch of ``job`` still running, without canceling the job.

    Requests already processed are kept (and paid at batch price); the others come back
    ``canceled`` when the batch ends, and the job's worker collects them as usual. Batches
    planned but not yet created are left to the engine (call again next round: they are
    canceled once created; wired into the engine, the hedge should drop them from the plan
    instead). Returns the ids of the batches asked to cancel.
    """
    canceled = []
    for unit in job.store.batches(job_id=job.job_id, states=("in_progress",)):
        if not unit["api_id"] or unit["api_id"].startswith(REALTIME_UNIT_PREFIX):
            continue
        try:
            tracked = job.backend.cancel(unit["api_id"])
        except CallFailed:
            continue  # a blip, or it ended meanwhile: the next round looks again
        job.store.update_batch(unit["id"], state=tracked.state, **tracked.fields)
        canceled.append(unit["api_id"])
    return canceled


def send_unanswered(job: Job, sender: RealtimeSender, *, include_waiting: bool = False) -> int:
    """Send the rows of ``job`` that came back ``canceled`` (or were never sent) through realtime.

    Each answer is stored as it arrives (a few at a time, in a unit of the store whose
    ``api_id`` starts with :data:`REALTIME_UNIT_PREFIX`), so the job's results include it and a
    crash loses only the requests in flight. ``include_waiting=True`` also sends the rows of
    batches that have not ended yet (the deadline is too close to wait for a cancel to settle):
    some of those may be answered twice, and :func:`hedge_report` counts them.

    Returns:
        The number of requests sent.
    """
    from .jobs import OWNER

    keys = _unanswered_keys(job, include_waiting=include_waiting)
    if not keys:
        return 0
    bodies = job.store.request_bodies(keys)
    requests = [(k, bodies[k]) for k in keys if k in bodies]

    def store(chunk: bytes) -> None:
        columns = parse_result_stream([chunk])
        lines = [make_line(k, bodies[k]) for k in columns.keys]
        body = b'{"requests":[' + b",".join(lines) + b"]}"
        with job.store.atomic() as conn:
            unit = job.store.add_batch(conn, job_id=job.job_id, keys=columns.keys, body=body, attempt=1, owner=OWNER)
            job.store.store_results(conn, unit, job.model, columns)
            job.store.update_batch_in(conn, unit, api_id=REALTIME_UNIT_PREFIX + uuid.uuid4().hex, state="collected")

    sender.send(requests, store)
    return len(requests)


def _unanswered_keys(job: Job, *, include_waiting: bool) -> list[str]:
    outcomes = job.outcomes()
    waiting: set[str] = set()
    if not include_waiting:
        for unit in job.store.batches(job_id=job.job_id, states=_WAITING):
            waiting.update(job.store.batch_keys(unit["id"]))
    mask = outcomes["status"].isin(("canceled", "pending")).to_numpy() & outcomes["request_key"].notna().to_numpy()
    chosen = dict.fromkeys(outcomes["request_key"].to_numpy()[mask].tolist())
    answered = job.store.answered(chosen)
    return [k for k in chosen if k not in waiting and k not in answered]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class HedgeReport:
    """How a job with a deadline went, and what each way of sending cost.

    Attributes:
        deadline: the deadline (seconds since the epoch, on the hedge's clock).
        finished_at: when the last row got its answer, on the same clock.
        batches_canceled: batches canceled when the deadline neared.
        rows_canceled: requests that came back ``canceled`` from them.
        answered_batch: requests answered by the job's batches (paid at batch price).
        answered_realtime: requests answered through realtime (paid at the standard price).
        answered_twice: requests answered both ways (a batch finished them while canceling):
            both were paid; each row is merged once.
        cost_batch: dollars of the batch answers.
        cost_realtime: dollars of the realtime answers.
    """

    deadline: float
    finished_at: float
    batches_canceled: int
    rows_canceled: int
    answered_batch: int
    answered_realtime: int
    answered_twice: int
    cost_batch: float
    cost_realtime: float

    @property
    def met(self) -> bool:
        """Every row was answered by the deadline."""
        return self.finished_at <= self.deadline

    @property
    def cost(self) -> float:
        return self.cost_batch + self.cost_realtime

    def __str__(self) -> str:
        late = self.finished_at - self.deadline
        when = f"{-late:,.0f} s before the deadline" if late <= 0 else f"{late:,.0f} s AFTER the deadline"
        twice = f"; {self.answered_twice:,} answered both ways (both paid, merged once)" if self.answered_twice else ""
        return (f"deadline hedge: finished {when}; {self.answered_batch:,} answered by batch "
                f"(${self.cost_batch:,.4f}), {self.answered_realtime:,} through realtime (${self.cost_realtime:,.4f}) "
                f"after {self.batches_canceled} batch(es) were canceled with {self.rows_canceled:,} rows "
                f"unprocessed{twice}; total ${self.cost:,.4f}")


def hedge_report(job: Job, *, deadline: float, finished_at: float, batches_canceled: int) -> HedgeReport:
    """Count and price what the job's batches and its realtime units answered."""
    units = job.store.query(
        "SELECT r.id, b.api_id FROM batch_results r JOIN batches b ON b.id = r.batch_id WHERE b.job_id = ?",
        (job.job_id,),
    )
    answered: dict[bool, set[str]] = {True: set(), False: set()}
    cost = {True: 0.0, False: 0.0}
    canceled = 0
    billed = (*ANSWERED, STATUS_CODE["invalid_output"])
    for results_id, api_id in units:
        realtime = bool(api_id) and str(api_id).startswith(REALTIME_UNIT_PREFIX)
        statuses, usage = job.store.result_usage(results_id)
        keys = job.store.result_keys(results_id)
        ok = np.isin(statuses, tuple(ANSWERED))
        answered[realtime].update(k for k, good in zip(keys, ok.tolist(), strict=True) if good)
        canceled += int((statuses == STATUS_CODE["canceled"]).sum())
        paid = usage[np.isin(statuses, billed)]
        if len(paid):
            cost[realtime] += float(kind_costs(paid, job.model, batch=not realtime).sum())
    return HedgeReport(
        deadline=deadline, finished_at=finished_at, batches_canceled=batches_canceled, rows_canceled=canceled,
        answered_batch=len(answered[False]), answered_realtime=len(answered[True]),
        answered_twice=len(answered[True] & answered[False]), cost_batch=cost[False], cost_realtime=cost[True],
    )


# --------------------------------------------------------------------------- the whole hedge


def run_with_deadline(
    job: Job,
    plan: HedgePlan,
    sender: RealtimeSender,
    *,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 1.0,
) -> HedgeReport:
    """Run a submitted ``job`` (its batches of ``plan.chunk_size``) against ``plan.deadline``.

    Waits while the batches run; when :meth:`HedgePlan.should_cancel` says so, cancels those
    still running and waits for them to end — but no longer than
    :meth:`HedgePlan.stop_waiting_at` — then sends the rows with no answer through ``sender``.
    ``poll`` is the wall seconds between looks (the job's own worker polls the API).

    >>> job = df.claude.submit(prompt, chunk_size=plan.chunk_size)       # doctest: +SKIP
    >>> print(run_with_deadline(job, plan, RealtimeSender(client)))     # doctest: +SKIP
    deadline hedge: finished 1,412 s before the deadline; 8,000 answered by batch ...
    """
    canceled: list[str] = []
    canceling = False
    while True:
        waiting = rows_waiting(job)
        if waiting == 0:
            break
        now = clock()
        if not canceling and plan.should_cancel(now, waiting):
            canceling = True
        if canceling:
            canceled += cancel_running(job)  # again each round: a batch created late is canceled too
            if now >= plan.stop_waiting_at(waiting):
                break  # no time left to let the cancel settle
        job.start()  # the worker collects what ends (it may have stopped between rounds)
        sleep(poll)
    send_unanswered(job, sender, include_waiting=rows_waiting(job) > 0)
    finished_at = clock()
    return hedge_report(job, deadline=plan.deadline, finished_at=finished_at, batches_canceled=len(set(canceled)))
