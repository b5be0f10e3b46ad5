"""Jobs: one row per ``df.claude`` call, with every row's request key, found again by fingerprint.

A job's row holds its spec (JSON), its row keys (:func:`batchkit.core.keys.encode_keys`), the rows
it skipped and why, its status (:class:`batchkit.core.states.JobState`) and the mode its requests
go in with the reason that mode was chosen. A re-run of the same call finds its job by the
fingerprint of its kind, output and row keys (:func:`batchkit.core.keys.fingerprint`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from batchkit.core import _json
from batchkit.core.keys import decode_keys, encode_keys
from batchkit.core.states import JobState, SendMode

from .connection import StoreCore, utcnow

__all__ = ["Jobs"]


class Jobs(StoreCore):
    """Writing jobs down and reading them back (part of :class:`~batchkit.stores.store.Store`)."""

    def find_job(self, fingerprint: str) -> str | None:
        """The id of the job with this fingerprint (the same call run before), or None."""
        rows = self._rows("SELECT job_id FROM jobs WHERE fingerprint = ?", (fingerprint,))
        return rows[0][0] if rows else None

    def _insert_job(
        self,
        conn: sqlite3.Connection,
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
        """Write a new job down; returns its record as :meth:`load_job` would read it back.

        ``mode`` and ``mode_reason`` go in with the row: a job's row holds every row key, and
        SQLite rewrites a whole row on update (3 MB for 100,000 rows), so a new job's mode is
        never written by a separate :meth:`set_job_mode`.
        """
        spec_json = _json.dumps(spec)
        record = {
            "job_id": job_id,
            "fingerprint": fingerprint,
            "created_at": utcnow(),
            "model": model,
            "kind": kind,
            "output": output,
            "spec": _json.loads(spec_json),
            "n_rows": len(row_keys),
            "row_keys": list(row_keys),
            "skipped": dict(skipped),
            "status": JobState.RUNNING,
            "mode": mode,
            "mode_reason": mode_reason,
        }
        conn.execute(
            "INSERT INTO jobs (job_id, fingerprint, created_at, model, kind, output, spec, n_rows, row_keys,"
            " skipped, status, mode, mode_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                fingerprint,
                record["created_at"],
                model,
                kind,
                output,
                spec_json.decode(),
                len(row_keys),
                encode_keys(row_keys),
                _json.dumps({str(k): v for k, v in skipped.items()}).decode(),
                JobState.RUNNING,
                mode,
                mode_reason,
            ),
        )
        return record

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        """A job's record (as :meth:`insert_job` returned it), or None for an unknown job."""
        rows = self._rows(
            "SELECT job_id, fingerprint, created_at, model, kind, output, spec, n_rows, row_keys,"
            " skipped, status, mode, mode_reason FROM jobs WHERE job_id = ?",
            (job_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return {
            "job_id": r[0],
            "fingerprint": r[1],
            "created_at": r[2],
            "model": r[3],
            "kind": r[4],
            "output": r[5],
            "spec": _json.loads(r[6]),
            "n_rows": r[7],
            "row_keys": decode_keys(r[8], r[7]),
            "skipped": {int(k): v for k, v in _json.loads(r[9]).items()},
            "status": r[10],
            "mode": r[11],
            "mode_reason": r[12],
        }

    def _set_job_mode(self, conn: sqlite3.Connection, job_id: str, mode: str, reason: str | None) -> None:
        """Write down the mode a job sends its requests in (``batch``/``realtime``) and why."""
        conn.execute("UPDATE jobs SET mode = ?, mode_reason = ? WHERE job_id = ?", (mode, reason, job_id))

    def set_job_status(self, job_id: str, status: str) -> None:
        """Set a job's status (:class:`batchkit.core.states.JobState`), in a transaction of its own."""
        with self._atomic() as conn:
            self._set_job_status_in(conn, job_id, status)

    def _set_row_keys(self, conn: sqlite3.Connection, job_id: str, row_keys: Sequence[str | None]) -> None:
        """Replace a job's row keys (its rows now ask other requests, e.g. with more ``max_tokens``)."""
        conn.execute("UPDATE jobs SET row_keys = ? WHERE job_id = ?", (encode_keys(row_keys), job_id))

    def job_status(self, job_id: str) -> str | None:
        """A job's status as stored now (another process, or the job's worker, may have moved
        it on); None for an unknown job."""
        rows = self._rows("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        return str(rows[0][0]) if rows else None

    def _set_job_status_in(self, conn: sqlite3.Connection, job_id: str, status: str) -> None:
        """Set a job's status inside ``conn``'s transaction."""
        conn.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    def _fail_job_in(self, conn: sqlite3.Connection, job_id: str) -> None:
        """Mark a running job ``failed`` inside ``conn``'s transaction (a job that has ended,
        or was canceled, keeps its status)."""
        conn.execute(
            "UPDATE jobs SET status = ? WHERE job_id = ? AND status = ?", (JobState.FAILED, job_id, JobState.RUNNING)
        )

    def jobs_created_before(self, cutoff: str) -> list[str]:
        """The ids of the jobs created before ``cutoff`` (ISO-8601 UTC, as :func:`utcnow` writes), oldest first."""
        return [r[0] for r in self._rows("SELECT job_id FROM jobs WHERE created_at < ? ORDER BY created_at", (cutoff,))]

    def job_rows(self) -> list[tuple[Any, ...]]:
        """``(job_id, created_at, model, kind, output, n_rows, status)`` of every job, newest first."""
        return self._rows(
            "SELECT job_id, created_at, model, kind, output, n_rows, status FROM jobs ORDER BY created_at DESC"
        )
