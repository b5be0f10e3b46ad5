"""The public handle of a job over the Message Batches API: status, wait, cancel, retry, results.

A :class:`Job` is one call of ``df.claude.batch`` / ``submit`` written down in the store. Its
state lives in the store, not in this object, so a job can be re-attached from any process:
re-running the same call finds the job by its fingerprint (the hash of every row's request
key), and :meth:`Job.load` finds it by id (:mod:`batchkit.engine.registry` keeps this
process's one object per job).

The handle is what users call; each reason to change has its own part, held by composition: the
loop on a worker thread (:class:`~batchkit.engine.worker.Worker`: create, poll, collect, retry,
end), acting on one unit (:class:`~batchkit.engine.units.Units`: plan, create, adopt, cancel,
stop, lose), polling units and storing their answers (:class:`~batchkit.engine.collect.Collector`),
the deadline hedge (:class:`~batchkit.engine.hedge.DeadlineHedge`), reading results with their
caches (:class:`~batchkit.engine.outcomes.ResultReader`), and the errors a stopped job ends with
(:mod:`batchkit.engine.stops`).

The caller's thread only plans (pure work plus one store transaction) and waits, so a notebook
cell stays interruptible and a KeyboardInterrupt detaches without canceling anything.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from html import escape
from typing import Any

import anthropic
import numpy as np
import pandas as pd

from batchkit.backends import Backend
from batchkit.backends.queue import QueueView
from batchkit.core.keys import fingerprint
from batchkit.core.options import JobSpec
from batchkit.core.plan import Plan, RequestTemplate
from batchkit.core.results import Summary
from batchkit.core.states import JobState, SendMode, UnitState
from batchkit.core.structured import OutputSpec
from batchkit.costs.accounting import JobCost
from batchkit.errors import APIRefusedError, BatchLostError, JobNotFoundError
from batchkit.stores.ownership import owner_alive, owns
from batchkit.stores.store import Store

from . import registry, shown
from .hedge import DeadlineHedge, HedgeReport
from .locations import default_store_path
from .outcomes import ResultReader, View
from .stops import stopped
from .units import Signals, Units, write_job
from .worker import Worker

__all__ = ["Job", "open_job"]


class Job:
    """One ``df.claude`` call and everything it sent and got back.

    Create jobs with ``df.claude.submit(...)``; re-attach with :meth:`Job.load` or by
    re-running the same call.
    """

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
        self.frame = frame
        self._record = record  # the stored row, shared (and updated in place) by every part below
        self.spec = JobSpec.from_json(record["spec"])  # typed; older specs load with today's defaults
        self.output_spec = OutputSpec.from_json(self.spec.output_spec) if self.spec.output_spec else None
        self.reader = ResultReader(job_id, store, record, self.spec, self.output_spec)
        self.units = Units(
            job_id,
            store,
            record,
            self.spec,
            client=client,
            lines=lines if lines is not None else {},  # the job's own from here on
            signals=Signals(),
        )
        self.hedge_part = DeadlineHedge(self.spec, record, self.units, self.reader)
        self.worker = Worker(self.units, self.reader, self.hedge_part, self.spec.run.poll_interval)

    # ------------------------------------------------------------------ identity and options

    @property
    def record(self) -> dict[str, Any]:
        """The job's row as the store holds it (read it; the job changes it)."""
        return self._record

    @property
    def kind(self) -> str:
        """``text``, ``classify`` or ``extract``."""
        return str(self._record.get("kind", "text"))

    @property
    def created_at(self) -> str:
        return str(self._record["created_at"])

    @property
    def model(self) -> str:
        return self.reader.model

    @property
    def output(self) -> str:
        """The (first) output column's name."""
        return self.reader.output

    @property
    def row_keys(self) -> list[str | None]:
        """Each row's request key (None for a skipped row)."""
        return self.reader.row_keys

    @property
    def skipped(self) -> dict[int, str]:
        """Row position → why that row was not sent."""
        return self.reader.skipped

    @property
    def max_retries(self) -> int:
        return self.reader.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self.reader.max_retries = value

    @property
    def max_invalid_retries(self) -> int:
        return self.reader.max_invalid_retries

    @max_invalid_retries.setter
    def max_invalid_retries(self, value: int) -> None:
        self.reader.max_invalid_retries = value

    @property
    def mode(self) -> str:
        """How the job sends what it has left: ``"batch"`` (Message Batches, half price) or
        ``"realtime"`` (``POST /v1/messages``, standard price, answers in seconds)."""
        return str(self._record.get("mode") or SendMode.BATCH)

    @property
    def mode_reason(self) -> str:
        """Why the job runs in its :attr:`mode` (the ``auto`` rule's reasoning, or that it was asked)."""
        reason = self._record.get("mode_reason")
        return str(reason) if reason else f"mode={self.mode!r} was asked"

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, resolved only when the job first needs the network."""
        return self.units.client

    @property
    def backend(self) -> Backend:
        """How this job's requests reach Claude, in the job's :attr:`mode`."""
        return self.units.backend_of(self.mode)

    @property
    def queue(self) -> QueueView | None:
        """The workspace's processing queue as this process knows it (shared by every job of the
        workspace; see :mod:`batchkit.backends.queue`); None before the job has needed a client."""
        return self.units.queue

    # ------------------------------------------------------------------ the deadline

    @property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch on the server's clock, which a ``deadline=`` is kept on: ``time.time``
        for Anthropic's API, the simulated time for batchkit's simulator (see
        :func:`batchkit.backends.clients.server_clock`). Assign another callable to drive the hedge by it."""
        return self.hedge_part.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.hedge_part.clock = clock

    @property
    def deadline(self) -> dt.datetime | None:
        """When every row must be answered (UTC, on the server's clock), for a batch job given a
        ``deadline=``; None otherwise."""
        plan = self.hedge_part.plan()
        return None if plan is None else dt.datetime.fromtimestamp(plan.deadline, dt.UTC)

    @property
    def hedged(self) -> bool:
        """Whether the deadline hedge has fired: the job's batches were canceled and what they had
        not answered goes through realtime."""
        return self.hedge_part.hedged

    @property
    def hedge(self) -> HedgeReport | None:
        """What the deadline hedge did — rows and dollars by batch and by realtime, batches canceled,
        rows answered twice (paid both ways, merged once) — for a job with a ``deadline=``; else None.

        >>> print(job.hedge)        # doctest: +SKIP
        deadline hedge: finished 12 s before the deadline; 240 answered by batch ($0.0010), 160 through ...
        """
        return self.hedge_part.report()

    def deadline_text(self) -> str:
        """The progress view's deadline line: when it is, when the hedge will fire, or what it did."""
        return self.hedge_part.deadline_text()

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        line = shown.view("job_line")
        return f"<batchkit.Job {line(self) if line else f'{self.job_id} [{self.status}]'}>"

    def _repr_html_(self) -> str:
        html = shown.view("job_html")
        return str(html(self)) if html else f"<code>{escape(repr(self))}</code>"

    # ------------------------------------------------------------------ attaching

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
        if (str(resolved.path), job_id) in registry.live:
            return cls.attach(job_id, resolved, client)  # the job this process runs, on ``client`` if given
        if resolved.load_job(job_id) is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in the store at {resolved.path}; batchkit.jobs() lists the jobs there",
                job_id=job_id,
            )
        return cls.attach(job_id, resolved, client)

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
        if not isinstance(job_id, str) and isinstance(attrs.get("batchkit_cascade"), str):
            raise JobNotFoundError(
                "this frame came from a model cascade (cascade=[...]): one job per stage. "
                "batchkit.CascadeJob.of(frame) gives its stages, cost and outcomes by stage.",
                job_id=None,
            )
        if not isinstance(job_id, str):
            raise JobNotFoundError(
                f"this {type(frame).__name__} carries no batchkit job id in .attrs (it was not returned by "
                "df.claude.batch/classify/extract, or an operation dropped its attrs). batchkit.jobs() lists "
                "the jobs; batchkit.Job.load(job_id) opens one.",
                job_id=None,
            )
        return cls.load(job_id, store=store if store is not None else attrs.get("batchkit_store"), client=client)

    @classmethod
    def attach(
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
        """This process's object for the job (made now if there is none): one per job and store."""
        key = (str(store.path), job_id)
        with registry.LOCK:
            job = registry.live.get(key)
            if not isinstance(job, cls):
                job = cls(job_id, store=store, client=client, frame=frame, lines=lines, record=record)
                registry.live[key] = job
            else:
                if frame is not None:
                    job.frame = frame
                if client is not None:
                    job.units.switch_client(client)
            job.units.batch_bodies.update(batch_bodies or {})
        return job

    # ------------------------------------------------------------------ state

    @property
    def status(self) -> str:
        """``running`` while any row waits for an answer, then ``ended``, ``canceled`` or ``failed``.

        ``failed``: the API refused the job's requests for a reason a retry cannot fix (no
        credit, a bad key, …); nothing more is sent until the call is re-run or ``retry()``.
        """
        return self.units.status()

    @property
    def done(self) -> bool:
        return self.status != JobState.RUNNING

    def batches(self) -> pd.DataFrame:
        """The job's batches: API id, state, attempt, request count and timestamps."""
        rows = self.store.batches(job_id=self.job_id)
        columns = ["id", "job_id", "api_id", "state", "owner", "attempt", "n_requests", "intent_at"]
        columns += ["created_at", "ended_at", "expires_at", "request_counts", "error", "mode"]
        return pd.DataFrame(rows, columns=columns).drop(columns=["job_id", "owner"])

    # ------------------------------------------------------------------ the worker, as others see it

    @property
    def request_lines(self) -> MutableMapping[str, bytes]:
        """The job's request lines by key, kept until its units are created (assign ``{}`` to let them go)."""
        return self.units.lines

    @request_lines.setter
    def request_lines(self, lines: MutableMapping[str, bytes]) -> None:
        self.units.lines = lines

    def layout(self) -> tuple[list[str], np.ndarray]:
        """The job's distinct keys, and for each row the position of its key (-1 if skipped)."""
        return self.reader.layout()

    def view(self) -> View:
        """The job's results as arrays over its distinct keys, up to date with the store."""
        return self.reader.view()

    # ------------------------------------------------------------------ running

    def start(self) -> Job:
        """Run the worker in the background (idempotent). Returns the job."""
        self.worker.start(self)
        return self

    def wait(self, timeout: float | None = None) -> Job:
        """Block until every row has its final outcome. Returns the job.

        A KeyboardInterrupt detaches: the batches keep running and the worker keeps collecting;
        re-run the cell or call ``Job.load(job_id).wait()`` to pick up where it is.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the job keeps running).
        """
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        worker = self.worker
        try:
            while not worker.done.wait(0.1):
                if isinstance(worker.error, (APIRefusedError, BatchLostError)):
                    break  # the worker still collects what was sent; the caller hears now
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"job {self.job_id} is still running after {timeout} s; it keeps going — "
                        f"call .wait() again or batchkit.Job.load({self.job_id!r}) later"
                    )
        except KeyboardInterrupt:
            if worker.stop_sending():
                raise
            print(
                f"\nbatchkit: detached from job {self.job_id}. Its batches keep running and nothing "
                f"was canceled. Re-run the cell, or batchkit.Job.load({self.job_id!r}).wait(), to "
                f"pick up the results; job.cancel() stops it.",
                file=sys.stderr,
            )
            raise
        if worker.error is not None:
            error, worker.error = worker.error, None
            raise error
        if self._record["status"] == JobState.FAILED:
            raise stopped(self.store, self.job_id, self.model, self._record["spec"].get("prices"))
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

    def cancel(self) -> Job:
        """Cancel every batch of the job still running; rows not yet answered end ``canceled``.

        Answers that came back before the cancel took effect are kept (and were paid for). A job
        that has already ended is left as it ended (there is nothing to cancel).
        """
        if self.status == JobState.ENDED:
            return self
        # The API first: a cancel that cannot reach it leaves the job exactly as it was.
        self.units.cancel_sent()
        self.store.set_job_status(self.job_id, JobState.CANCELED)
        self._record["status"] = JobState.CANCELED
        for batch in self.store.batches(job_id=self.job_id, states=(UnitState.SUBMITTING,)):
            if owns(batch) or not owner_alive(batch):
                # Not recorded as created; it may have been a moment ago (e.g. by our worker).
                found = self.units.reconcile(batch, adopt_only=True)
                if found is not None and str(found.state) == UnitState.IN_PROGRESS:
                    self.units.cancel_unit(batch, found.id)
        self.units.cancel_sent()  # created by the worker while the job was being canceled
        # Collect what the cancel left behind, so canceled rows are recorded as such.
        self.worker.wake.set()
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
        if not self.worker.plan_retry(list(statuses), self.status):
            return self
        self.start()
        return self.wait() if wait else self

    def resume(self) -> None:
        """Send what a refusal left unsent, e.g. when the same call is re-run after the fix."""
        self.worker.resume()

    def _retry_truncated(self, max_tokens: int, *, wait: bool) -> Job:
        if max_tokens <= self.spec.max_tokens:
            raise ValueError(f"max_tokens={max_tokens} is not more than the job's {self.spec.max_tokens}")
        if not self.worker.plan_truncated(max_tokens):
            return self
        self.start()
        return self.wait() if wait else self

    # ------------------------------------------------------------------ results (the reader's)

    def summary(self) -> Summary:
        return self.reader.summary()

    summary.__doc__ = ResultReader.summary.__doc__  # one text: the reader's

    def failure_counts(self) -> list[tuple[str, str, str, int]]:
        return self.reader.failure_counts()

    failure_counts.__doc__ = ResultReader.failure_counts.__doc__  # one text: the reader's

    def answers(self) -> np.ndarray:
        return self.reader.answers()

    answers.__doc__ = ResultReader.answers.__doc__  # one text: the reader's

    def statuses(self) -> np.ndarray:
        return self.reader.statuses()

    statuses.__doc__ = ResultReader.statuses.__doc__  # one text: the reader's

    def output_values(self) -> dict[str, list[Any]]:
        return self.reader.output_values()

    output_values.__doc__ = ResultReader.output_values.__doc__  # one text: the reader's

    def to_frame(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """The caller's frame with the output column(s) added (a new frame; the input is untouched).

        The pandas front end's view of :meth:`answers`. After :meth:`load` in a fresh process
        pass the original frame; without it the columns come on a plain row-number index.
        """
        return self.reader.to_frame(frame if frame is not None else self.frame)

    result = to_frame

    @property
    def cost(self) -> JobCost:
        """What this job's batches were billed, from the usage in every result they returned.

        Counts every billed result of the job's own batches (answers, truncated answers, and
        answers that failed validation — the model did produce them); errored, expired and
        canceled requests are not billed. Rows answered from the store cost nothing.
        """
        return self.reader.cost(self.hedge_part.answered_twice())

    def outcomes(self) -> pd.DataFrame:
        """One row per input row: status, error, stop reason, tokens, attempts, cost and request key.

        ``cost`` is in dollars, on the first row that asked each request this job paid for (rows
        that repeat a request, or whose answer was already in the store, show 0), so the column
        sums to what the job paid for its answers.
        """
        return self.reader.outcomes(self.frame)


# --------------------------------------------------------------------------- opening


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
    mode: str = SendMode.BATCH,
    mode_reason: str | None = None,
    prices: Any = None,
) -> Job:
    """Find the job this call already is, or write it down with its planned units.

    ``mode`` is how its requests go (``batch`` or ``realtime``, the ``auto`` choice already made)
    and ``mode_reason`` why; the same call re-run in another mode sends what it has left that way.
    ``prices`` is the call's ``prices=`` (its caps decide which units need the 300K-output beta).
    The job takes ``plan.lines`` over as its own (no copy of a million request bodies).
    ``frame`` is the pandas DataFrame the call read, kept for :meth:`Job.to_frame`; None for a
    call over any other table (a job needs no frame: its rows are its request keys).
    """
    fp = fingerprint(kind, output, plan.row_keys)
    job_id = store.find_job(fp)
    batch_bodies: dict[int, bytes] = {}
    record = None
    if job_id is None:
        job_id, record, batch_bodies = write_job(
            store,
            client,
            plan,
            fp,
            model=template.model,
            kind=kind,
            output=output,
            spec=spec,
            mode=mode,
            mode_reason=mode_reason,
            prices=prices,
        )
    elif (store.load_job(job_id) or {}).get("mode", SendMode.BATCH) != mode:
        with store.transaction() as tx:  # the same call in another mode: what is left goes that way
            tx.set_job_mode(job_id, mode, mode_reason)
    job = Job.attach(job_id, store, client, frame=frame, lines=plan.lines, batch_bodies=batch_bodies, record=record)
    job.units.prices = prices
    if record is None:
        job.record.update(mode=mode, mode_reason=mode_reason)
    if job.status == JobState.FAILED:
        job.resume()  # the same call again, presumably after fixing what the API refused
    return job.start()
