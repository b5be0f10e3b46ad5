"""``batchkit.jobs()``: every job in a store, newest first, read from the store.

The listing reads each job's outcomes with a :class:`~batchkit.engine.outcomes.ResultReader`:
the reader of the job's object when this process has one (its caches are current), else one
of its own over the stored row. It needs no :class:`batchkit.Job`, so the handle's module can
offer it without an import cycle.
"""

from __future__ import annotations

import os

import pandas as pd

from batchkit.core.options import JobSpec
from batchkit.core.results import output_label
from batchkit.core.states import SendMode, UnitState
from batchkit.core.structured import OutputSpec
from batchkit.errors import JobNotFoundError, UnknownModelError
from batchkit.stores.store import Store

from . import registry
from .locations import default_store_path
from .outcomes import ResultReader

__all__ = ["PROMPT_WIDTH", "jobs"]

PROMPT_WIDTH = 60
"""Characters of the prompt :func:`jobs` shows (the full prompt is in the job's options)."""


def jobs(store: Store | str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every job in the store, newest first: when, what it asked, how its rows ended, what it cost.

    Columns: ``job_id``, ``created_at``, ``status``, ``mode``, ``model``, ``kind``, ``output``, ``prompt``
    (the template, or the prompt function's name, shortened to :data:`PROMPT_WIDTH` characters),
    ``rows``, ``succeeded``, ``truncated``, ``failed`` (errored, expired, invalid or canceled),
    ``skipped`` (not sent on purpose), ``pending``, ``batches`` (units of work: batches, or realtime
    runs) and ``cost`` (dollars paid, each answer at the price of the mode it was sent in; NaN for a
    model with no price). Two jobs of the same output differ by prompt or cost.

    Reading never creates a store: with no store at the default location yet it returns no rows; a
    ``store=`` path with no store there raises :class:`~batchkit.errors.StoreNotFoundError`.
    """
    columns = [
        "job_id",
        "created_at",
        "status",
        "mode",
        "model",
        "kind",
        "output",
        "prompt",
        "rows",
        "succeeded",
        "truncated",
        "failed",
        "skipped",
        "pending",
        "batches",
        "cost",
    ]
    if store is None and not default_store_path().exists():
        return pd.DataFrame([], columns=columns)
    resolved = Store.resolve(store, create=False)
    rows = []
    for job_id, created_at, model, kind, output, n_rows, status in resolved.job_rows():
        reader = _reader(resolved, job_id)
        summary = reader.summary()
        counts = summary.by_status
        try:
            cost = reader.cost().total
        except UnknownModelError:
            cost = float("nan")
        prompt = " ".join(str(reader.record["spec"].get("prompt") or "").split())
        rows.append(
            {
                "job_id": job_id,
                "created_at": pd.Timestamp(created_at),
                "status": status,
                "mode": str(reader.record.get("mode") or SendMode.BATCH),
                "model": model,
                "kind": kind,
                "output": output_label(output),
                "prompt": prompt if len(prompt) <= PROMPT_WIDTH else prompt[: PROMPT_WIDTH - 1] + "…",
                "rows": n_rows,
                "succeeded": counts.get("succeeded", 0),
                "truncated": counts.get("truncated", 0),
                "failed": summary.failed - counts.get("pending", 0) - counts.get("skipped", 0),
                "skipped": counts.get("skipped", 0),
                "pending": counts.get("pending", 0),
                "batches": sum(
                    1
                    for b in resolved.batches(job_id=job_id)
                    if b["mode"] == SendMode.BATCH or b["api_id"] or b["state"] != UnitState.COLLECTED
                ),
                "cost": cost,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _reader(store: Store, job_id: str) -> ResultReader:
    """The reader of this process's object for the job, else a new one over its stored row."""
    live = registry.live.get((str(store.path), job_id))
    if live is not None:
        return live.reader
    record = store.load_job(job_id)
    if record is None:  # deleted since the listing began
        raise JobNotFoundError(f"no job {job_id!r} in the store at {store.path}", job_id=job_id)
    spec = JobSpec.from_json(record["spec"])
    output_spec = OutputSpec.from_json(spec.output_spec) if spec.output_spec else None
    return ResultReader(job_id, store, record, spec, output_spec)
