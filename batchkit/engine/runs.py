"""Partitioned runs: an input larger than memory, one job per partition, in bounded memory.

A front end (Polars' streaming engine, Dask, a chunked Parquet reader) hands
:func:`run_partitions` its partitions as prepared calls (:func:`batchkit.engine.calls.prepare` on each
partition's columns), lazily. Each partition becomes an ordinary :class:`~batchkit.Job` —
fingerprint, dedup against the store, crash recovery, retries and the queue's refusals all come
from the job engine — and the run only schedules them:

* at most ``max_ahead`` partitions are planned but not yet output (by default enough to keep the
  workspace's processing queue full: ``ceil(queue limit / partition rows) + 1``), so memory is
  bounded by a few partitions, not by the input;
* ``on_output`` receives each partition's answers (:class:`PartOutput`) in partition order as soon
  as it and every partition before it are final; then the partition's job, plan and answers are
  let go;
* the run's jobs look request keys up in the store's on-disk index (:meth:`batchkit.stores.store.Store.lookup`)
  instead of an in-memory index of every key ever stored.

The run is written down (``runs``, ``run_parts``) under an id derived from ``source`` — a stable
identity of the input and the call chosen by the front end — so re-running it (after a crash, or a
second ``collect()`` of a lazy plan) renders the partitions again and finds each one's job by its
fingerprint: a job that ended is read from the store without any API call, one still running is
re-attached. :func:`read_answers` reads answers by key, read-only, for Dask workers and for
anything that recomputes a result.

>>> run = run_partitions(calls, source="tickets.parquet:Summarize {text}", on_output=write)  # doctest: +SKIP
>>> run.summary()                                                                            # doctest: +SKIP
"""

from __future__ import annotations

import collections
import hashlib
import html
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from batchkit._crash import crashpoint
from batchkit.core.results import ANSWERED, CODE_STATUS, STATUS_CODE, Summary
from batchkit.costs.accounting import EstimateRange, JobCost
from batchkit.costs.pricing import CostBreakdown
from batchkit.errors import (
    InvalidOptionError,
    OptionTypeError,
    RunNotFoundError,
    StoreNotFoundError,
    UnknownModelError,
)
from batchkit.stores.store import ACTIVE_STATES, Store, default_store_path, unpack

if TYPE_CHECKING:
    from .calls import Call
    from .jobs import Job

__all__ = ["PartAnswers", "PartOutput", "Run", "read_answers", "run_partitions"]

DEFAULT_QUEUE_LIMIT = 500_000
"""Requests a workspace's batch processing queue is assumed to hold when nothing says otherwise."""

CREATE_POLL = 0.02
"""Seconds between looks at whether a partition's batches are created."""

_SUCCEEDED = STATUS_CODE["succeeded"]
_ANSWERED_CODES = tuple(sorted(ANSWERED))
# Status of each code as an array, so a partition's statuses are one fancy index, not a loop.
_STATUS_OF = np.full(256, "pending", dtype=object)
for _code, _status in CODE_STATUS.items():
    _STATUS_OF[_code] = _status


@dataclass(frozen=True)
class PartAnswers:
    """Answers looked up by request key (:func:`read_answers`), one entry per row."""

    answers: list[str | None]
    """The usable answer text (None: no usable answer)."""
    statuses: list[str]
    """``succeeded``/``truncated``/``errored``/``expired``/``canceled``/``skipped``/``invalid_output``,
    or ``pending`` for a request with no result stored yet."""


@dataclass(frozen=True)
class PartOutput:
    """One partition's outcome, handed to ``on_output`` in partition order."""

    part: int
    """0-based, input order."""
    job_id: str
    """The partition's job."""
    n_rows: int
    answers: list[str | None]
    """Per row: the usable answer text (None: no usable answer)."""
    statuses: list[str]
    """Per row: succeeded/truncated/errored/expired/canceled/skipped/invalid_output."""


def run_id_of(source: str) -> str:
    """The run id of a ``source`` (the same source always names the same run)."""
    return "run_" + hashlib.blake2b(source.encode(), digest_size=10).hexdigest()


# --------------------------------------------------------------------------- reading answers by key


def _values(store: Store, row_keys: Sequence[str | None], *, structured: bool, canceled: bool = False) -> PartAnswers:
    """Per-row answers and statuses of ``row_keys`` from the store's on-disk index."""
    positions_of_rows, uniques = pd.factorize(np.array(row_keys, dtype=object))  # None → -1
    row_pos = positions_of_rows.astype(np.int64, copy=False)
    keys: list[str] = uniques.tolist()
    if "" in keys:  # an empty key is a skipped row too
        row_pos[row_pos == keys.index("")] = -1
    codes, positions, results_ids, _ = unpack(store.lookup(keys))
    return _per_row(store, row_pos, codes, positions, results_ids, structured=structured, canceled=canceled)


def _per_row(
    store: Store,
    row_pos: np.ndarray,
    codes: np.ndarray,
    positions: np.ndarray,
    results_ids: np.ndarray,
    *,
    structured: bool,
    canceled: bool,
) -> PartAnswers:
    """Per-row answers and statuses from the outcomes of the distinct keys (-1 in ``row_pos``: skipped)."""
    usable = np.isin(codes, (_SUCCEEDED,) if structured else _ANSWERED_CODES)
    answers = np.full(len(codes) + 1, None, dtype=object)  # the last: skipped rows (-1)
    for results_id in np.unique(results_ids[usable]):
        rows = np.flatnonzero(usable & (results_ids == results_id))
        cols = store.columns(int(results_id))
        values = np.empty(len(cols), dtype=object)
        values[:] = cols.answers
        answers[rows] = values[positions[rows]]
    statuses = np.append(_STATUS_OF[codes], "skipped")
    if canceled:
        statuses[:-1][codes == 0] = "canceled"
    return PartAnswers(answers[row_pos].tolist(), statuses[row_pos].tolist())


_READERS: dict[str, Store] = {}
_READERS_LOCK = threading.Lock()


def _reader(store: Store | str | os.PathLike[str]) -> Store:
    """The store to read answers from: the given one, this process's open one for the path, else one
    opened read-only (kept for the next partition)."""
    if isinstance(store, Store):
        return store
    from batchkit.stores.store import _OPEN, _OPEN_LOCK

    path = Path(store).expanduser()
    if not path.exists():
        raise StoreNotFoundError(
            f"no job store at {path}: read_answers reads a store a run wrote and never creates one. "
            "Pass the store= the run used (run.store.path).",
            path=path,
        )
    key = str(path.resolve())
    with _OPEN_LOCK:
        found = _OPEN.get(key)
    if found is not None:
        return found
    with _READERS_LOCK:
        found = _READERS.get(key)
        if found is None:
            found = _READERS[key] = Store(path, create=False, readonly=True)
        return found


def read_answers(
    store: Store | str | os.PathLike[str], row_keys: Sequence[str | None], *, structured: bool
) -> PartAnswers:
    """Each row's answer and status, looked up by its request key: no API call, bounded memory.

    Opens the store read-only (never creates it); what Dask workers and any recomputed result read.

    Args:
        store: the run's store (a :class:`~batchkit.stores.store.Store` or its path).
        row_keys: each row's request key (None for a row that was skipped).
        structured: the call was ``classify``/``extract``: only ``succeeded`` answers are usable
            (an answer that failed the schema is ``invalid_output``).

    Raises:
        StoreNotFoundError: no store at that path.

    >>> read_answers(run.store.path, keys, structured=False).answers[:2]   # doctest: +SKIP
    ['positive', None]
    """
    return _values(_reader(store), row_keys, structured=structured)


# --------------------------------------------------------------------------- the run


@dataclass
class _Progress:
    """What the driver knows as it goes (in this process): the progress view reads it."""

    pulled: int = 0
    output: int = 0
    total: int | None = None
    rows: int = 0
    rows_done: int = 0
    rows_answered: int = 0
    in_flight: list[Job] = field(default_factory=list)


class Run:
    """A partitioned run: its partitions' jobs, written down in the store under :attr:`run_id`.

    Returned by :func:`run_partitions`; :meth:`load` re-attaches to one by id (e.g. from another
    process, to look at its summary or cost).
    """

    def __init__(self, run_id: str, store: Store) -> None:
        self.run_id = run_id
        self.store = store
        self._progress = _Progress()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._done.set()  # a loaded run is driven by no one here
        self._stop = threading.Event()
        self._summaries: dict[str, Summary] = {}
        self._costs: dict[str, JobCost] = {}
        self._view: _RunView | None = None

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
        return str(record["status"]) if record else "running"

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
        if job.status != "running":  # final: never read again
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
                if job.status != "running":
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
            while not self._done.wait(0.1):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"run {self.run_id} is still running after {timeout} s; it keeps going — call .wait() again"
                    )
        except KeyboardInterrupt:
            self._detach()
            raise
        if self._view is not None:
            self._view.finish()  # the run's final line, now
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self

    def _detach(self) -> None:
        self._stop.set()
        self.store.end_run(self.run_id, "detached")
        print(
            f"\nbatchkit: detached from run {self.run_id}. No further partition is planned; the "
            f"{len(self._progress.in_flight)} partition job(s) already planned keep running and nothing was canceled. "
            "Re-run the same call to pick up where it is (answered partitions are read from the store).",
            file=sys.stderr,
        )

    # ------------------------------------------------------------------ display

    def progress_text(self) -> str:
        """One line: while it runs, partitions done / in flight / waiting (when the input's size is
        known) and rows answered; once it has ended, its partitions, rows by status and cost."""
        p = self._progress
        status = self.status
        if status != "running" and self._done.is_set():
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
        return _progress_html(self)


def _answered_rows(job: Job) -> int:
    summary = job.summary()
    return sum(n for s, n in summary.by_status.items() if s in ("succeeded", "truncated"))


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
    from .calls import Call

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
    total = len(calls) if isinstance(calls, Sequence) else None
    it = iter(calls)
    first = next(it, None)
    if first is not None and not isinstance(first, Call):
        raise _not_a_call(first, 0)
    if first is None:  # no partition at all: an empty run in the default store
        store = Store.resolve(default_store_path())
    else:
        opts = first.options.run
        store = Store.resolve(opts.store if opts.store is not None else default_store_path(opts.client))
    store.index_on_disk = True  # before anything is looked up: no in-memory index of every key
    run = Run(run_id_of(source), store)
    run._progress.total = total
    if max_ahead is None:
        max_ahead = _default_ahead(first)
    store.open_run(run.run_id, source)
    driver = _Driver(run, first, it, on_output, max_ahead)
    run._done.clear()
    show = progress if progress is not None else (wait and first is not None and bool(first.options.run.progress))
    view = run._view = _display(run) if show else None
    try:
        if wait:
            try:
                driver.drive()
            except KeyboardInterrupt:
                run._detach()
                raise
            finally:
                run._done.set()
            if run._error is not None:
                error, run._error = run._error, None
                raise error
            return run
        run._thread = threading.Thread(target=driver.drive, name=f"batchkit-{run.run_id}", daemon=True)
        run._thread.start()
        return run
    finally:
        if view is not None and wait:
            view.finish()


def _not_a_call(value: Any, part: int) -> OptionTypeError:
    return OptionTypeError(
        f"partition {part} is a {type(value).__name__}, not a prepared call: give run_partitions "
        "batchkit.engine.calls.prepare(partition, prompt, output=...) for each partition",
        option="calls",
    )


def _default_ahead(first: Call | None) -> int:
    """Partitions to plan ahead so the processing queue stays full: ceil(queue limit / rows) + 1."""
    if first is None:
        return 1
    limit = getattr(first.options.run, "queue_limit", None) or DEFAULT_QUEUE_LIMIT
    rows = max(1, len(first.plan.lines))
    return math.ceil(int(limit) / rows) + 1


class _Driver:
    """Pulls partitions, submits each as a job, and outputs them in order."""

    def __init__(
        self,
        run: Run,
        first: Call | None,
        rest: Iterator[Any],
        on_output: Callable[[PartOutput], None] | None,
        max_ahead: int,
    ) -> None:
        self.run = run
        self.first = first
        self.rest = rest
        self.on_output = on_output
        self.max_ahead = max_ahead
        self.ahead: collections.deque[tuple[int, Job, int]] = collections.deque()

    def drive(self) -> None:
        run, p = self.run, self.run._progress
        try:
            self._drive()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            run._error = exc
            run.store.end_run(run.run_id, "failed")
        else:
            if run._stop.is_set():
                return
            run.store.end_run(run.run_id, "ended", n_parts=p.pulled)
        finally:
            if self.run._thread is not None:
                run._done.set()
                if run._view is not None:
                    run._view.wake()  # its final line, without waiting for the next refresh

    def _drive(self) -> None:
        from .calls import Call, submit

        run, p = self.run, self.run._progress
        pending: Call | None = self.first
        self.first = None
        while not run._stop.is_set():
            while len(self.ahead) >= self.max_ahead:
                self._output_head()
            if pending is None:
                nxt = next(self.rest, None)
                if nxt is None:
                    break
                if not isinstance(nxt, Call):
                    raise _not_a_call(nxt, p.pulled)
                pending = nxt
            call, pending = pending, None
            self._check_store(call)
            n_rows = len(call.plan.row_keys)
            job = submit(call)
            del call  # the job holds the plan's lines until its batches are created; nothing else
            self._wait_created(job)
            if not any(b["mode"] != "batch" for b in run.store.batches(job_id=job.job_id, states=ACTIVE_STATES)):
                # Created: a retry reads its requests back from the store, so the partition's
                # rendered requests and frame are let go now, not when its answers are in.
                job._lines = {}
                job.frame = None
            run.store.add_run_part(run.run_id, p.pulled, job.job_id, n_rows)
            self.ahead.append((p.pulled, job, n_rows))
            p.in_flight.append(job)
            p.pulled += 1
            p.rows += n_rows
            while self.ahead and self.ahead[0][1].done:
                self._output_head()
        while self.ahead and not run._stop.is_set():
            self._output_head()

    def _wait_created(self, job: Job) -> None:
        """Wait until the job's batches are created (or it stops) before planning the next partition.

        A process killed between a create and recording it leaves a batch that the next run adopts
        by its size and creation time; with equal partitions two such batches would be ambiguous,
        and an ambiguous one is created again. Creating one partition's batches at a time leaves at
        most one unrecorded, so recovery adopts it.
        """
        store = job.store
        while not self.run._stop.is_set() and job._running:
            waiting = [b for b in store.batches(job_id=job.job_id, states=("submitting",)) if b["mode"] == "batch"]
            if not waiting or any(b["attempt"] == 0 for b in store.batches(job_id=job.job_id, states=ACTIVE_STATES)):
                return  # created (or held back by a cache-priming batch, which is created first)
            job._done.wait(CREATE_POLL)

    def _check_store(self, call: Call) -> None:
        opts = call.options.run
        store = Store.resolve(opts.store if opts.store is not None else default_store_path(opts.client))
        if store is not self.run.store:
            raise InvalidOptionError(
                f"partition {self.run._progress.pulled} goes to the store at {store.path}, the run's first to "
                f"{self.run.store.path}: give every partition the same store= (and client=)",
                option="store",
            )

    def _output_head(self) -> None:
        part, job, n_rows = self.ahead[0]
        job.wait()
        _, row_pos = job._layout()
        view = job._view()  # current: the job's own view, no lookup again
        values = _per_row(
            job.store,
            row_pos,
            view.codes,
            view.positions,
            view.results_ids,
            structured=job.output_spec is not None,
            canceled=job.status == "canceled",
        )
        job.store.release(np.unique(view.results_ids[view.codes != 0]).tolist(), job._layout()[0])
        del view
        out = PartOutput(part, job.job_id, n_rows, values.answers, values.statuses)
        del values
        p = self.run._progress
        p.rows_answered += sum(1 for s in out.statuses if s in ("succeeded", "truncated"))
        p.rows_done += n_rows
        if self.on_output is not None:
            self.on_output(out)
        crashpoint("run_part_output")  # a client killed mid-run: the re-run finds every partition's job
        self.ahead.popleft()
        p.output += 1
        p.in_flight.remove(job)
        job._lines.clear()  # the job is let go: nothing of it is kept beyond what the store has
        del job, out
        _release_freed()


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere: macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _release_freed() -> None:
    """Give the pages a partition freed back to the OS, once it is output.

    A partition's requests and answers are allocated by several threads (the engine's, the
    driver's, each job's), so glibc spreads them over several malloc arenas; freed, they stay
    mapped, scattered among the arenas. ``malloc_trim`` returns whole free pages of every arena
    (a few ms per partition): Polars lazy's peak at 1,000,000 rows went from 1,252 to 1,005 MB.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


# --------------------------------------------------------------------------- progress views


def _progress_html(run: Run) -> str:
    p = run._progress
    share = p.rows_done / p.rows if p.rows else 0.0
    return (
        f'<div class="batchkit-run" data-run="{html.escape(run.run_id)}" style="font-size:13px">'
        f'<div style="background:#e8e8e8;width:100%;height:10px"><div style="background:#2ca02c;height:10px;'
        f'width:{share:.1%}"></div></div><div>{html.escape(run.progress_text())}</div></div>'
    )


class _RunView:
    """Text lines on stderr (or a widget in a notebook) refreshed by a daemon thread."""

    def __init__(self, run: Run, *, widget: Any = None, file: IO[str] | None = None, interval: float = 2.0) -> None:
        from batchkit.display.views import _Poller

        self.run = run
        self.widget = widget
        self.file = file
        self._last = ""
        self._poller = _Poller(self._tick, interval, f"batchkit-view-{run.run_id}")
        self._poller.start()

    def _tick(self) -> bool:
        done = self.run._done.is_set()
        if self.widget is not None:
            self.widget.value = _progress_html(self.run)
            return done
        text = self.run.progress_text()
        if text != self._last or done:
            self._last = text
            print("batchkit: " + text, file=self.file if self.file is not None else sys.stderr, flush=True)
        return done

    def wake(self) -> None:
        self._poller.wake()

    def finish(self, timeout: float = 2.0) -> None:
        self._poller.wake()
        self._poller.join(timeout)


def _display(run: Run) -> _RunView:
    from batchkit.display.views import _import_widgets, _in_kernel

    if _in_kernel():
        try:
            widgets = _import_widgets()
        except ImportError:
            pass
        else:
            from IPython.display import display

            widget = widgets.HTML(_progress_html(run))
            display(widget)
            return _RunView(run, widget=widget, interval=0.5)
    return _RunView(run)
