"""A write transaction on the job store, carrying the verbs that write.

>>> with store.transaction() as tx:   # doctest: +SKIP
...     tx.put_results(unit_id, model, columns)
...     tx.update_batch(unit_id, state="collected", error=None)

Everything done through one :class:`Transaction` commits together or not at all; a transaction
opened inside another (``tx.transaction()`` or ``store.transaction()``) is a ``SAVEPOINT`` that
rolls back alone (:meth:`batchkit.stores.connection.StoreCore.transaction`). Reads made on the
store while a transaction is open see what it wrote so far (one connection per process), and
reads that must happen under the write lock — the keys in flight while planning — are verbs here.

Callers outside :mod:`batchkit.stores` never see the SQLite connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batchkit.core.results import ResultColumns
from batchkit.core.states import JobState, SendMode

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Transaction"]


class Transaction:
    """The verbs that write, bound to one open transaction of ``store``.

    It is the store's own writer: each verb calls the connection-taking method of the store's part
    that owns the table (``Jobs._insert_job``, ``Units._add_batch``, ``Results._store_results``,
    …), private to :mod:`batchkit.stores` so no connection is in any public signature.
    """

    __slots__ = ("_conn", "_store")

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A nested transaction (a ``SAVEPOINT``): an exception leaving it rolls back only what it wrote."""
        with self._store.transaction() as inner:
            yield inner

    # ------------------------------------------------------------------ jobs

    def insert_job(
        self,
        *,
        job_id: str,
        fingerprint: str,
        model: str,
        kind: str,
        output: str,
        spec: dict[str, Any],
        row_keys: Sequence[str | None],
        skipped: dict[int, str],
        mode: str = SendMode.BATCH,
        mode_reason: str | None = None,
    ) -> dict[str, Any]:
        """Write a new job down; its record (see :meth:`batchkit.stores.jobs.Jobs.insert_job`)."""
        return self._store._insert_job(
            self._conn,
            job_id=job_id,
            fingerprint=fingerprint,
            model=model,
            kind=kind,
            output=output,
            spec=spec,
            row_keys=row_keys,
            skipped=skipped,
            mode=mode,
            mode_reason=mode_reason,
        )

    def find_job(self, fingerprint: str) -> str | None:
        """The job with this fingerprint, read under the write lock (another process may have just written it)."""
        return self._store.find_job(fingerprint)

    def set_job_mode(self, job_id: str, mode: str, reason: str | None) -> None:
        """Write down the mode a job sends its requests in and why."""
        self._store._set_job_mode(self._conn, job_id, mode, reason)

    def set_job_status(self, job_id: str, status: str) -> None:
        """Set a job's status (:class:`batchkit.core.states.JobState`)."""
        self._store._set_job_status_in(self._conn, job_id, status)

    def run_job(self, job_id: str) -> None:
        """Mark a job ``running`` again (it has new units to wait for)."""
        self._store._set_job_status_in(self._conn, job_id, JobState.RUNNING)

    def fail_job(self, job_id: str) -> None:
        """Mark a job ``failed`` if it is running (one that ended or was canceled keeps its status)."""
        self._store._fail_job_in(self._conn, job_id)

    def set_row_keys(self, job_id: str, row_keys: Sequence[str | None]) -> None:
        """Replace a job's row keys."""
        self._store._set_row_keys(self._conn, job_id, row_keys)

    # ------------------------------------------------------------------ units

    def add_unit(
        self,
        *,
        job_id: str,
        keys: Sequence[str],
        body: bytes | tuple[int, Iterable[bytes]],
        attempt: int,
        owner: str,
        mode: str = SendMode.BATCH,
        betas: Sequence[str] | None = None,
    ) -> int:
        """Record the intent to send a unit, claimed by ``owner``, with the betas it is sent with
        (:meth:`batchkit.stores.units.Units.add_batch`)."""
        return self._store._add_batch(
            self._conn, job_id=job_id, keys=keys, body=body, attempt=attempt, owner=owner, mode=mode, betas=betas
        )

    def update_batch(self, batch_id: int, **fields: Any) -> None:
        """Set fields of a unit's row (``state``, ``error``, ``api_id``, …)."""
        self._store._update_batch_in(self._conn, batch_id, **fields)

    def in_flight_keys(self) -> set[str]:
        """Keys in any unit still awaiting its results, by any job or process, read under the write lock."""
        return self._store._in_flight_keys(self._conn)

    def in_flight_among(self, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` in any unit still awaiting its results, read under the write lock
        (:meth:`batchkit.stores.units.Units.in_flight_among`)."""
        return self._store._in_flight_among(self._conn, keys)

    # ------------------------------------------------------------------ results

    def put_results(self, batch_id: int, model: str | None, columns: ResultColumns) -> None:
        """Keep one unit's results (a unit already stored, by another process, is left as is)."""
        self._store._store_results(self._conn, batch_id, model, columns)

    def add_answers(
        self, *, unit: int, job_id: str, attempt: int, mode: str, model: str | None, columns: ResultColumns
    ) -> int:
        """Keep a group of answers a realtime unit received (:meth:`batchkit.stores.results.Results.add_answers`)."""
        return self._store._add_answers(
            self._conn, unit=unit, job_id=job_id, attempt=attempt, mode=mode, model=model, columns=columns
        )
