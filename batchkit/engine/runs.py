"""Partitioned runs: an input larger than memory, one job per partition, in bounded memory.

A front end (Polars' streaming engine, Dask, a chunked Parquet reader) hands
:func:`run_partitions` its partitions as prepared calls (:func:`batchkit.engine.calls.prepare` on each
partition's columns), lazily. Each partition becomes an ordinary :class:`~batchkit.Job` —
fingerprint, dedup against the store, crash recovery, retries and the queue's refusals all come
from the job engine — and the run only schedules them:

* at most ``max_ahead`` partitions are planned but not yet output (by default enough to keep the
  workspace's processing queue full: ``ceil(queue limit / partition rows) + 1``), so memory is
  bounded by a few partitions, not by the input;
* ``on_output`` receives each partition's answers (:class:`~.answers.PartOutput`) in partition order as soon
  as it and every partition before it are final; then the partition's job, plan and answers are
  let go;
* the run's jobs look request keys up by :meth:`batchkit.stores.store.Store.lookup`, not in an
  in-memory index of every key ever stored: a compact summary of the stored keys (8 bytes a key)
  rules out a partition's new keys at once, and only possible hits are looked up in the store's
  on-disk index, which is filled when such a lookup needs it (or once at the end of a run whose
  answers are read back by key) — never a write per result while the run goes.

The run is written down (``runs``, ``run_parts``) under an id derived from ``source`` — a stable
identity of the input and the call chosen by the front end — so re-running it (after a crash, or a
second ``collect()`` of a lazy plan) renders the partitions again and finds each one's job by its
fingerprint: a job that ended is read from the store without any API call, one still running is
re-attached. :func:`~batchkit.engine.answers.read_answers` reads answers by key, read-only, for Dask workers and for
anything that recomputes a result.

The pieces: :mod:`.answers` reads a partition's answers by key; :mod:`.driver` pulls, submits and
outputs the partitions; :mod:`.pipeline` hands a lazy engine's partitions through a run and their
answers back in order (Polars); :mod:`batchkit.display.runs` shows the run's progress (through
:mod:`.shown`). This module is the :class:`Run` handle and :func:`run_partitions`.

>>> run = run_partitions(calls, source="tickets.parquet:Summarize {text}", on_output=write)  # doctest: +SKIP
>>> run.summary()                                                                            # doctest: +SKIP
"""

from __future__ import annotations

import collections
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from batchkit.core.results import Summary
from batchkit.core.states import JobState, RowStatus, RunState
from batchkit.costs.accounting import EstimateRange, JobCost
from batchkit.costs.pricing import CostBreakdown
from batchkit.errors import OptionTypeError, RunNotFoundError, UnknownModelError
from batchkit.stores.store import Store

from . import shown
from .answers import PartOutput
from .driver import Driver, RunControl, default_ahead, not_a_call
from .locations import default_store_path

if TYPE_CHECKING:
    from .jobs import Job
    from .prepared import Call

__all__ = ["Run", "run_partitions"]


def run_id_of(source: str) -> str:
    """The run id of a ``source`` (the same source always names the same run)."""
    return "run_" + hashlib.blake2b(source.encode(), digest_size=10).hexdigest()


# --------------------------------------------------------------------------- the run


class Run:
    """A partitioned run: its partitions' jobs, written down in the store under :attr:`run_id`.

    Returned by :func:`run_partitions`; :meth:`load` re-attaches to one by id (e.g. from another
    process, to look at its summary or cost).
    """

    def __init__(self, run_id: str, store: Store) -> None:
        self.run_id = run_id
        self.store = store
        self.control = RunControl()
        """How the run is driven in this process (engine-internal: the driver, the view and front ends)."""
        self._summaries: dict[str, Summary] = {}
        self._costs: dict[str, JobCost] = {}

    @classmethod
    def load(cls, run_id: str, *, store: Store | str | os.PathLike[str] | None = None) -> Run:
        """Re-attach to a run by id (read side: status, parts, summary, cost).

        Raises:
            RunNotFoundError: no such run in that store.
        """
        resolved = Store.resolve(store, create=False)
        if resolved.load_run(run_id) is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in the store at {resolved.path}; re-run the partitioned call, or pass the "
                "store= it ran with",
                run_id=run_id,
            )
        return cls(run_id, resolved)

    @property
    def status(self) -> str:
        """``running`` while partitions are planned or waited for, then ``ended``; ``failed`` when a
        partition's job was refused or the input raised; ``detached`` after a KeyboardInterrupt."""
        record = self.store.load_run(self.run_id)
        return str(record["status"]) if record else RunState.RUNNING

    @property
    def rows_planned(self) -> int:
        """Rows of the partitions planned so far in this process (what the progress view reads)."""
        return self.control.progress.rows

    @property
    def rows_done(self) -> int:
        """Rows of those partitions already output."""
        return self.control.progress.rows_done

    @property
    def finished(self) -> bool:
        """The run's driver has stopped (or no one drives the run in this process)."""
        return self.control.done.is_set()

    @property
    def parts(self) -> list[str]:
        """The job ids of the partitions so far, in partition order."""
        return self.store.run_parts(self.run_id)

    def summary(self) -> Summary:
        """Rows by status over every partition (read from the store, one partition at a time)."""
        rows, by_status, by_error = 0, collections.Counter[str](), collections.Counter[str]()
        for job_id in dict.fromkeys(self.parts):
            part = self._part_summary(job_id)
            rows += part.rows
            by_status.update(part.by_status)
            by_error.update(part.by_error)
        # A job shared by two partitions (the same rows twice) counts once per partition.
        for job_id, n in collections.Counter(self.parts).items():
            if n > 1:
                extra = self._part_summary(job_id)
                rows += extra.rows * (n - 1)
                for s, k in extra.by_status.items():
                    by_status[s] += k * (n - 1)
                for s, k in extra.by_error.items():
                    by_error[s] += k * (n - 1)
        return Summary(rows, dict(by_status), dict(by_error.most_common()))

    def _part_summary(self, job_id: str) -> Summary:
        cached = self._summaries.get(job_id)
        if cached is not None:
            return cached
        job = self._job(job_id)
        summary = job.summary()
        if job.status != JobState.RUNNING:  # final: never read again
            self._summaries[job_id] = summary
        return summary

    def _job(self, job_id: str) -> Job:
        from .jobs import Job

        self.store.index_on_disk = True  # a run's jobs never build the in-memory index
        return Job.load(job_id, store=self.store)

    @property
    def cost(self) -> JobCost:
        """What the run's partitions were billed, summed over their jobs (each job counted once)."""
        costs = []
        for job_id in dict.fromkeys(self.parts):
            cost = self._costs.get(job_id)
            if cost is None:
                job = self._job(job_id)
                cost = job.cost
                if job.status != JobState.RUNNING:
                    self._costs[job_id] = cost
            costs.append(cost)
        return _sum_costs(costs)

    def wait(self, timeout: float | None = None) -> Run:
        """Block until every partition is output (a run driven in the background, ``wait=False``).

        A KeyboardInterrupt detaches: no further partition is planned, and the jobs already planned
        keep running; re-running the same call picks up where it is.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the run keeps going).
            APIRefusedError: a partition's job was refused.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.control.done.wait(0.1):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"run {self.run_id} is still running after {timeout} s; it keeps going — call .wait() again"
                    )
        except KeyboardInterrupt:
            detach(self)
            raise
        if self.control.view is not None:
            self.control.view.finish()  # the run's final line, now
        error = self.control.take_error()
        if error is not None:
            raise error
        return self

    # ------------------------------------------------------------------ display

    def progress_text(self) -> str:
        """One line: while it runs, partitions done / in flight / waiting (when the input's size is
        known) and rows answered; once it has ended, its partitions, rows by status and cost."""
        p = self.control.progress
        status = self.status
        if status != JobState.RUNNING and self.control.done.is_set():
            return self._final_text(status)
        if p.pulled == 0:
            return f"run {self.run_id}: starting — reading the first partition"
        waiting = "" if p.total is None else f", {max(0, p.total - p.pulled):,} waiting"
        answered = p.rows_answered + sum(_answered_rows(job) for job in list(p.in_flight))
        return (
            f"run {self.run_id}: partitions {p.output:,} done, {len(p.in_flight):,} in flight{waiting}"
            f" — {answered:,} of {p.rows:,} rows planned answered"
        )

    def _final_text(self, status: str) -> str:
        """The line of a run that has ended: ``run … ended: 3 partitions, 1,000 rows (…); $0.0123``."""
        summary = self.summary()
        rows = ", ".join(f"{n:,} {s}" for s, n in summary.by_status.items() if n) or "none"
        try:
            cost = f"${self.cost.total:,.4f}"
        except UnknownModelError:
            cost = "cost unknown (a model without a price)"
        parts = len(self.parts)
        return (
            f"run {self.run_id} {status}: {parts:,} partition{'s' * (parts != 1)}, {summary.rows:,} rows "
            f"({rows}); {cost}"
        )

    def __repr__(self) -> str:
        text, status = self.progress_text().removeprefix("run "), self.status
        return f"<batchkit.Run {text}" + ("" if f" {status}:" in text else f" [{status}]") + ">"

    def _repr_html_(self) -> str:
        html = shown.view("run_html")
        return str(html(self)) if html else f"<code>{escape(repr(self))}</code>"


def detach(run: Run) -> None:
    """Plan no further partition of ``run``; what was planned keeps running (a KeyboardInterrupt)."""
    run.control.stop.set()
    run.store.end_run(run.run_id, RunState.DETACHED)
    print(
        f"\nbatchkit: detached from run {run.run_id}. No further partition is planned; the "
        f"{len(run.control.progress.in_flight)} partition job(s) already planned keep running and nothing was "
        "canceled. Re-run the same call to pick up where it is (answered partitions are read from the store).",
        file=sys.stderr,
    )


_ANSWERED = (RowStatus.SUCCEEDED, RowStatus.TRUNCATED)


def _answered_rows(job: Job) -> int:
    summary = job.summary()
    return sum(n for s, n in summary.by_status.items() if s in _ANSWERED)


def _sum_costs(costs: Sequence[JobCost]) -> JobCost:
    """One :class:`JobCost` for several jobs (estimates add up when every job has one, in one mode)."""
    if not costs:
        return JobCost("", CostBreakdown(), 0, 0, 0.0)
    paid = CostBreakdown()
    by_mode: dict[str, tuple[float, int]] = {}
    for c in costs:
        paid = paid + c.paid
        for mode, (dollars, n) in c.by_mode.items():
            d0, n0 = by_mode.get(mode, (0.0, 0))
            by_mode[mode] = (d0 + dollars, n0 + n)
    estimates = [c.estimate for c in costs]
    estimate = None
    if all(e is not None for e in estimates) and len({e.mode for e in estimates if e}) == 1:
        known = [e for e in estimates if e is not None]
        estimate = EstimateRange(
            known[0].mode,
            sum(e.low for e in known),
            sum(e.typical for e in known),
            sum(e.high for e in known),
            sum(e.upper_bound for e in known),
            known[0].token_source,
        )
    return JobCost(
        costs[0].model,
        paid,
        sum(c.requests_paid for c in costs),
        sum(c.requests_reused for c in costs),
        sum(c.standard for c in costs),
        estimate,
        by_mode={m: by_mode[m] for m in sorted(by_mode)},
        answered_twice=sum(c.answered_twice for c in costs),
    )


# --------------------------------------------------------------------------- running


def run_partitions(
    calls: Iterable[Call],
    *,
    source: str,
    on_output: Callable[[PartOutput], None] | None = None,
    wait: bool = True,
    max_ahead: int | None = None,
    progress: bool | None = None,
) -> Run:
    """Run prepared partitions as one job each, in bounded memory; see the module's docstring.

    Args:
        calls: the partitions, prepared (:func:`batchkit.engine.calls.prepare`), pulled lazily.
        source: a stable identity of the input and the call (same source → same run id).
        on_output: called with each partition's :class:`PartOutput`, in partition order, as soon as
            it and all before it are final (from the thread that drives the run).
        wait: drive the run in this thread until every partition is output (False: in a background
            thread; :meth:`Run.wait` joins it).
        max_ahead: partitions planned but not yet output, at most (default: enough to keep the
            processing queue full, ``ceil(queue limit / rows of the first partition) + 1``; the queue
            limit is the call's ``queue_limit`` option if it has one, else 500,000 requests).
        progress: show progress (text lines on stderr, a widget in a notebook); default: the first
            call's ``progress`` option when ``wait``.

    Raises:
        OptionTypeError: ``source`` is not a non-empty string, ``max_ahead`` not a positive int,
            ``on_output`` not callable, or a partition is not a prepared call — all before any call.
        APIRefusedError: a partition's job was refused (what was sent keeps running).
    """
    from .prepared import Call

    _check_arguments(calls, source, max_ahead, on_output)
    total = len(calls) if isinstance(calls, Sequence) else None
    it = iter(calls)
    first = next(it, None)
    if first is not None and not isinstance(first, Call):
        raise not_a_call(first, 0)
    if first is None:  # no partition at all: an empty run in the default store
        store = Store.resolve(default_store_path())
    else:
        opts = first.options.run
        store = Store.resolve(opts.store if opts.store is not None else default_store_path(opts.client))
    store.index_on_disk = True  # before anything is looked up: no in-memory index of every key
    run = Run(run_id_of(source), store)
    control = run.control
    control.progress.total = total
    if max_ahead is None:
        max_ahead = default_ahead(first)
    store.open_run(run.run_id, source)
    driver = Driver(run, first, it, on_output, max_ahead)
    control.done.clear()
    show = progress if progress is not None else (wait and first is not None and bool(first.options.run.progress))
    show_run = shown.view("show_run") if show else None
    if show_run is not None:
        control.view = show_run(run)
    view = control.view
    try:
        if wait:
            try:
                driver.drive()
            except KeyboardInterrupt:
                detach(run)
                raise
            finally:
                control.done.set()
            error = control.take_error()
            if error is not None:
                raise error
            return run
        control.thread = threading.Thread(target=driver.drive, name=f"batchkit-{run.run_id}", daemon=True)
        control.thread.start()
        return run
    finally:
        if view is not None and wait:
            view.finish()


def _check_arguments(
    calls: Iterable[Call], source: str, max_ahead: int | None, on_output: Callable[[PartOutput], None] | None
) -> None:
    """Every argument of :func:`run_partitions` but the partitions themselves, before anything runs."""
    if not isinstance(source, str) or not source:
        raise OptionTypeError(
            f"source must be a non-empty string naming the input and the call (e.g. the dataset's path and the "
            f"prompt), not {source!r}: it is what finds this run again",
            option="source",
        )
    if max_ahead is not None and (isinstance(max_ahead, bool) or not isinstance(max_ahead, int) or max_ahead < 1):
        raise OptionTypeError(
            f"max_ahead must be a positive int (partitions planned ahead), not {max_ahead!r}", option="max_ahead"
        )
    if on_output is not None and not callable(on_output):
        raise OptionTypeError(
            f"on_output must be a function taking a PartOutput, not {type(on_output).__name__}", option="on_output"
        )
    if isinstance(calls, (str, bytes)) or not isinstance(calls, Iterable):
        raise OptionTypeError(
            f"calls must be an iterable of prepared calls (batchkit.engine.calls.prepare(...) per partition), not "
            f"{type(calls).__name__}",
            option="calls",
        )
