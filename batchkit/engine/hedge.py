"""The deadline hedge: batch prices for what finishes in time, realtime for the rest. Pure planning.

A batch is all-or-nothing — its results come only when it ends — and can only be canceled
whole. So a job sent as batches with a ``deadline=`` is split into several batches
(:func:`plan_hedge`). The job's worker (:class:`batchkit.Job`) asks :meth:`HedgePlan.should_cancel`
every round, from the clock and the rows still waiting, whether the time left is only just
enough to send those rows through realtime; then it cancels the batches still running (not the
job), waits for them to end — requests already processed are kept and paid at batch price, the
rest come back ``canceled`` — and sends only the rows that came back canceled (or were never
sent) as a realtime unit, each answer stored as it arrives and priced at the standard price.
From then on the job's mode is ``realtime`` (its :attr:`~batchkit.Job.mode_reason` says why).

A row can be answered twice: when the deadline comes while a cancel is still settling
(:meth:`HedgePlan.stop_waiting_at`), its rows are sent realtime at once, and some of them may
still finish in the batch. Both answers were paid for and both are counted
(:attr:`HedgeReport.answered_twice`, ``job.hedge``), but a row is merged once.

The clock is seconds since the epoch on the server's clock
(:func:`batchkit.backends.clients.server_clock`): ``time.time`` for the real API; for the simulator on a
fast clock, its simulated time, so a deadline of an hour is tested in seconds.

Two kinds of time go into the plan. The server's (a cancel settling, the realtime rate limits)
is counted on its clock. batchkit's own (the worker waking up, collecting the canceled
batches, starting realtime, storing the answers) takes wall-clock seconds, which on a clock
``clock_rate`` times faster are ``clock_rate`` times as many clock seconds: the plan keeps
:data:`LOCAL_SECONDS` of wall time in hand, and plans realtime no faster than
:data:`LOCAL_REALTIME_RATE` requests per wall second, both scaled by the clock's rate. On the
real API's clock that is a second and a rate above most workspaces' limits; on the simulator
at ``time_scale=120`` it is two simulated minutes, and a realtime rate of about 2 requests per
simulated second.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from batchkit.backends import CallFailed
from batchkit.backends.clients import server_clock
from batchkit.backends.limits import Limits
from batchkit.core.plan import MAX_BATCH_REQUESTS
from batchkit.core.results import ANSWERED, STATUS_CODE
from batchkit.core.states import AWAITING_RESULTS, JobState, SendMode, UnitState
from batchkit.costs.pricing import kind_costs
from batchkit.errors import InvalidOptionError
from batchkit.stores.ownership import owns

if TYPE_CHECKING:
    from batchkit.stores.store import Store

    from .outcomes import ResultReader
    from .units import Units

_AWAITING = tuple(AWAITING_RESULTS)  # units whose requests have no stored result yet

__all__ = [
    "CANCEL_POLL",
    "HEDGE_REASON",
    "LOCAL_REALTIME_RATE",
    "LOCAL_SECONDS",
    "Clock",
    "Deadline",
    "DeadlineHedge",
    "HedgePlan",
    "HedgeReport",
    "deadline_at",
    "hedge_report",
    "plan_hedge",
    "realtime_rate",
    "settle_seconds",
]

Clock = Callable[[], float]
"""Seconds since the epoch, now (``time.time``, or a simulator's ``clock.timestamp``)."""

Deadline = Union[dt.datetime, dt.timedelta, float, int]  # noqa: UP007
"""A ``datetime`` (naive: local time), a ``timedelta`` from now, or seconds from now."""

CANCEL_POLL = 10.0
"""Seconds (of the server's clock) between looks at batches the deadline hedge canceled, at most
(the API's batch backoff is minutes)."""

HEDGE_REASON = "deadline hedge"
"""How the ``mode_reason`` of a job the deadline hedge moved to realtime begins."""

MAX_SETTLE_SECONDS = 60.0
"""Time a cancel is given to settle, at most (a cancel of the real API's batches takes seconds to minutes)."""

LOCAL_SECONDS = 1.0
"""Wall-clock seconds of batchkit's own work the plan keeps in hand: the worker noticing the
moment (a poll interval of the simulator's), collecting the canceled batches, starting the
realtime unit and storing its last answers. On a fast clock it is worth ``clock_rate`` times as
many clock seconds (without it, a job on the simulator at ``time_scale=120`` ended minutes past
a 300 s deadline)."""

LOCAL_REALTIME_RATE = 250.0
"""Realtime requests per wall-clock second batchkit plans on sending at most, whatever the rate
limits allow: each costs client work (measured ~420–550 a second on a shared two-core machine,
answers stored; halved here). Binds only on a fast clock (2 requests per clock second at 120×)."""


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
            f"deadline= must be a datetime, a timedelta or seconds from now, not {deadline!r}", option="deadline"
        )
    if at <= now:
        raise InvalidOptionError(
            f"deadline= has passed ({at - now:,.0f} s from now); give a time in the future, or leave it out "
            "to wait for the batches however long they take",
            option="deadline",
        )
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
        for limit, each in (
            (limits.requests_per_minute, 1.0),
            (limits.input_tokens_per_minute, input_tokens),
            (limits.output_tokens_per_minute, output_tokens),
        )
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
        clock_rate: seconds of the hedge's clock per wall-clock second (1.0 for the real API,
            the simulator's ``time_scale``): batchkit's own work, in wall seconds, is scaled by it.
        local_seconds: wall-clock seconds of batchkit's own work kept in hand (:data:`LOCAL_SECONDS`).
    """

    deadline: float
    chunk_size: int
    realtime_rate: float
    settle_seconds: float = 60.0
    safety: float = 1.5
    clock_rate: float = 1.0
    local_seconds: float = LOCAL_SECONDS

    @property
    def margin(self) -> float:
        """Clock seconds kept for batchkit's own work: :attr:`local_seconds` at the clock's rate."""
        return self.local_seconds * self.clock_rate

    def realtime_seconds(self, rows: int) -> float:
        """Clock seconds planned for sending ``rows`` through realtime: at the rate limits' pace, or
        batchkit's own (:data:`LOCAL_REALTIME_RATE` a wall second) on a clock fast enough for it to bind."""
        return self.safety * rows / min(self.realtime_rate, LOCAL_REALTIME_RATE / self.clock_rate)

    def cancel_at(self, rows_waiting: int) -> float:
        """The last moment to cancel, with ``rows_waiting`` rows still in batches."""
        return self.stop_waiting_at(rows_waiting) - self.settle_seconds

    def should_cancel(self, now: float, rows_waiting: int) -> bool:
        """Whether the batches still running must be canceled now."""
        return rows_waiting > 0 and now >= self.cancel_at(rows_waiting)

    def stop_waiting_at(self, rows_waiting: int) -> float:
        """The last moment to wait for canceled batches to end before their rows go realtime anyway."""
        return self.deadline - self.margin - self.realtime_seconds(rows_waiting)

    def wall_seconds(self, clock_seconds: float) -> float:
        """Wall-clock seconds until ``clock_seconds`` of the hedge's clock have passed (what a
        worker sleeping until a moment of the plan must wait)."""
        return clock_seconds / self.clock_rate


def settle_seconds(ahead: float) -> float:
    """Time a cancel is given to settle for a deadline ``ahead`` seconds away: a fifth of it, at
    most :data:`MAX_SETTLE_SECONDS`.

    >>> settle_seconds(3_600), settle_seconds(100)
    (60.0, 20.0)
    """
    return min(MAX_SETTLE_SECONDS, max(0.0, 0.2 * float(ahead)))


def plan_hedge(
    n_requests: int,
    *,
    deadline: Deadline,
    now: float,
    realtime_rate: float,
    settle_seconds: float = 60.0,
    safety: float = 1.5,
    clock_rate: float = 1.0,
    min_batches: int = 4,
    max_requests: int = MAX_BATCH_REQUESTS,
) -> HedgePlan:
    """Split ``n_requests`` into batches for a hedge against ``deadline``.

    At least ``min_batches`` batches (as many as the 100,000-request limit needs, if more), of
    equal size: each ends, and is collected at batch price, on its own, so a late one costs only
    its own rows at realtime price. ``clock_rate`` is the clock's seconds per wall second
    (:func:`batchkit.backends.clients.server_clock_rate`).

    >>> plan = plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0)
    >>> plan.chunk_size, plan.cancel_at(rows_waiting=400)
    (250, 3479.0)
    >>> plan_hedge(1_000, deadline=3_600, now=0.0, realtime_rate=10.0, clock_rate=120).cancel_at(400)
    3132.0

    Raises:
        InvalidOptionError: the deadline has passed, or realtime could not send a single row
            (``realtime_rate`` ≤ 0).
    """
    at = deadline_at(deadline, now)
    if not realtime_rate > 0:
        raise InvalidOptionError(
            f"realtime_rate must be > 0 requests per second, not {realtime_rate!r}", option="deadline"
        )
    if not (math.isfinite(clock_rate) and clock_rate > 0):
        raise InvalidOptionError(f"clock_rate must be a finite number > 0, not {clock_rate!r}", option="deadline")
    n = max(0, int(n_requests))
    batches = max(int(min_batches), math.ceil(n / max_requests), 1)
    return HedgePlan(
        deadline=at,
        chunk_size=max(1, math.ceil(n / batches)),
        realtime_rate=float(realtime_rate),
        settle_seconds=float(settle_seconds),
        safety=float(safety),
        clock_rate=float(clock_rate),
    )


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class HedgeReport:
    """How a job with a deadline went, and what each way of sending cost (``job.hedge``).

    Attributes:
        deadline: the deadline (seconds since the epoch, on the server's clock).
        finished_at: when the job ended, on the same clock; None while rows still wait.
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
    finished_at: float | None
    batches_canceled: int
    rows_canceled: int
    answered_batch: int
    answered_realtime: int
    answered_twice: int
    cost_batch: float
    cost_realtime: float

    @property
    def hedged(self) -> bool:
        """The hedge fired: batches were canceled, or rows were sent through realtime."""
        return self.batches_canceled > 0 or self.answered_realtime > 0

    @property
    def met(self) -> bool:
        """Every row was answered by the deadline."""
        return self.finished_at is not None and self.finished_at <= self.deadline

    @property
    def cost(self) -> float:
        return self.cost_batch + self.cost_realtime

    def __str__(self) -> str:
        if self.finished_at is None:
            when = "running"
        else:
            late = self.finished_at - self.deadline
            when = (
                f"finished {-late:,.0f} s before the deadline"
                if late <= 0
                else f"finished {late:,.0f} s AFTER the deadline"
            )
        if not self.hedged:
            return (
                f"deadline hedge: {when}; not needed — {self.answered_batch:,} answered by batch "
                f"(${self.cost_batch:,.4f})"
            )
        twice = f"; {self.answered_twice:,} answered both ways (both paid, merged once)" if self.answered_twice else ""
        return (
            f"deadline hedge: {when}; {self.answered_batch:,} answered by batch "
            f"(${self.cost_batch:,.4f}), {self.answered_realtime:,} through realtime (${self.cost_realtime:,.4f}) "
            f"after {self.batches_canceled} batch(es) were canceled with {self.rows_canceled:,} rows "
            f"unprocessed{twice}; total ${self.cost:,.4f}"
        )


def hedge_report(store: Store, job_id: str, model: str, *, deadline: float, finished_at: float | None) -> HedgeReport:
    """Count and price what the job's batches and its realtime units answered (from the store)."""
    units = store.job_results_modes(job_id)
    answered: dict[bool, set[str]] = {True: set(), False: set()}
    cost = {True: 0.0, False: 0.0}
    canceled = 0
    batches_canceled = 0
    billed = (*ANSWERED, STATUS_CODE["invalid_output"])
    for results_id, mode in units:
        realtime = mode == SendMode.REALTIME
        statuses, usage = store.result_usage(results_id)
        keys = store.result_keys(results_id)
        ok = np.isin(statuses, tuple(ANSWERED))
        answered[realtime].update(k for k, good in zip(keys, ok.tolist(), strict=True) if good)
        n_canceled = int((statuses == STATUS_CODE["canceled"]).sum())
        canceled += n_canceled
        batches_canceled += int(bool(n_canceled) and not realtime)
        paid = usage[np.isin(statuses, billed)]
        if len(paid):
            cost[realtime] += float(kind_costs(paid, model, batch=not realtime).sum())
    batches_canceled += len(store.batches(job_id=job_id, states=(UnitState.CANCELING,)))
    return HedgeReport(
        deadline=deadline,
        finished_at=finished_at,
        batches_canceled=batches_canceled,
        rows_canceled=canceled,
        answered_batch=len(answered[False]),
        answered_realtime=len(answered[True]),
        answered_twice=len(answered[True] & answered[False]),
        cost_batch=cost[False],
        cost_realtime=cost[True],
    )


# --------------------------------------------------------------------------- the job's side


class DeadlineHedge:
    """A job's deadline hedge at work: when to fire, firing, and what it did.

    Its worker asks it every round (:meth:`round`) and shortens its waits by it (:meth:`wait`);
    the job's handle reads :attr:`hedged`, :meth:`report` and :meth:`deadline_text` from it.
    ``record`` is the job's stored row, shared with the handle (the hedge moves its mode).
    """

    def __init__(self, spec: Any, record: dict[str, Any], units: Units, reader: ResultReader) -> None:
        self.spec = spec
        self.record = record
        self.units = units
        self.reader = reader
        self.store = units.store
        self.job_id = units.job_id
        self.finished_at: float | None = None  # on the clock, when this process saw the job end
        self._clock: Clock | None = None
        self._report_cache: tuple[tuple[Any, ...], HedgeReport] | None = None

    @property
    def clock(self) -> Clock:
        """Seconds since the epoch on the server's clock, resolved from the job's client when first asked."""
        if self._clock is None:
            self._clock = server_clock(self.units.client)
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock

    def plan(self) -> HedgePlan | None:
        """The job's plan, for a batch job given a ``deadline=``; None otherwise."""
        hedge = self.spec.hedge
        if not hedge:
            return None
        return HedgePlan(
            deadline=float(hedge["deadline_at"]),
            chunk_size=int(self.spec.run.chunk_size),
            realtime_rate=float(hedge["realtime_rate"]),
            settle_seconds=float(hedge.get("settle_seconds", 60.0)),
            safety=float(hedge.get("safety", 1.5)),
            clock_rate=float(hedge.get("clock_rate", 1.0)),
        )

    @property
    def hedged(self) -> bool:
        """Whether the hedge has fired (the job's mode reason says so)."""
        return str(self.record.get("mode_reason") or "").startswith(HEDGE_REASON)

    def report(self) -> HedgeReport | None:
        """What the hedge did (:class:`HedgeReport`), for a job with a deadline; else None."""
        plan = self.plan()
        if plan is None:
            return None
        # Stored results never change: count and price them again only when new ones came in.
        key = (
            tuple(self.store.results_of_job(self.job_id)),
            self.end_time(),
            len(self.store.batches(job_id=self.job_id, states=(UnitState.CANCELING,))),
        )
        cached = self._report_cache
        if cached is None or cached[0] != key:
            report = hedge_report(
                self.store, self.job_id, self.reader.model, deadline=plan.deadline, finished_at=key[1]
            )
            cached = self._report_cache = (key, report)
        return cached[1]

    def answered_twice(self) -> int:
        """Rows the hedge had answered both by batch and by realtime."""
        if not self.hedged:
            return 0
        report = self.report()
        return 0 if report is None else report.answered_twice

    def end_time(self) -> float | None:
        """When the job ended, on the server's clock: as this process saw it, else its last unit's end."""
        if self.units.status() == JobState.RUNNING:
            return None
        if self.finished_at is not None:
            return self.finished_at
        ended = [b["ended_at"] for b in self.store.batches(job_id=self.job_id) if b["ended_at"]]
        if not ended:
            return None
        return max(dt.datetime.fromisoformat(str(e).replace("Z", "+00:00")).timestamp() for e in ended)

    def mark_finished(self) -> None:
        """The worker saw the job end: remember when, on the clock."""
        if self.plan() is not None:
            self.finished_at = self.clock()

    def _rows_in_batches(self) -> int:
        return sum(
            int(b["n_requests"])
            for b in self.store.batches(job_id=self.job_id, states=_AWAITING)
            if b["mode"] == SendMode.BATCH
        )

    def deadline_text(self) -> str:
        """The progress view's deadline line: when it is, when the hedge will fire, or what it did."""
        plan = self.plan()
        if plan is None:
            return ""
        at = dt.datetime.fromtimestamp(plan.deadline, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.hedged or self.units.status() != JobState.RUNNING:
            return f"{at} — {str(self.report()).removeprefix('deadline hedge: ')}"
        waiting = self._rows_in_batches()
        now = self.clock()
        head = f"{at} (in {plan.deadline - now:,.0f} s)"
        if not waiting:
            return head
        cancel_at = plan.cancel_at(waiting)
        when = dt.datetime.fromtimestamp(cancel_at, dt.UTC)
        return (
            f"{head}; if the {waiting:,} rows still in batches wait until {when:%H:%M:%S} "
            f"(in {max(0.0, cancel_at - now):,.0f} s), those batches are canceled and the rows they did not "
            f"answer go through realtime"
        )

    def round(self) -> None:
        """A job with a deadline: fire the hedge when :meth:`HedgePlan.should_cancel` says so, then
        cancel its batches still running, and send what they did not answer as a realtime unit.

        Before the cancel has settled only rows that came back ``canceled`` (or were never sent) go;
        when the deadline is too close to wait longer (:meth:`HedgePlan.stop_waiting_at`), the rows
        of batches still canceling go too (some may be answered twice: counted in :attr:`hedge`).
        """
        plan = self.plan()
        if plan is None:
            return
        units = [b for b in self.store.batches(job_id=self.job_id, states=_AWAITING) if b["mode"] == SendMode.BATCH]
        if not self.hedged and not self._fire(plan, sum(int(b["n_requests"]) for b in units)):
            return
        for unit in units:
            if unit["state"] == UnitState.SUBMITTING and owns(unit):
                self.store.update_batch(unit["id"], state=UnitState.ABANDONED, error=f"not created: {HEDGE_REASON}")
            elif unit["state"] == UnitState.IN_PROGRESS and unit["api_id"]:
                try:
                    self.units.record_unit(unit, self.units.backend_of(SendMode.BATCH).cancel(unit["api_id"]))
                except CallFailed:
                    continue  # a blip, or it ended meanwhile: the next round looks again
        still = [b for b in self.store.batches(job_id=self.job_id, states=_AWAITING) if b["mode"] == SendMode.BATCH]
        give_up = bool(still) and self.clock() >= plan.stop_waiting_at(sum(int(b["n_requests"]) for b in still))
        self._send_realtime(give_up)

    def _fire(self, plan: HedgePlan, waiting: int) -> bool:
        """Whether the hedge fires now; when it does, the job's mode becomes realtime, with why."""
        now = self.clock()
        if not plan.should_cancel(now, waiting):
            return False
        reason = (
            f"{HEDGE_REASON}: {waiting:,} rows still in batches "
            f"{plan.deadline - now:,.0f} s before the deadline; those batches were canceled and "
            f"what they did not answer goes through realtime (standard price)"
        )
        with self.store.transaction() as tx:
            tx.set_job_mode(self.job_id, SendMode.REALTIME, reason)
        self.record.update(mode=SendMode.REALTIME, mode_reason=reason)
        return True

    def _send_realtime(self, give_up: bool) -> None:
        """Plan the rows with no answer (or canceled) as realtime units; ``give_up``: the rows of
        batches still canceling go too."""
        keys, _ = self.reader.layout()
        view = self.reader.view()
        chosen = np.flatnonzero((view.codes == 0) | (view.codes == STATUS_CODE["canceled"]))
        if not len(chosen):
            return
        with self.store.transaction() as tx:
            in_flight = tx.in_flight_keys()
            if give_up:  # only what realtime already carries: the canceling batches' rows go too
                in_flight = set()
                for b in self.store.batches(job_id=self.job_id, states=_AWAITING):
                    if b["mode"] != SendMode.BATCH:
                        in_flight.update(self.store.batch_keys(b["id"]))
            by_attempt: dict[int, list[str]] = defaultdict(list)
            for i in chosen:
                if keys[i] not in in_flight:
                    by_attempt[int(view.attempts[i]) + 1].append(keys[i])
            for attempt, chosen_keys in by_attempt.items():
                self.units.plan_batches(tx, chosen_keys, attempt, mode=SendMode.REALTIME)
        self.units.signals.wake.set()  # create the realtime unit now, not after a batch poll interval

    def wait(self, wait: float) -> float:
        """``wait`` (wall seconds) shortened so the worker looks again by the time the hedge must
        fire. The plan's moments are on the server's clock: the time until one is converted to wall
        seconds at the clock's rate (a simulator's clock may run 120× faster)."""
        plan = self.plan()
        if plan is None:
            return wait
        waiting = self._rows_in_batches()
        if not waiting:
            return wait
        if self.hedged:  # a cancel is settling: look often, and by the last moment to wait for it
            return min(
                wait,
                plan.wall_seconds(CANCEL_POLL),
                max(0.05, plan.wall_seconds(plan.stop_waiting_at(waiting) - self.clock())),
            )
        return min(wait, max(0.05, plan.wall_seconds(plan.cancel_at(waiting) - self.clock())))
