"""A job's units as they run: polled, and their answers streamed into the store.

:class:`Collector` is the part of a job's worker that watches units already sent. Each round it
asks the API about every unit this job waits on (its own, or another job's that carries keys it
waits for), records what changed, and stores an ended batch's results in one transaction
(:meth:`Collector.collect`); a unit sent one by one (realtime) hands its answers over as they
come, each group stored at once so a kernel dying mid-run keeps them. A unit the API no longer
knows is ``lost`` (:meth:`batchkit.engine.units.Units.lose`); a unit another live process sends
one by one is left to it, and taken over once that process is dead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchkit._crash import crashpoint
from batchkit.backends import RESULTS_CUT, Action, Backend, CallFailed
from batchkit.core.results import STATUS_CODE, ResultColumns
from batchkit.core.states import SENT_UNITS, JobState, UnitState
from batchkit.core.structured import OutputSpec
from batchkit.stores.ownership import owner_alive

from .stops import download_error, reraise
from .units import Keys, Units

__all__ = ["Collector"]

_SUCCEEDED = STATUS_CODE["succeeded"]
_RUNNING = (UnitState.IN_PROGRESS, UnitState.CANCELING)


class Collector:
    """Polls a job's units and stores what they answered (``units``: the job's :class:`Units`)."""

    def __init__(self, units: Units, output_spec: OutputSpec | None) -> None:
        self.units = units
        self.store = units.store
        self.job_id = units.job_id
        self.output_spec = output_spec

    def poll(self, pending: Keys) -> None:
        """Poll every unit this job waits on, once; store what ended or came back."""
        for batch in self.store.batches(states=tuple(SENT_UNITS)):
            if not batch["api_id"] or not self.units.relevant(batch, pending):
                continue
            backend = self.units.backend_of(batch["mode"])
            if self._sent_elsewhere(batch, backend):
                continue
            if (
                batch["state"] == UnitState.IN_PROGRESS
                and batch["job_id"] == self.job_id
                and self.units.streams(batch["mode"])
                and self.units.status() == JobState.CANCELED
            ):  # canceled from another process: stop sending
                self.units.record_unit(batch, backend.cancel(batch["api_id"]))
                batch = {**batch, "state": UnitState.CANCELING}
            if batch["state"] != UnitState.ENDED and not self._track(batch, backend):
                continue
            if backend.streams:
                self.store_answers(batch, backend, final=True)
            else:
                self.collect(batch)

    def _sent_elsewhere(self, batch: Mapping[str, Any], backend: Backend) -> bool:
        """A unit sent one by one by another job of this process, or by another process: only
        its sender can collect it. While that owner lives, wait for the answers it stores; once
        it is dead, one process takes the unit over and ends it (its unanswered keys are sent
        again; only what was on the wire may have been paid twice)."""
        return (
            backend.local
            and not self.units.sent_here(batch)
            and (owner_alive(batch) or not self.store.take_over(batch, states=tuple(SENT_UNITS)))
        )

    def _track(self, batch: Mapping[str, Any], backend: Backend) -> bool:
        """Ask the API about a running unit and record it; whether it has ended."""
        crashpoint("polling")
        try:
            current = backend.track(batch["api_id"])
        except CallFailed as failure:
            if failure.decision.action is Action.RETRY:
                return False  # a blip: ask again next round
            if failure.decision.action is Action.FAIL_ROWS:  # 404: the API (as we reach it) forgot it
                if self.store.take_over(batch):
                    self.units.lose(batch, failure.decision)
                # else its live owner may reach an API that knows it (another key, another
                # simulator): it collects it, or finds it lost itself
                return False
            reraise(failure)
        state = str(current.state)
        if state != UnitState.ENDED and backend.streams:
            self.store_answers(batch, backend)  # what came back so far, kept at once
        if state != batch["state"] or state == UnitState.ENDED:
            self.units.record_unit(batch, current)
        return state == UnitState.ENDED

    def store_answers(self, batch: Mapping[str, Any], backend: Backend, *, final: bool = False) -> None:
        """Keep the answers a streaming (realtime) unit handed over since the last round, in one
        small transaction; ``final``: the unit has ended, so everything it has left is stored and
        it is collected (or, when it ended on a refusal, the job stops)."""
        while (outcome := self._store_group(batch, backend)) == "stored" and final:
            pass
        if final and outcome == "empty":
            self.store.update_batch(batch["id"], state=UnitState.COLLECTED)

    def _store_group(self, batch: Mapping[str, Any], backend: Backend) -> str:
        """Store one group of a streaming unit's answers: ``stored``, ``empty`` (none came) or
        ``stopped`` (the unit ended on a refusal: the job stops)."""
        try:
            columns = backend.collect(batch["api_id"])
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RETRY:
                return "empty"
            with self.store.transaction() as tx:
                tx.update_batch(batch["id"], state=UnitState.COLLECTED)
            if batch["job_id"] == self.job_id:
                self.units.stop(batch, decision, failure.__cause__ or failure)
            return "stopped"
        if not columns.keys and not columns.lost:
            return "empty"
        if self.output_spec is not None:
            self.check_answers(columns)
        with self.store.transaction() as tx:
            tx.add_answers(
                unit=batch["id"],
                job_id=batch["job_id"],
                attempt=batch["attempt"],
                mode=batch["mode"],
                model=str(self.units.record["model"]),
                columns=columns,
            )
        crashpoint("realtime_stored")  # a kernel dying mid-run: what is stored stays
        return "stored"

    def collect(self, batch: Mapping[str, Any]) -> None:
        """Stream an ended batch's results into the store, all in one transaction."""
        api_id = batch["api_id"]
        try:
            columns = self.units.backend_of(batch["mode"]).collect(api_id)
        except CallFailed as failure:
            decision = failure.decision
            if decision.action is Action.RETRY:
                return  # a refused download (5xx, 429): the batch stays "ended" and is read again next round
            if decision.error_type == RESULTS_CUT:
                # Cut every time it was read: the job stops and says so; the batch stays "ended",
                # so re-running the call downloads it again and never sends its requests again.
                with self.store.transaction() as tx:
                    tx.update_batch(batch["id"], error=decision.message)
                    tx.fail_job(self.job_id)
                self.units.record["status"] = JobState.FAILED
                raise download_error(self.job_id, api_id, decision.message) from failure.__cause__
            if decision.action is not Action.FAIL_ROWS:
                reraise(failure)
            # Results are gone (archived 29 days after creation): record that, do not loop.
            columns = ResultColumns.failed(
                self.store.batch_keys(batch["id"]),
                "results_unavailable",
                f"results of batch {api_id} are no longer available: {decision.message}",
            )
        if self.output_spec is not None:
            self.check_answers(columns)
        with self.store.transaction() as tx:
            tx.put_results(batch["id"], str(self.units.record["model"]), columns)
            tx.update_batch(batch["id"], state=UnitState.COLLECTED, error=None)

    def check_answers(self, columns: ResultColumns) -> None:
        """Mark structured answers that do not parse or fail the schema ``invalid_output``."""
        assert self.output_spec is not None
        check = self.output_spec.check
        for pos, code in enumerate(columns.statuses):
            if code == _SUCCEEDED:
                reason = check(columns.answers[pos])
                if reason is not None:
                    columns.mark(pos, "invalid_output", "invalid_output", reason)
