"""A partitioned run's driver: pull the partitions, submit each as a job, output them in order.

The driver runs on one thread (the caller's, or the run's background thread) and is the only one
that submits: it pulls the next prepared partition only while fewer than ``max_ahead`` are planned
but not yet output, waits for each partition's batches to be created before planning the next
(so crash recovery never sees two unrecorded batches of equal size), and hands each partition's
answers to ``on_output`` in partition order as soon as it and all before it are final. Then the
partition's job, plan and answers are let go, and the pages they used go back to the OS.
"""

from __future__ import annotations

import collections
import math
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from batchkit._crash import crashpoint
from batchkit.core.results import STATUS_CODE
from batchkit.core.states import AWAITING_RESULTS, JobState, RowStatus, RunState, SendMode, UnitState
from batchkit.errors import InvalidOptionError, OptionTypeError
from batchkit.stores.store import Store

from .answers import PartOutput, per_row
from .locations import default_store_path

if TYPE_CHECKING:
    from .jobs import Job
    from .prepared import Call

__all__ = [
    "CREATE_POLL",
    "DEFAULT_QUEUE_LIMIT",
    "DrivenRun",
    "Driver",
    "RunControl",
    "RunProgress",
    "RunView",
    "default_ahead",
    "not_a_call",
]

DEFAULT_QUEUE_LIMIT = 500_000
"""Requests a workspace's batch processing queue is assumed to hold when nothing says otherwise."""

CREATE_POLL = 0.02
"""Seconds between looks at whether a partition's batches are created."""

_AWAITING = tuple(sorted(AWAITING_RESULTS))

_ANSWERED_CODES = (STATUS_CODE[RowStatus.SUCCEEDED], STATUS_CODE[RowStatus.TRUNCATED])


@dataclass
class RunProgress:
    """What the driver knows as it goes (in this process): the progress view reads it."""

    pulled: int = 0
    output: int = 0
    total: int | None = None
    rows: int = 0
    rows_done: int = 0
    rows_answered: int = 0
    in_flight: list[Job] = field(default_factory=list)


class RunView(Protocol):
    """What the driver asks of the run's progress view (:mod:`batchkit.display.runs`, through :mod:`.shown`)."""

    def wake(self) -> None: ...

    def finish(self, timeout: float = 2.0) -> None: ...


@dataclass(eq=False)
class RunControl:
    """The run as driven in this process, shared by the :class:`Run`, its driver and its view.

    A run loaded by id is driven by no one here: ``done`` is set and stays set.
    """

    progress: RunProgress = field(default_factory=RunProgress)
    done: threading.Event = field(default_factory=threading.Event)
    """Set while no partition is being driven here (cleared for the time the driver runs)."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to plan no further partition (a detach)."""
    error: BaseException | None = None
    """What stopped the driver, until :meth:`take_error` hands it to the waiting caller."""
    thread: threading.Thread | None = None
    """The background driver's thread (``wait=False``)."""
    view: RunView | None = None

    def __post_init__(self) -> None:
        self.done.set()

    def take_error(self) -> BaseException | None:
        error, self.error = self.error, None
        return error


class DrivenRun(Protocol):
    """What the driver needs of the run it drives (:class:`batchkit.engine.runs.Run`)."""

    run_id: str
    store: Store
    control: RunControl


def not_a_call(value: Any, part: int) -> OptionTypeError:
    return OptionTypeError(
        f"partition {part} is a {type(value).__name__}, not a prepared call: give run_partitions "
        "batchkit.engine.calls.prepare(partition, prompt, output=...) for each partition",
        option="calls",
    )


def default_ahead(first: Call | None) -> int:
    """Partitions to plan ahead so the processing queue stays full: ceil(queue limit / rows) + 1."""
    if first is None:
        return 1
    limit = getattr(first.options.run, "queue_limit", None) or DEFAULT_QUEUE_LIMIT
    rows = max(1, len(first.plan.lines))
    return math.ceil(int(limit) / rows) + 1


class Driver:
    """Pulls partitions, submits each as a job, and outputs them in order."""

    def __init__(
        self,
        run: DrivenRun,
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
        run = self.run
        control, p = run.control, run.control.progress
        try:
            self._drive()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            control.error = exc
            run.store.end_run(run.run_id, RunState.FAILED)
        else:
            if control.stop.is_set():
                return
            if self.on_output is None:
                # Its answers are read back by key (Dask workers, read-only): index them on disk
                # now, in bulk, rather than have each reader scan the results stored since.
                run.store.fill_index()
            run.store.end_run(run.run_id, RunState.ENDED, n_parts=p.pulled)
        finally:
            if control.thread is not None:
                control.done.set()
                if control.view is not None:
                    control.view.wake()  # its final line, without waiting for the next refresh

    def _drive(self) -> None:
        from .prepared import Call
        from .start import submit

        run = self.run
        control, p = run.control, run.control.progress
        pending: Call | None = self.first
        self.first = None
        while not control.stop.is_set():
            while len(self.ahead) >= self.max_ahead:
                self._output_head()
            if pending is None:
                nxt = next(self.rest, None)
                if nxt is None:
                    break
                if not isinstance(nxt, Call):
                    raise not_a_call(nxt, p.pulled)
                pending = nxt
            call, pending = pending, None
            self._check_store(call)
            n_rows = len(call.plan.row_keys)
            job = submit(call)
            del call  # the job holds the plan's lines until its batches are created; nothing else
            self._wait_created(job)
            if not any(b["mode"] != SendMode.BATCH for b in run.store.batches(job_id=job.job_id, states=_AWAITING)):
                # Created: a retry reads its requests back from the store, so the partition's
                # rendered requests and frame are let go now, not when its answers are in.
                job.request_lines = {}
                job.frame = None
            run.store.add_run_part(run.run_id, p.pulled, job.job_id, n_rows)
            self.ahead.append((p.pulled, job, n_rows))
            p.in_flight.append(job)
            p.pulled += 1
            p.rows += n_rows
            while self.ahead and self.ahead[0][1].done:
                self._output_head()
        while self.ahead and not control.stop.is_set():
            self._output_head()

    def _wait_created(self, job: Job) -> None:
        """Wait until the job's batches are created (or it stops) before planning the next partition.

        A process killed between a create and recording it leaves a batch that the next run adopts
        by its size and creation time; with equal partitions two such batches would be ambiguous,
        and an ambiguous one is created again. Creating one partition's batches at a time leaves at
        most one unrecorded, so recovery adopts it.
        """
        store = job.store
        while not self.run.control.stop.is_set() and job.worker.running:
            waiting = [
                b
                for b in store.batches(job_id=job.job_id, states=(UnitState.SUBMITTING,))
                if b["mode"] == SendMode.BATCH
            ]
            if not waiting or any(b["attempt"] == 0 for b in store.batches(job_id=job.job_id, states=_AWAITING)):
                return  # created (or held back by a cache-priming batch, which is created first)
            job.worker.done.wait(CREATE_POLL)

    def _check_store(self, call: Call) -> None:
        opts = call.options.run
        store = Store.resolve(opts.store if opts.store is not None else default_store_path(opts.client))
        if store is not self.run.store:
            raise InvalidOptionError(
                f"partition {self.run.control.progress.pulled} goes to the store at {store.path}, the run's first to "
                f"{self.run.store.path}: give every partition the same store= (and client=)",
                option="store",
            )

    def _output_head(self) -> None:
        part, job, n_rows = self.ahead[0]
        job.wait()
        _, row_pos = job.layout()
        view = job.view()  # current: the job's own view, no lookup again
        values = per_row(
            job.store,
            row_pos,
            view.codes,
            view.positions,
            view.results_ids,
            structured=job.output_spec is not None,
            canceled=job.status == JobState.CANCELED,
        )
        job.store.release(np.unique(view.results_ids[view.codes != 0]).tolist(), job.layout()[0])
        answered = np.isin(view.codes, _ANSWERED_CODES)[row_pos[row_pos >= 0]]  # a row per key's row
        del view
        out = PartOutput(part, job.job_id, n_rows, values.answers, values.statuses)
        del values
        p = self.run.control.progress
        p.rows_answered += int(np.count_nonzero(answered))
        p.rows_done += n_rows
        if self.on_output is not None:
            self.on_output(out)
        crashpoint("run_part_output")  # a client killed mid-run: the re-run finds every partition's job
        self.ahead.popleft()
        p.output += 1
        p.in_flight.remove(job)
        job.request_lines.clear()  # the job is let go: nothing of it is kept beyond what the store has
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
