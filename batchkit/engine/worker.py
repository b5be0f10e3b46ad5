"""A job's worker: one round after another on a worker thread until every row has its outcome.

Each round (:meth:`Worker.step`) creates the units the store says are planned (held by the
workspace's processing queue until there is room), polls the running ones and stores what they
answered (:class:`~batchkit.engine.collect.Collector`), lets the deadline hedge act
(:class:`~batchkit.engine.hedge.DeadlineHedge`), plans the resubmission of transient failures,
and ends the job once nothing it waits for is in flight. Between rounds it sleeps by its
backend's poll schedule, woken early by a create, a cancel, or the hedge.

Each job has at most one worker per process (:mod:`batchkit.engine.registry`). The caller's
thread only plans and waits, so a notebook cell stays interruptible: Ctrl-C detaches, or, for
requests sent one by one, stops sending (:meth:`Worker.stop_sending`).
"""

from __future__ import annotations

import shlex
import sys
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from batchkit.core import _json
from batchkit.core.keys import params_key
from batchkit.core.plan import make_line
from batchkit.core.results import ANSWERED, STATUS_CODE
from batchkit.core.states import AWAITING_RESULTS, JobState, SendMode, UnitState
from batchkit.errors import APIRefusedError
from batchkit.stores.ownership import owns

from . import registry
from . import workers as _workers
from .collect import Collector
from .hedge import DeadlineHedge
from .outcomes import Pending, ResultReader
from .stops import stopped
from .units import Units

if TYPE_CHECKING:
    from batchkit.stores.transaction import Transaction

_AWAITING = tuple(AWAITING_RESULTS)  # units whose requests have no stored result yet

__all__ = ["Worker"]

_STARTED = (UnitState.SUBMITTING, UnitState.IN_PROGRESS, UnitState.CANCELING)
_RUNNING = (UnitState.IN_PROGRESS, UnitState.CANCELING)


class Worker:
    """The loop of one job in this process, and the state the caller's thread waits on.

    ``done`` is set when the loop returns; ``error`` holds what it stopped on, for the waiting
    thread to raise; ``wake`` ends the current sleep.
    """

    def __init__(self, units: Units, reader: ResultReader, hedge: DeadlineHedge, poll_interval: float | None) -> None:
        self.units = units
        self.reader = reader
        self.hedge = hedge
        self.collector = Collector(units, reader.output_spec)
        self.store = units.store
        self.job_id = units.job_id
        self.record = units.record
        self.poll_interval = poll_interval
        self.signals = units.signals
        self.done = units.signals.done
        self.wake = units.signals.wake
        self.exiting = units.signals.exiting  # the interpreter is exiting: create what is planned, then stop
        self.running = False  # a worker is looping (set and cleared under registry.LOCK)
        self.again = False  # start() was called while the worker was finishing: go round again
        self._owner: object = None  # the job's handle, held while the loop runs

    @property
    def error(self) -> BaseException | None:
        """What the loop stopped on, for the waiting thread to raise."""
        return self.signals.error

    @error.setter
    def error(self, error: BaseException | None) -> None:
        self.signals.error = error

    def start(self, owner: object) -> None:
        """Run the loop on a worker thread (idempotent). ``owner`` (the job's handle) is kept alive
        while the loop runs, so a re-attach in this process finds the running job, not a new one."""
        with registry.LOCK:
            if self.running:
                self.again = True  # the worker may be deciding to stop: make it look again
                self.wake.set()
                return
            if self.units.status() != JobState.RUNNING:
                self.done.set()
                return
            self.done.clear()
            self.error = None
            self.units.stopping = False
            self.exiting.clear()
            self.running = True
            self._owner = owner
            _workers.start(self._run, f"batchkit-{self.job_id}")  # a kept thread: its malloc arena is warm

    def exit_now(self) -> None:
        """The interpreter is exiting: create what is planned, then stop."""
        self.exiting.set()
        self.wake.set()

    def _run(self) -> None:
        try:
            if self._loop():
                return
        except BaseException as exc:  # surfaced to the waiting thread
            self.error = exc
        self.units.leave_queue()
        with registry.LOCK:
            self.running = False
            self._owner = None
            self.done.set()

    def _loop(self) -> bool:
        """Rounds until the job is done (True: the loop has finished, its flags set) or the process exits."""
        tick = 0
        schedule: tuple[float, ...] = ()
        schedule_mode: str | None = None  # this run's: a retry starts a new run, and reads it anew
        while True:
            if self.step():
                with registry.LOCK:
                    if not self.again:
                        self.running = False
                        self._owner = None
                        self.done.set()
                        self.units.leave_queue()
                        return True
                    self.again = False
                continue
            if self.exiting.is_set():
                return False  # batches are created; the results are for a later process to collect
            # Resolved only now: a job with nothing to send never needs a client or a key.
            backend = self.units.backend_of(self.round_mode())
            if backend.mode != schedule_mode:
                schedule, tick, schedule_mode = backend.poll_schedule(self.poll_interval), 0, backend.mode
            self.wake.wait(self.hedge.wait(schedule[min(tick, len(schedule) - 1)]))
            self.wake.clear()
            tick += 1

    @property
    def mode(self) -> str:
        return str(self.record.get("mode") or SendMode.BATCH)

    def round_mode(self) -> str:
        """The mode whose pace the worker keeps: that of a unit of the job being sent one by one
        (its answers are stored every round), else the job's own."""
        for batch in self.store.batches(job_id=self.job_id, states=_STARTED):
            if self.units.streams(batch["mode"]):
                return str(batch["mode"])
        return self.mode

    # ------------------------------------------------------------------ one round of work

    def step(self) -> bool:
        """Create planned batches, poll running ones, collect ended ones, plan retries."""
        pending = self.reader.pending()
        if self.units.stopping:  # Ctrl-C: send nothing more, keep what the units on the wire bring back
            self.poll(pending)
            return not any(
                self.units.streams(b["mode"]) for b in self.store.batches(job_id=self.job_id, states=_RUNNING)
            )
        self.create_planned(pending)
        if self.exiting.is_set():
            return False
        held = self.holds_creates()
        used = self.units.sync_queue() if held else 0
        self.poll(pending)
        if held and self.units.sync_queue() < used:  # batches ended: their room goes to what is held, now
            self.create_planned(self.reader.pending())
        if self.record["status"] == JobState.RUNNING:
            self.hedge.round()
            self.plan_retries()
        return self.finish_if_done()

    def poll(self, pending: Pending) -> None:
        """Poll every unit the job waits on; a unit found lost stops the job."""
        self.units.lost_now = False
        self.collector.poll(pending)
        if self.units.lost_now:
            self.error = stopped(self.store, self.job_id, self.reader.model, self.record["spec"].get("prices"))

    def holds_creates(self) -> bool:
        """Batches of this job are planned and not created (e.g. held for room in the queue)."""
        return self.mode == SendMode.BATCH and bool(
            self.store.batches(job_id=self.job_id, states=(UnitState.SUBMITTING,))
        )

    def create_planned(self, pending: Pending) -> None:
        """Create the planned units this job waits for (its own, or those of a dead process)."""
        if self.holds_creates():
            self.units.sync_queue()  # batches created by another process, or before a restart, count
        queue = self.units.queue
        if queue is not None:  # batches given up since they were held (a hedge, a cancel) wait no more
            queue.withdraw(self.job_id, keep={int(b["id"]) for b in self.store.batches(states=(UnitState.SUBMITTING,))})
        priming = any(
            b["attempt"] == 0 and b["state"] in AWAITING_RESULTS for b in self.store.batches(job_id=self.job_id)
        )
        for batch in self.store.batches(states=(UnitState.SUBMITTING,)):
            if self.record["status"] == JobState.FAILED:
                return  # a create was refused: nothing more is sent (not even another job's batch)
            mine = batch["job_id"] == self.job_id
            if not self.units.relevant(batch, pending) or (mine and self.record["status"] != JobState.RUNNING):
                continue
            if priming and mine and batch["attempt"] != 0:
                continue  # wait for the cache-priming batch to end
            if owns(batch):
                if mine or batch["job_id"] not in registry.live_job_ids():
                    self.units.create(batch)
            elif self.store.take_over(batch, states=(UnitState.SUBMITTING,)):
                self.units.reconcile(batch)

    # ------------------------------------------------------------------ planning

    def plan_retries(self) -> None:
        """Plan the resubmission of the keys the reader's retry rule picks, by their next attempt."""
        keys, _ = self.reader.layout()
        view = self.reader.view()
        retry: dict[int, list[str]] = defaultdict(list)
        for i in np.flatnonzero(self.reader.retry_mask(view)):
            retry[int(view.attempts[i]) + 1].append(keys[i])
        if not retry:
            return
        with self.store.transaction() as tx:
            in_flight = tx.in_flight_keys()
            for attempt, chosen in retry.items():
                self.units.plan_batches(tx, [k for k in chosen if k not in in_flight], attempt)

    def plan_unsent(self, tx: Transaction, in_flight: set[str]) -> None:
        """Plan batches for the keys that have no result and are in no batch still running."""
        keys, _ = self.reader.layout()
        view = self.reader.view()
        self.units.plan_batches(tx, [keys[i] for i in np.flatnonzero(view.codes == 0) if keys[i] not in in_flight], 1)

    def plan_retry(self, statuses: list[str], status: str) -> bool:
        """Plan the rows that ended with one of ``statuses`` again (``job.retry()``), and the rows a
        refusal or a cancel left unsent; the job runs again. Whether anything was planned."""
        codes = [STATUS_CODE[s] for s in statuses if s in STATUS_CODE and STATUS_CODE[s] not in ANSWERED]
        keys, _ = self.reader.layout()
        view = self.reader.view()
        chosen = [keys[i] for i in np.flatnonzero(np.isin(view.codes, codes))]
        # Rows a refusal left unsent (a failed job), or a cancel left uncreated, have no result.
        unsent = status == JobState.FAILED or (status == JobState.CANCELED and "canceled" in statuses)
        if not chosen and not unsent:
            return False
        with self.store.transaction() as tx:
            in_flight = tx.in_flight_keys()
            self.units.plan_batches(tx, [k for k in chosen if k not in in_flight], attempt=2)
            if unsent:
                self.plan_unsent(tx, in_flight)
            tx.run_job(self.job_id)
        self.record["status"] = JobState.RUNNING
        return True

    def resume(self) -> None:
        """Send what a refusal left unsent, e.g. when the same call is re-run after the fix."""
        with self.store.transaction() as tx:
            self.plan_unsent(tx, tx.in_flight_keys())
            tx.run_job(self.job_id)
        self.record["status"] = JobState.RUNNING

    def plan_truncated(self, max_tokens: int) -> bool:
        """Re-plan the truncated rows as new requests with ``max_tokens`` (their old answers stay);
        whether there were any."""
        keys, _ = self.reader.layout()
        view = self.reader.view()
        truncated = [keys[i] for i in np.flatnonzero(view.codes == STATUS_CODE["truncated"])]
        if not truncated:
            return False
        new_key_of: dict[str, str] = {}
        new_lines: dict[str, bytes] = {}
        for key, body in self.store.request_bodies(truncated).items():
            params = _json.loads(body)
            params["max_tokens"] = max_tokens
            new_body = _json.dumps_sorted(params)
            new_key_of[key] = params_key(params)
            new_lines[new_key_of[key]] = make_line(new_key_of[key], new_body)
        row_keys = [new_key_of.get(k, k) if k else k for k in self.reader.row_keys]
        with self.store.transaction() as tx:
            tx.set_row_keys(self.job_id, row_keys)
            answered = self.store.answered(new_lines)
            in_flight = tx.in_flight_keys()
            self.units.lines.update(new_lines)
            to_plan = [k for k in new_lines if k not in answered and k not in in_flight]
            self.units.plan_batches(tx, to_plan, 1, max_tokens=max_tokens)
            tx.run_job(self.job_id)
        self.record.update(self.store.load_job(self.job_id) or {})  # in place: every part shares it
        self.reader.forget_layout()
        return True

    def finish_if_done(self) -> bool:
        """End the job once nothing it waits for is in flight; whether the loop is done."""
        status = self.record["status"]
        pending = self.reader.pending()
        if status == JobState.RUNNING and pending:
            if not any(self.units.relevant(b, pending) for b in self.store.batches(states=_AWAITING)):
                # Waiting on nothing: the batch that carried these keys (another job's) was
                # refused or abandoned. Send them ourselves.
                with self.store.transaction() as tx:
                    self.plan_unsent(tx, tx.in_flight_keys())
            return False
        keys, _ = self.reader.layout()
        mine: set[str] | None = None  # the job's keys, made once (a partitioned run has several batches in flight)
        for batch in self.store.batches(states=_AWAITING):
            if batch["job_id"] != self.job_id:  # most units of other jobs are ruled out by the keys' digests
                if not self.reader.may_carry(batch):
                    continue
                mine = set(keys) if mine is None else mine
                if mine.isdisjoint(self.store.batch_keys(batch["id"])):
                    continue
            if batch["state"] == UnitState.SUBMITTING and status in (JobState.CANCELED, JobState.FAILED):
                continue
            return False
        if self.record["status"] == JobState.RUNNING:
            self.store.set_job_status(self.job_id, JobState.ENDED)
            self.record["status"] = JobState.ENDED
            self.hedge.mark_finished()
        # Request bodies are only needed to create batches; a retry reads them back from the store.
        self.units.lines.clear()
        self.units.batch_bodies.clear()
        return True

    # ------------------------------------------------------------------ stopping

    def stop_sending(self) -> bool:
        """Ctrl-C on a job whose requests go one by one: stop sending, keep what came back.

        Returns False when nothing of the job is being sent that way (its batches keep running
        without this process, and the caller only detaches).
        """
        streaming = self.units.busy_backends()
        if not streaming:
            return False
        self.units.stopping = True
        for backend in streaming:
            backend.stop_all()
        self.wake.set()
        self.done.wait(30)  # the requests on the wire come back and are stored
        summary = self.reader.summary()
        answered = sum(n for s, n in summary.by_status.items() if s in ("succeeded", "truncated"))
        print(
            f"\nbatchkit: stopped sending job {self.job_id} ({self.mode}). {answered:,} of {summary.rows:,} rows "
            f"are answered and kept in the store; nothing answered is sent again. Re-run the cell, or "
            f"batchkit.Job.load({self.job_id!r}).wait(), to send the rest.",
            file=sys.stderr,
        )
        return True

    def exit_note(self) -> str:
        """What became of this job as the process exits, and how to pick it up."""
        if isinstance(self.error, APIRefusedError):
            return f"batchkit: {self.error}"
        if self.error is not None:
            return f"batchkit: job {self.job_id} stopped: {self.error!r}"
        status = self.units.status()
        if status != JobState.RUNNING:
            if status != JobState.FAILED:
                return ""
            return f"batchkit: {stopped(self.store, self.job_id, self.reader.model, self.record['spec'].get('prices'))}"
        batches = self.store.batches(job_id=self.job_id, states=_AWAITING)
        store = shlex.quote(str(self.store.path))
        if any(self.units.streams(b["mode"]) for b in batches):  # requests sent one by one stop with the process
            return (
                f"batchkit: job {self.job_id} was sending in realtime when this process exited; the answers "
                f"that came back are stored. `batchkit wait {self.job_id} --store {store}` (or re-running the "
                f"same call) sends only the rows with no answer."
            )
        created = sum(1 for b in batches if b["api_id"])
        left = len(batches) - created
        head = f"batchkit: job {self.job_id} keeps running without this process: "
        if left and self.done.is_set():
            head += (
                f"{created} batch(es) created, {left} not yet (waiting for room in the processing queue, or "
                "for the cache-priming batch). "
            )
        elif left:
            head += f"{left} batch(es) were still being created after {registry.EXIT_GRACE:g} s; exiting anyway. "
        else:
            head += f"its {created} batch(es) are created. "
        return (
            head + f"Nothing is lost: `batchkit wait {self.job_id} --store {store}` (or "
            f"batchkit.Job.load({self.job_id!r}, store={str(self.store.path)!r}).wait()) creates what is left "
            f"and collects the answers; re-running the same call picks it up too."
        )
