"""A job's life over the Message Batches API: submit, poll, collect, retry, cancel.

A :class:`Job` is one call of ``df.claude.batch`` / ``submit`` written down in the store. Its
state lives in the store, not in this object, so a job can be re-attached from any process:
re-running the same call finds the job by its fingerprint (the hash of every row's request
key), and :meth:`Job.load` finds it by id.

Each job has at most one worker thread per process. The worker creates the batches the store
says are planned, polls them with backoff, streams each ended batch's results into the store
in one transaction, and resubmits transient failures. A batch job with a ``deadline=`` is
hedged by the same worker: near the deadline it cancels the job's batches still running and
sends what they did not answer as a realtime unit (:mod:`batchkit.engine.hedge` plans when).
The caller's thread only plans (pure work plus one store transaction) and waits, so a
notebook cell stays interruptible and a KeyboardInterrupt detaches without canceling anything.

Workers are daemon threads, so a script that ends does not wait hours for its batches. But a
script that ends right after ``submit()`` must not take the *creation* of its batches with it:
at interpreter exit a hook lets every worker finish creating what it planned (bounded by
:data:`EXIT_GRACE` seconds, without waiting for results) and says on stderr how to pick each
job up later.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shlex
import sys
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, NoReturn

import anthropic
import numpy as np
import pandas as pd

from batchkit._crash import crashpoint
from batchkit.backends import Action, Backend, CallFailed, Decision, Tracked
from batchkit.backends.batches import RESULTS_CUT, MessageBatches
from batchkit.backends.choice import backend_for
from batchkit.backends.clients import api_name, resolve_client, server_clock
from batchkit.backends.errors import AUTO_RETRY_ERRORS
from batchkit.backends.queue import QueueView, known_view
from batchkit.core import _json
from batchkit.core.keys import fingerprint
from batchkit.core.options import JobSpec
from batchkit.core.requests import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    Plan,
    RequestTemplate,
    chunk_requests,
    make_line,
    params_key,
    select_lines,
)
from batchkit.core.results import ANSWERED, STATUS_CODE, ResultColumns, Summary
from batchkit.core.structured import OutputSpec
from batchkit.costs.prices import load_prices, output_betas
from batchkit.costs.pricing import (
    CostBreakdown,
    default_typical_output_tokens,
    estimate_request_tokens,
)
from batchkit.errors import (
    APIRefusedError,
    BatchkitError,
    BatchLostError,
    CancelFailedError,
    JobNotFoundError,
    ResultsDownloadError,
    ServerUnreachableError,
    SpendLimitError,
    UnknownModelError,
)
from batchkit.stores.leases import me, owner_alive
from batchkit.stores.store import ACTIVE_STATES, Store, default_store_path

from . import workers as _workers
from .hedge import HedgePlan, HedgeReport, hedge_report
from .outcomes import JobResults, _View
from .reports import failure_report, jobs, warn_failures

__all__ = ["Job", "failure_report", "fingerprint", "jobs", "open_job", "warn_failures"]


_EXPIRED, _ERRORED, _INVALID = STATUS_CODE["expired"], STATUS_CODE["errored"], STATUS_CODE["invalid_output"]
_SUCCEEDED, _CANCELED = STATUS_CODE["succeeded"], STATUS_CODE["canceled"]

CANCEL_POLL = 10.0
"""Seconds (of the server's clock) between looks at batches the deadline hedge canceled, at most
(the API's batch backoff is minutes)."""

LOST_WHY = (
    "it was deleted, its results expired (29 days after creation), it belongs to another workspace's "
    "API key, or it died with a simulator that was stopped"
)
"""Why the API may no longer know a batch the store recorded (a 404)."""

HEDGE_REASON = "deadline hedge"
"""How the ``mode_reason`` of a job the deadline hedge moved to realtime begins."""

EXIT_GRACE = 120.0
"""Seconds a process that is exiting waits for its workers to finish creating planned batches."""


def _owner_alive(batch: Mapping[str, Any]) -> bool:
    """Whether another process still owns ``batch`` (a unit), by the one rule of :mod:`.leases`."""
    return owner_alive(batch["owner"], batch.get("lease_until"))


class Job(JobResults):
    """One ``df.claude`` call and everything it sent and got back.

    Create jobs with ``df.claude.submit(...)``; re-attach with :meth:`Job.load` or by
    re-running the same call.
    """

    # The Job objects of this process, so a re-attach finds the running one. Weak: a job nobody
    # holds (and whose worker has finished) is let go with its frame and caches.
    _live: ClassVar[weakref.WeakValueDictionary[tuple[str, str], Job]] = weakref.WeakValueDictionary()
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        job_id: str,
        *,
        store: Store,
        client: anthropic.Anthropic | None,
        frame: pd.DataFrame | None = None,
        lines: MutableMapping[str, bytes] | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        record = record or store.load_job(job_id)
        if record is None:
            raise JobNotFoundError(f"no job {job_id!r} in the store at {store.path}", job_id=job_id)
        self.job_id = job_id
        self.store = store
        self._client = client
        self._backends: dict[str, Backend] = {}
        self._stopping = False  # Ctrl-C on a realtime job: stop sending, store what comes back, stop
        self.frame = frame
        self._record = record
        self._lines: MutableMapping[str, bytes] = lines if lines is not None else {}  # the job's own from here on
        self._batch_bodies: dict[int, bytes] = {}
        self._unrelated: set[int] = set()  # other jobs' units that carry none of this job's pending keys
        self._lost_now = False  # a unit of this job was found lost in this round (see _lose)
        self._api_checked: anthropic.Anthropic | None = None  # the client whose API the store agreed to
        self._done = threading.Event()
        self._wake = threading.Event()
        self._running = False  # a worker is looping (set and cleared under _live_lock)
        self._again = False  # start() was called while the worker was finishing: go round again
        self._exiting = threading.Event()  # the interpreter is exiting: create what is planned, then stop
        self._error: BaseException | None = None
        self._read_lock = threading.RLock()
        self._layout_cache: tuple[list[str], np.ndarray] | None = None
        # (index version, layout keys, packed outcomes, view, key → position or None)
        self._view_cache: tuple[int, list[str], np.ndarray, _View, dict[str, int] | None] | None = None
        self._pending_cache: tuple[_View, str, _Pending] | None = None
        self._cost_parts: dict[int, tuple[CostBreakdown, float, int, str]] = {}
        self._summary_cache: tuple[_View, str, Summary] | None = None
        self.spec = JobSpec.from_json(record["spec"])  # typed; older specs load with today's defaults
        self._poll_interval: float | None = self.spec.run.poll_interval
        self.max_retries: int = self.spec.run.max_retries
        self.max_invalid_retries: int = self.spec.run.max_invalid_retries
        self.output_spec = OutputSpec.from_json(self.spec.output_spec) if self.spec.output_spec else None
        self._clock: Callable[[], float] | None = None
        self._finished_at: float | None = None  # on the clock, when this process saw the job end
        self._hedge_cache: tuple[tuple[Any, ...], HedgeReport] | None = None

    @property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch on the server's clock, which a ``deadline=`` is kept on: ``time.time``
        for Anthropic's API, the simulated time for batchkit's simulator (see
        :func:`batchkit.backends.clients.server_clock`). Assign another callable to drive the hedge by it."""
        if self._clock is None:
            self._clock = server_clock(self.client)
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    @property
    def deadline(self) -> dt.datetime | None:
        """When every row must be answered (UTC, on the server's clock), for a batch job given a
        ``deadline=``; None otherwise."""
        plan = self._hedge_plan()
        return None if plan is None else dt.datetime.fromtimestamp(plan.deadline, dt.UTC)

    @property
    def hedged(self) -> bool:
        """Whether the deadline hedge has fired: the job's batches were canceled and what they had
        not answered goes through realtime."""
        return str(self._record.get("mode_reason") or "").startswith(HEDGE_REASON)

    @property
    def hedge(self) -> HedgeReport | None:
        """What the deadline hedge did — rows and dollars by batch and by realtime, batches canceled,
        rows answered twice (paid both ways, merged once) — for a job with a ``deadline=``; else None.

        >>> print(job.hedge)        # doctest: +SKIP
        deadline hedge: finished 12 s before the deadline; 240 answered by batch ($0.0010), 160 through ...
        """
        plan = self._hedge_plan()
        if plan is None:
            return None
        # Stored results never change: count and price them again only when new ones came in.
        key = (
            tuple(self.store.results_of_job(self.job_id)),
            self._end_time(),
            len(self.store.batches(job_id=self.job_id, states=("canceling",))),
        )
        cached = self._hedge_cache
        if cached is None or cached[0] != key:
            cached = self._hedge_cache = (key, hedge_report(self, deadline=plan.deadline, finished_at=key[1]))
        return cached[1]

    def deadline_text(self) -> str:
        """The progress view's deadline line: when it is, when the hedge will fire, or what it did."""
        plan = self._hedge_plan()
        if plan is None:
            return ""
        at = dt.datetime.fromtimestamp(plan.deadline, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.hedged or self.status != "running":
            return f"{at} — {str(self.hedge).removeprefix('deadline hedge: ')}"
        waiting = sum(
            int(b["n_requests"])
            for b in self.store.batches(job_id=self.job_id, states=ACTIVE_STATES)
            if b["mode"] == "batch"
        )
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

    def _answered_twice(self) -> int:
        if not self.hedged:
            return 0
        report = self.hedge
        return 0 if report is None else report.answered_twice

    def _hedge_plan(self) -> HedgePlan | None:
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

    def _end_time(self) -> float | None:
        """When the job ended, on the server's clock: as this process saw it, else its last unit's end."""
        if self.status == "running":
            return None
        if self._finished_at is not None:
            return self._finished_at
        ended = [b["ended_at"] for b in self.store.batches(job_id=self.job_id) if b["ended_at"]]
        if not ended:
            return None
        return max(dt.datetime.fromisoformat(str(e).replace("Z", "+00:00")).timestamp() for e in ended)

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, resolved only when the job first needs the network."""
        if self._client is None:
            self._client = resolve_client(None)
        return self._client

    @property
    def backend(self) -> Backend:
        """How this job's requests reach Claude, in the job's :attr:`mode`."""
        return self._backend_of(self.mode)

    def _backend_of(self, mode: str) -> Backend:
        """The backend that sends units of ``mode`` (chosen by :func:`~batchkit.backends.backend_for`)."""
        if self._api_checked is not self._client:
            # The store's answers and batches belong to one API: a client of the other one (the
            # simulator for a real job, or the reverse) would find none of its batches and mark
            # them lost while they run on, paid. Refused before anything is asked of it. A server
            # that does not answer is asked again next time (its calls fail and are retried).
            with contextlib.suppress(ServerUnreachableError):
                self.store.claim_backend(api_name(self.client))
                self._api_checked = self._client
        found = self._backends.get(mode)
        if found is None:
            found = self._backends[mode] = backend_for(mode, self.client, betas_for=output_betas)
            limit = self.spec.run.queue_limit
            if isinstance(found, MessageBatches) and limit is not None:
                found.queue.set_limit(limit, "setting")
        return found

    def _sync_queue(self) -> int:
        """Tell the workspace's queue view what the store has in flight; the requests it counts
        in flight after that (0 when the job sends no batches)."""
        backend = self._backend_of("batch")
        if not isinstance(backend, MessageBatches):
            return 0
        in_flight = {
            b["api_id"]: int(b["n_requests"])
            for b in self.store.batches(states=("in_progress", "canceling"))
            if b["api_id"] and b["mode"] == "batch"
        }
        backend.queue.sync(str(self.store.path), in_flight)
        return backend.queue.state().in_flight

    @property
    def queue(self) -> QueueView | None:
        """The workspace's processing queue as this process knows it (shared by every job of the
        workspace; see :mod:`batchkit.backends.queue`); None before the job has needed a client."""
        backend = self._backends.get("batch")
        return backend.queue if isinstance(backend, MessageBatches) else None

    @property
    def mode(self) -> str:
        """How the job sends what it has left: ``"batch"`` (Message Batches, half price) or
        ``"realtime"`` (``POST /v1/messages``, standard price, answers in seconds)."""
        return str(self._record.get("mode") or "batch")

    @property
    def mode_reason(self) -> str:
        """Why the job runs in its :attr:`mode` (the ``auto`` rule's reasoning, or that it was asked)."""
        reason = self._record.get("mode_reason")
        return str(reason) if reason else f"mode={self.mode!r} was asked"

    # ------------------------------------------------------------------ identity

    @property
    def created_at(self) -> str:
        return str(self._record["created_at"])

    def __repr__(self) -> str:
        from batchkit.display.progress import render_line, snapshot

        return f"<batchkit.Job {render_line(snapshot(self))}>"

    def _repr_html_(self) -> str:
        from batchkit.display.progress import render_html, snapshot

        return render_html(snapshot(self))

    @classmethod
    def load(
        cls,
        job_id: str,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> Job:
        """Re-attach to a job by id, e.g. after a kernel restart.

        The store is ``store=``, else the default one for ``client`` (the simulator's answers live
        in a store of their own); loading never creates a store.

        >>> job = Job.load("job_…")          # doctest: +SKIP
        >>> job.wait().to_frame(df)          # doctest: +SKIP
        """
        if store is None and client is not None:
            store = default_store_path(client)
        resolved = Store.resolve(store, create=False)
        if (str(resolved.path), job_id) in cls._live:
            return cls._attach(job_id, resolved, client)  # the job this process runs, on ``client`` if given
        if resolved.load_job(job_id) is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in the store at {resolved.path}; batchkit.jobs() lists the jobs there",
                job_id=job_id,
            )
        return cls._attach(job_id, resolved, client)

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame | pd.Series,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> Job:
        """The job a frame returned by ``df.claude.batch``/``classify``/``extract`` came from.

        The frame (or a Series or a copy of it) carries the job's id and store path in
        ``frame.attrs``; pandas keeps ``attrs`` through most operations (copies, selections,
        ``head``, ``merge``, ``groupby``, a Parquet round trip) but drops them where inputs
        disagree (e.g. ``pd.concat`` of frames from two jobs) and on formats without metadata
        (CSV).

        >>> out = df.claude.batch("Sentiment of: {review}")     # doctest: +SKIP
        >>> batchkit.Job.of(out).outcomes()                       # doctest: +SKIP

        Raises:
            JobNotFoundError: the frame carries no job id (keep ``out.attrs``, or find the job
                with ``batchkit.jobs()`` and :meth:`load`).
        """
        attrs = getattr(frame, "attrs", None)
        if not isinstance(attrs, Mapping):
            attrs = {}
        job_id = attrs.get("batchkit_job_id")
        if not isinstance(job_id, str):
            raise JobNotFoundError(
                f"this {type(frame).__name__} carries no batchkit job id in .attrs (it was not returned by "
                "df.claude.batch/classify/extract, or an operation dropped its attrs). batchkit.jobs() lists "
                "the jobs; batchkit.Job.load(job_id) opens one.",
                job_id=None,
            )
        return cls.load(job_id, store=store if store is not None else attrs.get("batchkit_store"), client=client)

    @classmethod
    def _attach(
        cls,
        job_id: str,
        store: Store,
        client: anthropic.Anthropic | None,
        *,
        frame: pd.DataFrame | None = None,
        lines: MutableMapping[str, bytes] | None = None,
        batch_bodies: Mapping[int, bytes] | None = None,
        record: dict[str, Any] | None = None,
    ) -> Job:
        key = (str(store.path), job_id)
        with cls._live_lock:
            job = cls._live.get(key)
            if job is None:
                job = cls._live[key] = cls(job_id, store=store, client=client, frame=frame, lines=lines, record=record)
            else:
                if frame is not None:
                    job.frame = frame
                if client is not None and client is not job._client:
                    job._client = client
                    # A backend still sending (realtime) keeps its units; the others are rebuilt.
                    job._backends = {m: b for m, b in job._backends.items() if getattr(b, "busy", False)}
            job._batch_bodies.update(batch_bodies or {})
        return job

    def _retry_mask(self, view: _View) -> np.ndarray:
        """Which keys the worker should resubmit by itself (transient failures, expiries, invalid)."""
        mask = np.zeros(len(view.codes), dtype=bool)
        if self._record["status"] != "running":
            return mask
        mask |= (view.codes == _INVALID) & (view.attempts <= self.max_invalid_retries)
        mask |= (view.codes == _EXPIRED) & (view.attempts <= self.max_retries)
        errored = np.flatnonzero((view.codes == _ERRORED) & (view.attempts <= self.max_retries))
        if len(errored):
            keys, _ = self._layout()
            error_type = self.store.error_type
            mask[[i for i in errored if error_type(keys[i]) in AUTO_RETRY_ERRORS]] = True
        return mask

    def _pending(self) -> _Pending:
        """Keys still waiting for a final result: none yet, or one the worker will resubmit."""
        view = self._view()
        cached = self._pending_cache
        if cached is not None and cached[0] is view and cached[1] == self._record["status"]:
            return cached[2]
        keys, _ = self._layout()
        pending = _Pending(keys, (view.codes == 0) | self._retry_mask(view))
        self._pending_cache = (view, self._record["status"], pending)
        return pending

    @property
    def status(self) -> str:
        """``running`` while any row waits for an answer, then ``ended``, ``canceled`` or ``failed``.

        ``failed``: the API refused the job's requests for a reason a retry cannot fix (no
        credit, a bad key, …); nothing more is sent until the call is re-run or ``retry()``.
        """
        rows = self.store.query("SELECT status FROM jobs WHERE job_id = ?", (self.job_id,))
        if rows:  # another process (or the worker) may have moved it on
            self._record["status"] = rows[0][0]
        return str(self._record["status"])

    @property
    def done(self) -> bool:
        return self.status != "running"

    def batches(self) -> pd.DataFrame:
        """The job's batches: API id, state, attempt, request count and timestamps."""
        rows = self.store.batches(job_id=self.job_id)
        frame = pd.DataFrame(
            rows,
            columns=[
                "id",
                "job_id",
                "api_id",
                "state",
                "owner",
                "attempt",
                "n_requests",
                "intent_at",
                "created_at",
                "ended_at",
                "expires_at",
                "request_counts",
                "error",
                "mode",
            ],
        )
        return frame.drop(columns=["job_id", "owner"])

    # ------------------------------------------------------------------ running

    def start(self) -> Job:
        """Run the worker in the background (idempotent). Returns the job."""
        with self._live_lock:
            if self._running:
                self._again = True  # the worker may be deciding to stop: make it look again
                self._wake.set()
                return self
            if self.status != "running":
                self._done.set()
                return self
            self._done.clear()
            self._error = None
            self._stopping = False
            self._exiting.clear()
            self._running = True
            _workers.start(self._run, f"batchkit-{self.job_id}")  # a kept thread: its malloc arena is warm
        return self

    def _run(self) -> None:
        tick = 0
        try:
            schedule: tuple[float, ...] = ()
            schedule_mode: str | None = None  # this run's: a retry starts a new run, and reads it anew
            while True:
                if self._step():
                    with self._live_lock:
                        if not self._again:
                            self._running = False
                            self._done.set()
                            self._leave_queue()
                            return
                        self._again = False
                    continue
                if self._exiting.is_set():
                    break  # batches are created; the results are for a later process to collect
                # Resolved only now: a job with nothing to send never needs a client or a key.
                backend = self._backend_of(self._round_mode())
                if backend.mode != schedule_mode:
                    schedule, tick, schedule_mode = backend.poll_schedule(self._poll_interval), 0, backend.mode
                self._wake.wait(self._hedge_wait(schedule[min(tick, len(schedule) - 1)]))
                self._wake.clear()
                tick += 1
        except BaseException as exc:  # surfaced to the waiting thread
            self._error = exc
        self._leave_queue()
        with self._live_lock:
            self._running = False
            self._done.set()

    def _leave_queue(self) -> None:
        """This worker asks the queue nothing more: its held creates stop keeping others waiting."""
        backend = self._backends.get("batch")
        if isinstance(backend, MessageBatches):
            backend.queue.withdraw(self.job_id)

    def wait(self, timeout: float | None = None) -> Job:
        """Block until every row has its final outcome. Returns the job.

        A KeyboardInterrupt detaches: the batches keep running and the worker keeps collecting;
        re-run the cell or call ``Job.load(job_id).wait()`` to pick up where it is.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the job keeps running).
        """
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._done.wait(0.1):
                if isinstance(self._error, (APIRefusedError, BatchLostError)):
                    break  # the worker still collects what was sent; the caller hears now
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"job {self.job_id} is still running after {timeout} s; it keeps going — "
                        f"call .wait() again or batchkit.Job.load({self.job_id!r}) later"
                    )
        except KeyboardInterrupt:
            if self._stop_sending():
                raise
            print(
                f"\nbatchkit: detached from job {self.job_id}. Its batches keep running and nothing "
                f"was canceled. Re-run the cell, or batchkit.Job.load({self.job_id!r}).wait(), to "
                f"pick up the results; job.cancel() stops it.",
                file=sys.stderr,
            )
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._record["status"] == "failed":
            raise self._stopped()
        return self

    async def wait_async(self, timeout: float | None = None) -> Job:
        """:meth:`wait` for async code: awaiting it never blocks the caller's event loop.

        The job's worker (and, in realtime, its sender's private loop) run in their own threads;
        this only waits for them on an executor thread. Cancelling the awaiting task stops
        waiting, not the job.

        >>> job = await df.claude.submit(prompt, mode="realtime").wait_async()   # doctest: +SKIP
        """
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.wait(timeout))

    def _streams(self, mode: str) -> bool:
        """Whether units of ``mode`` are sent one by one by this process (and end with it)."""
        return bool(getattr(self._backend_of(mode), "local", False))

    def _round_mode(self) -> str:
        """The mode whose pace the worker keeps: that of a unit of the job being sent one by one
        (its answers are stored every round), else the job's own."""
        for batch in self.store.batches(job_id=self.job_id, states=("submitting", "in_progress", "canceling")):
            if self._streams(batch["mode"]):
                return str(batch["mode"])
        return self.mode

    def _stop_sending(self) -> bool:
        """Ctrl-C on a job whose requests go one by one: stop sending, keep what came back.

        Returns False when nothing of the job is being sent that way (its batches keep running
        without this process, and the caller only detaches).
        """
        streaming = [b for b in self._backends.values() if getattr(b, "busy", False)]
        if not streaming:
            return False
        self._stopping = True
        for backend in streaming:
            backend.stop_all()  # type: ignore[attr-defined]
        self._wake.set()
        self._done.wait(30)  # the requests on the wire come back and are stored
        summary = self.summary()
        answered = sum(n for s, n in summary.by_status.items() if s in ("succeeded", "truncated"))
        print(
            f"\nbatchkit: stopped sending job {self.job_id} ({self.mode}). {answered:,} of {summary.rows:,} rows "
            f"are answered and kept in the store; nothing answered is sent again. Re-run the cell, or "
            f"batchkit.Job.load({self.job_id!r}).wait(), to send the rest.",
            file=sys.stderr,
        )
        return True

    def _refusal(self) -> APIRefusedError:
        """The error of a job the API refused, with the API's reason as the store recorded it."""
        failed = [b for b in self.store.batches(job_id=self.job_id, states=("failed",)) if b["error"]]
        reason = failed[-1]["error"] if failed else "the API refused its requests"
        kind = SpendLimitError if "spend or usage limit" in reason else APIRefusedError
        return kind(
            f"job {self.job_id} stopped: {reason}. Nothing more was sent; answers that came back are "
            f"kept. After fixing the cause, re-run the same call or batchkit.Job.load({self.job_id!r}).retry() "
            f"to send the rest; job.cancel() gives up on them.",
            job_id=self.job_id,
        )

    def _stopped(self) -> BatchkitError:
        """The error a failed job ends with, rebuilt from the store (e.g. in another process): the
        API's refusal, a batch it no longer knows, or a results download cut every time."""
        failed = [b for b in self.store.batches(job_id=self.job_id, states=("failed", "lost")) if b["error"]]
        if failed and failed[-1]["state"] == "lost":
            return self._lost_error([b for b in failed if b["state"] == "lost"])
        if not failed:
            cut = [b for b in self.store.batches(job_id=self.job_id, states=("ended",)) if b["error"]]
            if cut:
                return _download_error(self.job_id, cut[-1]["api_id"], cut[-1]["error"])
        return self._refusal()

    def _lost_error(self, lost: Sequence[Mapping[str, Any]]) -> BatchLostError:
        """The error a job ends with when the API no longer knows some of its batches."""
        rows = sum(int(b["n_requests"]) for b in lost)
        keys = [k for b in lost for k in self.store.batch_keys(b["id"])]
        ids = ", ".join(str(b["api_id"]) for b in lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        return BatchLostError(
            f"job {self.job_id} stopped: the API no longer knows {len(lost)} of its batches ({ids}): {LOST_WHY}. "
            f"Their {rows:,} rows have no answer{self._resend_cost(keys, lost[-1]['mode'])}. Everything "
            f"else was collected. Re-run the same call or batchkit.Job.load({self.job_id!r}).retry() to send "
            f"them again; job.cancel() gives up on them.",
            job_id=self.job_id,
            batch_id=lost[-1]["api_id"],
            rows=rows,
        )

    def _exit_note(self) -> str:
        """What became of this job as the process exits, and how to pick it up."""
        if isinstance(self._error, APIRefusedError):
            return f"batchkit: {self._error}"
        if self._error is not None:
            return f"batchkit: job {self.job_id} stopped: {self._error!r}"
        status = self.status
        if status != "running":
            return "" if status != "failed" else f"batchkit: {self._stopped()}"
        batches = self.store.batches(job_id=self.job_id, states=ACTIVE_STATES)
        if any(self._streams(b["mode"]) for b in batches):  # requests sent one by one stop with the process
            store = shlex.quote(str(self.store.path))
            return (
                f"batchkit: job {self.job_id} was sending in realtime when this process exited; the answers "
                f"that came back are stored. `batchkit wait {self.job_id} --store {store}` (or re-running the "
                f"same call) sends only the rows with no answer."
            )
        created = sum(1 for b in batches if b["api_id"])
        left = len(batches) - created
        head = f"batchkit: job {self.job_id} keeps running without this process: "
        if left and self._done.is_set():
            head += (
                f"{created} batch(es) created, {left} not yet (waiting for room in the processing queue, or "
                "for the cache-priming batch). "
            )
        elif left:
            head += f"{left} batch(es) were still being created after {EXIT_GRACE:g} s; exiting anyway. "
        else:
            head += f"its {created} batch(es) are created. "
        store = shlex.quote(str(self.store.path))
        return (
            head + f"Nothing is lost: `batchkit wait {self.job_id} --store {store}` (or "
            f"batchkit.Job.load({self.job_id!r}, store={str(self.store.path)!r}).wait()) creates what is left "
            f"and collects the answers; re-running the same call picks it up too."
        )

    def cancel(self) -> Job:
        """Cancel every batch of the job still running; rows not yet answered end ``canceled``.

        Answers that came back before the cancel took effect are kept (and were paid for). A job
        that has already ended is left as it ended (there is nothing to cancel).
        """
        if self.status == "ended":
            return self
        # The API first: a cancel that cannot reach it leaves the job exactly as it was.
        self._cancel_sent()
        self.store.set_job_status(self.job_id, "canceled")
        self._record["status"] = "canceled"
        for batch in self.store.batches(job_id=self.job_id, states=("submitting",)):
            if batch["owner"] == me() or not _owner_alive(batch):
                # Not recorded as created; it may have been a moment ago (e.g. by our worker).
                found = self._reconcile(batch, adopt_only=True)
                if found is not None and found.state == "in_progress":
                    self._cancel_unit(batch, found.id)
        self._cancel_sent()  # created by the worker while the job was being canceled
        # Collect what the cancel left behind, so canceled rows are recorded as such.
        self._wake.set()
        self.start()
        return self.wait()

    def retry(
        self,
        statuses: Iterable[str] = ("errored", "expired"),
        *,
        truncated: bool = False,
        max_tokens: int | None = None,
        wait: bool = True,
    ) -> Job:
        """Resubmit only the rows that ended with one of ``statuses``.

        ``truncated=True`` re-runs only the rows that stopped at ``max_tokens``, with the new
        ``max_tokens`` (required): those rows get new requests, so their old answers stay in
        the store untouched.
        """
        if truncated:
            if max_tokens is None:
                raise ValueError("retry(truncated=True) needs max_tokens=N, larger than the job's")
            return self._retry_truncated(max_tokens, wait=wait)
        statuses = list(statuses)
        codes = [STATUS_CODE[s] for s in statuses if s in STATUS_CODE and STATUS_CODE[s] not in ANSWERED]
        keys, _ = self._layout()
        view = self._view()
        chosen = [keys[i] for i in np.flatnonzero(np.isin(view.codes, codes))]
        status = self.status
        # Rows a refusal left unsent (a failed job), or a cancel left uncreated, have no result.
        unsent = status == "failed" or (status == "canceled" and "canceled" in statuses)
        if not chosen and not unsent:
            return self
        with self.store.atomic() as conn:
            in_flight = self.store.in_flight_keys(conn)
            self._plan_batches(conn, [k for k in chosen if k not in in_flight], attempt=2)
            if unsent:
                self._plan_unsent(conn, in_flight)
            conn.execute("UPDATE jobs SET status = 'running' WHERE job_id = ?", (self.job_id,))
        self._record["status"] = "running"
        self.start()
        return self.wait() if wait else self

    def _plan_unsent(self, conn: Any, in_flight: set[str]) -> None:
        """Plan batches for the keys that have no result and are in no batch still running."""
        keys, _ = self._layout()
        view = self._view()
        self._plan_batches(conn, [keys[i] for i in np.flatnonzero(view.codes == 0) if keys[i] not in in_flight], 1)

    def _resume(self) -> None:
        """Send what a refusal left unsent, e.g. when the same call is re-run after the fix."""
        with self.store.atomic() as conn:
            self._plan_unsent(conn, self.store.in_flight_keys(conn))
            conn.execute("UPDATE jobs SET status = 'running' WHERE job_id = ?", (self.job_id,))
        self._record["status"] = "running"

    def _retry_truncated(self, max_tokens: int, *, wait: bool) -> Job:
        if max_tokens <= self.spec.max_tokens:
            raise ValueError(f"max_tokens={max_tokens} is not more than the job's {self.spec.max_tokens}")
        keys, _ = self._layout()
        view = self._view()
        truncated = [keys[i] for i in np.flatnonzero(view.codes == STATUS_CODE["truncated"])]
        if not truncated:
            return self
        new_key_of: dict[str, str] = {}
        new_lines: dict[str, bytes] = {}
        for key, body in self.store.request_bodies(truncated).items():
            params = _json.loads(body)
            params["max_tokens"] = max_tokens
            new_body = _json.dumps_sorted(params)
            new_key_of[key] = params_key(params)
            new_lines[new_key_of[key]] = make_line(new_key_of[key], new_body)
        row_keys = [new_key_of.get(k, k) if k else k for k in self.row_keys]
        with self.store.atomic() as conn:
            self.store.set_row_keys(conn, self.job_id, row_keys)
            answered = self.store.answered(new_lines)
            in_flight = self.store.in_flight_keys(conn)
            self._lines.update(new_lines)
            self._plan_batches(conn, [k for k in new_lines if k not in answered and k not in in_flight], 1)
            conn.execute("UPDATE jobs SET status = 'running' WHERE job_id = ?", (self.job_id,))
        self._record = self.store.load_job(self.job_id) or self._record
        self._layout_cache = None
        self.start()
        return self.wait() if wait else self

    # ------------------------------------------------------------------ one round of work

    def _step(self) -> bool:
        """Create planned batches, poll running ones, collect ended ones, plan retries."""
        pending = self._pending()
        if self._stopping:  # Ctrl-C: send nothing more, keep what the units on the wire bring back
            self._poll(pending)
            return not any(
                self._streams(b["mode"])
                for b in self.store.batches(job_id=self.job_id, states=("in_progress", "canceling"))
            )
        self._create_planned(pending)
        if self._exiting.is_set():
            return False
        held = self._holds_creates()
        used = self._sync_queue() if held else 0
        self._poll(pending)
        if held and self._sync_queue() < used:  # batches ended: their room goes to what is held, now
            self._create_planned(self._pending())
        if self._record["status"] == "running":
            self._hedge_round()
            self._plan_retries()
        return self._finish_if_done()

    # ------------------------------------------------------------------ the deadline hedge

    def _hedge_round(self) -> None:
        """A job with a deadline: fire the hedge when :meth:`HedgePlan.should_cancel` says so, then
        cancel its batches still running, and send what they did not answer as a realtime unit.

        Before the cancel has settled only rows that came back ``canceled`` (or were never sent) go;
        when the deadline is too close to wait longer (:meth:`HedgePlan.stop_waiting_at`), the rows
        of batches still canceling go too (some may be answered twice: counted in :attr:`hedge`).
        """
        plan = self._hedge_plan()
        if plan is None:
            return
        units = [b for b in self.store.batches(job_id=self.job_id, states=ACTIVE_STATES) if b["mode"] == "batch"]
        waiting = sum(int(b["n_requests"]) for b in units)
        if not self.hedged:
            now = self.clock()
            if not plan.should_cancel(now, waiting):
                return
            reason = (
                f"{HEDGE_REASON}: {waiting:,} rows still in batches "
                f"{plan.deadline - now:,.0f} s before the deadline; those batches were canceled and "
                f"what they did not answer goes through realtime (standard price)"
            )
            with self.store.atomic() as conn:
                self.store.set_job_mode(conn, self.job_id, "realtime", reason)
            self._record.update(mode="realtime", mode_reason=reason)
        for unit in units:
            if unit["state"] == "submitting" and unit["owner"] == me():
                self.store.update_batch(unit["id"], state="abandoned", error=f"not created: {HEDGE_REASON}")
            elif unit["state"] == "in_progress" and unit["api_id"]:
                try:
                    self._record_unit(unit, self._backend_of("batch").cancel(unit["api_id"]))
                except CallFailed:
                    continue  # a blip, or it ended meanwhile: the next round looks again
        still = [b for b in self.store.batches(job_id=self.job_id, states=ACTIVE_STATES) if b["mode"] == "batch"]
        give_up = bool(still) and self.clock() >= plan.stop_waiting_at(sum(int(b["n_requests"]) for b in still))
        keys, _ = self._layout()
        view = self._view()
        chosen = np.flatnonzero((view.codes == 0) | (view.codes == _CANCELED))
        if not len(chosen):
            return
        with self.store.atomic() as conn:
            in_flight = self.store.in_flight_keys(conn)
            if give_up:  # only what realtime already carries: the canceling batches' rows go too
                in_flight = set()
                for b in self.store.batches(job_id=self.job_id, states=ACTIVE_STATES):
                    if b["mode"] != "batch":
                        in_flight.update(self.store.batch_keys(b["id"]))
            by_attempt: dict[int, list[str]] = defaultdict(list)
            for i in chosen:
                if keys[i] not in in_flight:
                    by_attempt[int(view.attempts[i]) + 1].append(keys[i])
            for attempt, chosen_keys in by_attempt.items():
                self._plan_batches(conn, chosen_keys, attempt, mode="realtime")
        self._wake.set()  # create the realtime unit now, not after a batch poll interval

    def _hedge_wait(self, wait: float) -> float:
        """``wait`` (wall seconds) shortened so the worker looks again by the time the hedge must
        fire. The plan's moments are on the server's clock: the time until one is converted to wall
        seconds at the clock's rate (a simulator's clock may run 120× faster)."""
        plan = self._hedge_plan()
        if plan is None:
            return wait
        waiting = sum(
            int(b["n_requests"])
            for b in self.store.batches(job_id=self.job_id, states=ACTIVE_STATES)
            if b["mode"] == "batch"
        )
        if not waiting:
            return wait
        if self.hedged:  # a cancel is settling: look often, and by the last moment to wait for it
            return min(
                wait,
                plan.wall_seconds(CANCEL_POLL),
                max(0.05, plan.wall_seconds(plan.stop_waiting_at(waiting) - self.clock())),
            )
        return min(wait, max(0.05, plan.wall_seconds(plan.cancel_at(waiting) - self.clock())))

    def _relevant(self, batch: Mapping[str, Any], pending: _Pending) -> bool:
        """A batch of this job, or of another one that carries keys this job waits for."""
        if batch["job_id"] == self.job_id:
            return True
        if not pending or batch["id"] in self._unrelated:
            return False
        if pending.isdisjoint(self.store.batch_keys(batch["id"])):
            # A unit's keys never change and a job's pending keys only shrink until it plans again:
            # not read again every round (a partitioned run has several jobs' batches in flight).
            self._unrelated.add(batch["id"])
            return False
        return True

    def _holds_creates(self) -> bool:
        """Batches of this job are planned and not created (e.g. held for room in the queue)."""
        return self.mode == "batch" and bool(self.store.batches(job_id=self.job_id, states=("submitting",)))

    def _create_planned(self, pending: _Pending) -> None:
        if self._holds_creates():
            self._sync_queue()  # batches created by another process, or before a restart, count
        queue = self.queue
        if queue is not None:  # batches given up since they were held (a hedge, a cancel) wait no more
            queue.withdraw(self.job_id, keep={int(b["id"]) for b in self.store.batches(states=("submitting",))})
        priming = any(b["attempt"] == 0 and b["state"] in ACTIVE_STATES for b in self.store.batches(job_id=self.job_id))
        for batch in self.store.batches(states=("submitting",)):
            if self._record["status"] == "failed":
                return  # a create was refused: nothing more is sent (not even another job's batch)
            mine = batch["job_id"] == self.job_id
            if not self._relevant(batch, pending) or (mine and self._record["status"] != "running"):
                continue
            if priming and batch["job_id"] == self.job_id and batch["attempt"] != 0:
                continue  # wait for the cache-priming batch to end
            if batch["owner"] == me():
                if batch["job_id"] == self.job_id or batch["job_id"] not in _live_job_ids():
                    self._create(batch)
            elif not _owner_alive(batch) and self._claim(batch, states=("submitting",)):
                self._reconcile(batch)

    def _claim(self, batch: Mapping[str, Any], *, states: Sequence[str] = ACTIVE_STATES) -> bool:
        """Take a unit over from its dead owner (compare-and-set on its owner, see :mod:`.leases`)."""
        return self.store.claim_unit(int(batch["id"]), me(), was=batch["owner"], states=states)

    def _cancel_sent(self) -> None:
        """Cancel every unit of this job the API is running (a unit another live process sends
        one by one is left to it: its worker stops it when it sees the job canceled)."""
        units = [b for b in self.store.batches(job_id=self.job_id, states=("in_progress",)) if b["api_id"]]
        for done, batch in enumerate(units):
            if self._streams(batch["mode"]) and not self._sent_here(batch) and _owner_alive(batch):
                continue
            self._cancel_unit(batch, batch["api_id"], canceled_before=done, of=len(units))

    def _cancel_unit(self, batch: Mapping[str, Any], api_id: str, *, canceled_before: int = 0, of: int = 1) -> None:
        try:
            self._record_unit(batch, self._backend_of(batch["mode"]).cancel(api_id))
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.FAIL_ROWS:  # 404: nothing left to cancel at the API
                if self._owns(batch):
                    self._lose(batch, decision)
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
            _reraise(failure)

    def _reconcile(self, batch: Mapping[str, Any], *, adopt_only: bool = False) -> Tracked | None:
        """Adopt the batch a dead process may have created, or create it if it never was.

        Returns what was adopted, if anything.
        """
        claimed = {b["api_id"] for b in self.store.batches() if b["api_id"]}
        intent = dt.datetime.fromisoformat(batch["intent_at"].replace("Z", "+00:00"))
        try:
            found = self._backend_of(batch["mode"]).find_sent(
                n_requests=batch["n_requests"], intent_at=intent, claimed=claimed
            )
        except CallFailed as failure:
            _reraise(failure)  # never create what may exist: the batch stays planned and claimed
        if found is not None:
            self._record_unit(batch, found)
        elif adopt_only:
            self.store.update_batch(batch["id"], state="abandoned", error="canceled before it was created")
        else:
            self._create(batch, reconciled=True)
        return found

    def _create(self, batch: Mapping[str, Any], *, reconciled: bool = False) -> None:
        body = self._batch_bodies.pop(batch["id"], None) or self.store.batch_body(batch["id"])
        backend = self._backend_of(batch["mode"])
        if getattr(backend, "streams", False):
            body = self._unanswered_body(batch, body)
        try:
            if isinstance(backend, MessageBatches):  # the workspace's queue holds it until there is room
                sent = backend.send(
                    body,
                    n_requests=int(batch["n_requests"]),
                    order=int(batch["id"]),
                    owner=self.job_id,
                    wake=self._wake.set,
                )
            else:
                sent = backend.send(body)
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RECONCILE:  # it may have reached the API: look first
                if not reconciled:
                    self._reconcile(batch)
            elif decision.action is not Action.RETRY:  # else: refused before anything was created
                self._stop(batch, decision, failure.__cause__ or failure)
            return
        crashpoint("after_create")
        self._record_unit(batch, sent)
        if batch["job_id"] == self.job_id and self.status == "canceled":
            self._cancel_unit(batch, sent.id)  # canceled while it was being created

    def _unanswered_body(self, batch: Mapping[str, Any], body: bytes) -> bytes:
        """A unit's body without the requests answered since it was planned (a unit a dead
        process had started: it stored some answers one by one)."""
        keys = self.store.batch_keys(batch["id"])
        answered = self.store.answered(keys)
        if not answered:
            return body
        rest = [k for k in keys if k not in answered]
        missing = [k for k in rest if k not in self._lines]
        if missing:
            self._lines.update((k, make_line(k, b)) for k, b in self.store.request_bodies(missing).items())
        chunks = (
            chunk_requests(
                {k: self._lines[k] for k in rest}, max_requests=len(rest) or 1, max_bytes=max(len(body), 1000)
            )
            if rest
            else []
        )
        return chunks[0].body if chunks else b'{"requests":[]}'

    def _record_unit(self, batch: Mapping[str, Any], unit: Tracked) -> None:
        """Write down what the backend said of a unit: its id, state and timestamps."""
        self.store.update_batch(batch["id"], api_id=unit.id, state=unit.state, **unit.fields)

    def _stop(self, batch: Mapping[str, Any], decision: Decision, exc: BaseException) -> None:
        """The API refused a create for a reason a retry cannot fix: the job fails, loudly.

        The refused batch and the job's other batches not yet created are marked ``failed`` (so
        no other job waits on them); batches already created keep running and are collected.
        """
        reason = f"the API refused its requests ({decision.describe()}) — to fix: {decision.fix}"
        with self.store.atomic() as conn:
            self.store.update_batch_in(conn, batch["id"], state="failed", error=reason)
            for other in self.store.batches(job_id=self.job_id, states=("submitting",)):
                if other["owner"] == me():
                    self.store.update_batch_in(conn, other["id"], state="failed", error="not created: " + reason)
            conn.execute("UPDATE jobs SET status = 'failed' WHERE job_id = ? AND status = 'running'", (self.job_id,))
        self._record["status"] = "failed"
        error = self._refusal()
        error.status_code, error.error_type, error.api_message = decision.status, decision.error_type, decision.message
        error.__cause__ = exc
        self._error = error

    def _lose(self, batch: Mapping[str, Any], decision: Decision) -> None:
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
        with self.store.atomic() as conn:
            self.store.update_batch_in(conn, batch["id"], state="lost", error=reason)
            if batch["job_id"] == self.job_id:
                conn.execute(
                    "UPDATE jobs SET status = 'failed' WHERE job_id = ? AND status = 'running'", (self.job_id,)
                )
        if batch["job_id"] == self.job_id:
            self._record["status"] = "failed"
            self._lost_now = True  # the error is built once the round has seen every lost unit

    def _resend_cost(self, keys: Sequence[str], mode: str) -> str:
        """'; sending them again costs about $X at <mode> prices' for ``keys`` (offline estimate)."""
        try:
            price = load_prices(self._record["spec"].get("prices")).get(self.model)
        except UnknownModelError:  # say nothing rather than guess
            return ""
        params = self.store.request_params(keys)
        tokens = sum(estimate_request_tokens(p) for p in params.values())
        out = sum(default_typical_output_tokens(int(p.get("max_tokens") or 1)) for p in params.values())
        discount = price.batch_multiplier if mode == "batch" else 1.0
        dollars = (tokens * price.input + out * price.output) / 1e6 * discount
        return f"; sending them again costs about ${dollars:,.4f} at {mode} prices"

    def _poll(self, pending: _Pending) -> None:
        self._lost_now = False
        self._poll_units(pending)
        if self._lost_now:
            self._error = self._stopped()

    def _poll_units(self, pending: _Pending) -> None:
        for batch in self.store.batches(states=("in_progress", "canceling", "ended")):
            if not batch["api_id"] or not self._relevant(batch, pending):
                continue
            backend = self._backend_of(batch["mode"])
            # A unit sent one by one by another job of this process, or by another process: only
            # its sender can collect it. While that owner lives, wait for the answers it stores;
            # once it is dead, one process takes the unit over and ends it (its unanswered keys
            # are sent again; only what was on the wire may have been paid twice).
            if (
                getattr(backend, "local", False)
                and not self._sent_here(batch)
                and (_owner_alive(batch) or not self._claim(batch, states=("in_progress", "canceling", "ended")))
            ):
                continue
            if (
                batch["state"] == "in_progress"
                and batch["job_id"] == self.job_id
                and self._streams(batch["mode"])
                and self.status == "canceled"
            ):  # canceled from another process: stop sending
                self._record_unit(batch, backend.cancel(batch["api_id"]))
                batch = {**batch, "state": "canceling"}
            if batch["state"] != "ended":
                crashpoint("polling")
                try:
                    current = backend.track(batch["api_id"])
                except CallFailed as failure:
                    if failure.decision.action is Action.RETRY:
                        continue  # a blip: ask again next round
                    if failure.decision.action is Action.FAIL_ROWS:  # 404: the API (as we reach it) forgot it
                        if self._owns(batch):
                            self._lose(batch, failure.decision)
                        # else its live owner may reach an API that knows it (another key, another
                        # simulator): it collects it, or finds it lost itself
                        continue
                    _reraise(failure)
                if current.state != "ended" and getattr(backend, "streams", False):
                    self._store_answers(batch, backend)  # what came back so far, kept at once
                if current.state != batch["state"] or current.state == "ended":
                    self._record_unit(batch, current)
                if current.state != "ended":
                    continue
            if getattr(backend, "streams", False):
                self._store_answers(batch, backend, final=True)
            else:
                self._collect(batch)

    def _owns(self, batch: Mapping[str, Any]) -> bool:
        """Whether this process owns ``batch``, or has just taken it over from a dead owner."""
        if batch["owner"] == me():
            return True
        return not _owner_alive(batch) and self._claim(batch)

    def _sent_here(self, batch: Mapping[str, Any]) -> bool:
        """Whether this job's worker sent ``batch`` (a unit whose handle lives in this process)."""
        return batch["owner"] == me() and batch["job_id"] == self.job_id

    def _store_answers(self, batch: Mapping[str, Any], backend: Backend, *, final: bool = False) -> None:
        """Keep the answers a streaming (realtime) unit handed over since the last round, in one
        small transaction; ``final``: the unit has ended, so everything it has left is stored and
        it is collected (or, when it ended on a refusal, the job stops)."""
        while (outcome := self._store_group(batch, backend)) == "stored" and final:
            pass
        if final and outcome == "empty":
            self.store.update_batch(batch["id"], state="collected")

    def _store_group(self, batch: Mapping[str, Any], backend: Backend) -> str:
        """Store one group of a streaming unit's answers: ``stored``, ``empty`` (none came) or
        ``stopped`` (the unit ended on a refusal: the job stops)."""
        try:
            columns = backend.collect(batch["api_id"])
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RETRY:
                return "empty"
            with self.store.atomic() as conn:
                self.store.update_batch_in(conn, batch["id"], state="collected")
            if batch["job_id"] == self.job_id:
                self._stop(batch, decision, failure.__cause__ or failure)
            return "stopped"
        if not columns.keys and not columns.lost:
            return "empty"
        if self.output_spec is not None:
            self._check_answers(columns)
        with self.store.atomic() as conn:
            self.store.add_answers(
                conn,
                unit=batch["id"],
                job_id=batch["job_id"],
                attempt=batch["attempt"],
                mode=batch["mode"],
                model=self.model,
                columns=columns,
            )
        crashpoint("realtime_stored")  # a kernel dying mid-run: what is stored stays
        return "stored"

    def _collect(self, batch: Mapping[str, Any]) -> None:
        """Stream an ended batch's results into the store, all in one transaction."""
        api_id = batch["api_id"]
        try:
            columns = self._backend_of(batch["mode"]).collect(api_id)
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RETRY:
                return  # a refused download (5xx, 429): the batch stays "ended" and is read again next round
            if decision.error_type == RESULTS_CUT:
                # Cut every time it was read: the job stops and says so; the batch stays "ended",
                # so re-running the call downloads it again and never sends its requests again.
                with self.store.atomic() as conn:
                    self.store.update_batch_in(conn, batch["id"], error=decision.message)
                    conn.execute(
                        "UPDATE jobs SET status = 'failed' WHERE job_id = ? AND status = 'running'", (self.job_id,)
                    )
                self._record["status"] = "failed"
                raise _download_error(self.job_id, api_id, decision.message) from failure.__cause__
            if decision.action is not Action.FAIL_ROWS:
                _reraise(failure)
            # Results are gone (archived 29 days after creation): record that, do not loop.
            columns = ResultColumns.failed(
                self.store.batch_keys(batch["id"]),
                "results_unavailable",
                f"results of batch {api_id} are no longer available: {decision.message}",
            )
        if self.output_spec is not None:
            self._check_answers(columns)
        with self.store.atomic() as conn:
            self.store.store_results(conn, batch["id"], self.model, columns)
            self.store.update_batch_in(conn, batch["id"], state="collected", error=None)

    def _check_answers(self, columns: ResultColumns) -> None:
        """Mark structured answers that do not parse or fail the schema ``invalid_output``."""
        assert self.output_spec is not None
        check = self.output_spec.check
        for pos, code in enumerate(columns.statuses):
            if code == _SUCCEEDED:
                reason = check(columns.answers[pos])
                if reason is not None:
                    columns.mark(pos, "invalid_output", "invalid_output", reason)

    def _plan_retries(self) -> None:
        keys, _ = self._layout()
        view = self._view()
        retry: dict[int, list[str]] = defaultdict(list)
        for i in np.flatnonzero(self._retry_mask(view)):
            retry[int(view.attempts[i]) + 1].append(keys[i])
        if not retry:
            return
        with self.store.atomic() as conn:
            in_flight = self.store.in_flight_keys(conn)
            for attempt, chosen in retry.items():
                self._plan_batches(conn, [k for k in chosen if k not in in_flight], attempt)

    def _plan_batches(self, conn: Any, keys: Sequence[str], attempt: int, mode: str | None = None) -> None:
        """Plan units that send ``keys`` in ``mode`` (default: the job's), within the batch limits."""
        if not keys or self._stopping:
            return
        self._unrelated.clear()  # pending again: other jobs' units may carry these keys
        spec = self._record["spec"]
        missing = [k for k in keys if k not in self._lines]
        if missing:
            self._lines.update((k, make_line(k, b)) for k, b in self.store.request_bodies(missing).items())
        for chunk in chunk_requests(
            select_lines(self._lines, keys),
            max_requests=batch_size(spec, self._client),
            max_bytes=int(spec.get("chunk_bytes") or MAX_BATCH_BYTES),
        ):
            batch_id = self.store.add_batch(
                conn,
                job_id=self.job_id,
                keys=chunk.keys,
                body=chunk.stored(),
                attempt=attempt,
                owner=me(),
                mode=mode or self.mode,
            )
            if not chunk.streamed:
                self._batch_bodies[batch_id] = chunk.body

    def _finish_if_done(self) -> bool:
        status = self._record["status"]
        pending = self._pending()
        if status == "running" and pending:
            if not any(self._relevant(b, pending) for b in self.store.batches(states=ACTIVE_STATES)):
                # Waiting on nothing: the batch that carried these keys (another job's) was
                # refused or abandoned. Send them ourselves.
                with self.store.atomic() as conn:
                    self._plan_unsent(conn, self.store.in_flight_keys(conn))
            return False
        keys, _ = self._layout()
        for batch in self.store.batches(states=ACTIVE_STATES):
            if batch["job_id"] == self.job_id or not set(keys).isdisjoint(self.store.batch_keys(batch["id"])):
                if batch["state"] == "submitting" and status in ("canceled", "failed"):
                    continue
                return False
        if self._record["status"] == "running":
            self.store.set_job_status(self.job_id, "ended")
            self._record["status"] = "ended"
            if self._hedge_plan() is not None:
                self._finished_at = self.clock()
        # Request bodies are only needed to create batches; a retry reads them back from the store.
        self._lines.clear()
        self._batch_bodies.clear()
        return True


class _Pending:
    """The keys a job still waits for, as a mask over its distinct keys.

    The worker asks every round whether anything is pending and, only for batches of other
    jobs, whether they carry a pending key; the set of keys is built for that alone.
    """

    def __init__(self, keys: Sequence[str], mask: np.ndarray) -> None:
        self._keys = keys
        self._mask = mask
        self._set: set[str] | None = None

    def __bool__(self) -> bool:
        return bool(self._mask.any())

    def isdisjoint(self, other: Iterable[str]) -> bool:
        if self._set is None:
            keys = self._keys
            self._set = {keys[int(i)] for i in np.flatnonzero(self._mask)}
        return self._set.isdisjoint(other)


def _download_error(job_id: str, api_id: str, reason: str) -> ResultsDownloadError:
    return ResultsDownloadError(
        f"job {job_id} stopped: {reason}. The batch has ended and its answers are kept by the API for 29 days "
        f"after it was created; nothing was sent or paid again. Check the network connection (a proxy or VPN "
        f"that cuts long downloads), then re-run the same call or batchkit.Job.load({job_id!r}).retry() to "
        f"download them.",
        job_id=job_id,
        batch_id=api_id,
    )


def _reraise(failure: CallFailed) -> NoReturn:
    """Raise the SDK's own error (untouched: wrapping it would add nothing here)."""
    raise failure.__cause__ or failure


def _live_job_ids() -> set[str]:
    return {job_id for (_, job_id) in list(Job._live.keys())}


def _finish_creating_at_exit() -> None:
    """At interpreter exit: let every running worker create what it planned, then say how to go on.

    Runs before the interpreter stops its daemon threads (``threading``'s own exit hooks, the
    ones ``concurrent.futures`` uses; plain ``atexit`` where those are missing).
    """
    running = [job for job in list(Job._live.values()) if job._running]
    if not running:
        return
    for job in running:
        job._exiting.set()
        job._wake.set()
    deadline = time.monotonic() + EXIT_GRACE
    for job in running:
        job._done.wait(max(0.0, deadline - time.monotonic()))
    for job in running:
        note = job._exit_note()
        if note:
            print(note, file=sys.stderr)


def _register_exit_hook() -> None:
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(_finish_creating_at_exit)
    except RuntimeError:  # no such hook, or the interpreter is already shutting down
        atexit.register(_finish_creating_at_exit)


_register_exit_hook()


# --------------------------------------------------------------------------- opening


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


def open_job(
    store: Store,
    client: anthropic.Anthropic | None,
    frame: pd.DataFrame | None,
    plan: Plan,
    template: RequestTemplate,
    *,
    kind: str,
    output: str,
    spec: dict[str, Any],
    mode: str = "batch",
    mode_reason: str | None = None,
) -> Job:
    """Find the job this call already is, or write it down with its planned units.

    ``mode`` is how its requests go (``batch`` or ``realtime``, the ``auto`` choice already made)
    and ``mode_reason`` why; the same call re-run in another mode sends what it has left that way.
    The job takes ``plan.lines`` over as its own (no copy of a million request bodies).
    ``frame`` is the pandas DataFrame the call read, kept for :meth:`Job.to_frame`; None for a
    call over any other table (a job needs no frame: its rows are its request keys).
    """
    fp = fingerprint(kind, output, plan.row_keys)
    job_id = store.find_job(fp)
    batch_bodies: dict[int, bytes] = {}
    record = None
    if job_id is None:
        with store.atomic() as conn:
            job_id = store.find_job(fp)  # another process may have won the race
            if job_id is None:
                job_id = "job_" + fp[:16]
                record = store.insert_job(
                    conn,
                    job_id=job_id,
                    fingerprint=fp,
                    model=template.model,
                    kind=kind,
                    output=output,
                    spec=spec,
                    row_keys=plan.row_keys,
                    skipped=plan.skipped,
                    mode=mode,
                    mode_reason=mode_reason,
                )
                answered = store.answered(plan.lines)
                in_flight = store.in_flight_keys(conn)
                skip = answered | in_flight
                to_send = select_lines(plan.lines, [k for k in plan.lines if k not in skip]) if skip else plan.lines
                chunks = []
                if spec.get("cache") == "prime" and len(to_send) > 1 and mode == "batch":
                    # A one-request batch first writes the shared prefix to the cache; the rest
                    # are created only once it has ended, so they read it (attempt 0 = primer).
                    primer = next(iter(to_send))
                    chunks.append((0, chunk_requests({primer: to_send[primer]})[0]))
                    to_send = {k: b for k, b in to_send.items() if k != primer}
                size, max_bytes = batch_size(spec, client), spec["chunk_bytes"]
                chunks += [(1, chunk) for chunk in chunk_requests(to_send, max_requests=size, max_bytes=max_bytes)]
                for attempt, chunk in chunks:
                    batch_id = store.add_batch(
                        conn,
                        job_id=job_id,
                        keys=chunk.keys,
                        body=chunk.stored(),
                        attempt=attempt,
                        owner=me(),
                        mode=mode,
                    )
                    if not chunk.streamed:  # images: built once, read back from the store to send
                        batch_bodies[batch_id] = chunk.body
            crashpoint("after_intent")
    elif (store.load_job(job_id) or {}).get("mode", "batch") != mode:
        with store.atomic() as conn:  # the same call in another mode: what is left goes that way
            store.set_job_mode(conn, job_id, mode, mode_reason)
    job = Job._attach(job_id, store, client, frame=frame, lines=plan.lines, batch_bodies=batch_bodies, record=record)
    if record is None:
        job._record.update(mode=mode, mode_reason=mode_reason)
    if job.status == "failed":
        job._resume()  # the same call again, presumably after fixing what the API refused
    return job.start()
