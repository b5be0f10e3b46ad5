"""Partitioned runs (:mod:`batchkit.engine.runs`): a run, and the job of each of its partitions.

A run over a table too large to hold at once (Dask, Polars lazy frames, Parquet datasets) is a
sequence of partitions, each an ordinary job; the store remembers which job each partition's
rows became, so a re-run finds them again and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

from batchkit.core.states import RunState

from .connection import StoreCore, utcnow

__all__ = ["Runs"]

_RUN_FIELDS = ("run_id", "source", "created_at", "status")


class Runs(StoreCore):
    """Recording partitioned runs (part of :class:`~batchkit.stores.store.Store`)."""

    def open_run(self, run_id: str, source: str) -> None:
        """Write a partitioned run down (or mark an existing one running again)."""
        with self._atomic() as conn:
            conn.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)", (run_id, source, utcnow(), RunState.RUNNING))
            conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (RunState.RUNNING, run_id))

    def add_run_part(self, run_id: str, part: int, job_id: str, n_rows: int) -> None:
        """Record the job of a run's partition ``part`` (0-based, input order)."""
        with self._atomic() as conn:
            conn.execute("INSERT OR REPLACE INTO run_parts VALUES (?, ?, ?, ?)", (run_id, part, job_id, n_rows))

    def end_run(self, run_id: str, status: str, n_parts: int | None = None) -> None:
        """Set a run's status; with ``n_parts``, forget partitions past its last (a shorter input)."""
        with self._atomic() as conn:
            conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))
            if n_parts is not None:
                conn.execute("DELETE FROM run_parts WHERE run_id = ? AND part >= ?", (run_id, n_parts))

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        """A run's record (``run_id``, ``source``, ``created_at``, ``status``), or None."""
        rows = self._rows("SELECT run_id, source, created_at, status FROM runs WHERE run_id = ?", (run_id,))
        return dict(zip(_RUN_FIELDS, rows[0], strict=True)) if rows else None

    def run_parts(self, run_id: str) -> list[str]:
        """The job ids of a run's partitions, in partition order (empty for an unknown run)."""
        return [r[0] for r in self._rows("SELECT job_id FROM run_parts WHERE run_id = ? ORDER BY part", (run_id,))]

    def run_part_rows(self, run_id: str) -> list[tuple[int, str, int]]:
        """``(part, job id, rows)`` of each of a run's partitions, in order."""
        return self._rows("SELECT part, job_id, n_rows FROM run_parts WHERE run_id = ? ORDER BY part", (run_id,))
