"""What the user is told about jobs: the listing, and the warning when rows have no answer.

:func:`jobs` is ``batchkit.jobs()``; :func:`warn_failures` is the :class:`BatchkitWarning` a
blocking call ends with when rows failed, were canceled or were skipped, written at the user's
own line and saying what can be done about each kind of failure.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd

from batchkit.backends.errors import RETRY_CAN_FIX
from batchkit.core.results import Summary, output_label
from batchkit.errors import UnknownModelError, warn
from batchkit.stores.store import Store, default_store_path

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["PROMPT_WIDTH", "failure_report", "jobs", "warn_failures"]

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
    from .jobs import Job  # the engine imports this module: not at import time

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
        job = Job._attach(job_id, resolved, None)
        summary = job.summary()
        counts = summary.by_status
        try:
            cost = job.cost.total
        except UnknownModelError:
            cost = float("nan")
        prompt = " ".join(str(job._record["spec"].get("prompt") or "").split())
        rows.append(
            {
                "job_id": job_id,
                "created_at": pd.Timestamp(created_at),
                "status": status,
                "mode": job.mode,
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
                    if b["mode"] == "batch" or b["api_id"] or b["state"] != "collected"
                ),
                "cost": cost,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def warn_failures(job: Job) -> Summary:
    """Tell the user, never silently, how many rows have no answer, why, and what to do.

    The :class:`BatchkitWarning` points at the user's own line, names the most common errors
    with the API's message and their row counts, suggests ``job.retry()`` only where a retry can
    help, and reports rows skipped on purpose as skipped, with the reason.
    """
    report = failure_report(job)
    if report:
        warn(report)
    lost = job.cost.lost_responses if job.mode != "batch" else 0
    if lost:
        warn(
            f"{lost:,} realtime responses of job {job.job_id} were lost on the way back (the connection failed "
            f"after the request was sent): the API may have charged them although no answer arrived — up to "
            f"about ${job.cost.lost_cost:,.4f} more than job.cost.total. Their requests were tried again. The "
            f"Messages API cannot say; batch mode never pays twice this way."
        )
    return job.summary()


def failure_report(job: Job, *, kinds: int = 3) -> str | None:
    """The text of :func:`warn_failures`' warning; None when every sent row has its answer."""
    summary = job.summary()
    by_status = summary.by_status
    lines = []
    groups = job.failure_counts()
    for status, error_type, message, n in groups[:kinds]:
        if status == "invalid_output":
            hint = "job.retry(statuses=['invalid_output']) asks again; a clearer prompt or schema helps more"
        elif error_type in RETRY_CAN_FIX:
            hint = "a retry can fix this: job.retry() resubmits them"
        else:
            hint = "a retry would fail the same way: fix what the message names, then re-run the call"
        label = status if status == error_type else f"{status} ({error_type})"
        lines.append(f"  {n:,} {label}: {_shorten(message, 200)} → {hint}")
    if len(groups) > kinds:
        lines.append(f"  … and {sum(g[3] for g in groups[kinds:]):,} more rows with other errors")
    if by_status.get("canceled"):
        lines.append(
            f"  {by_status['canceled']:,} canceled (the job was canceled) → job.retry(statuses=['canceled']) sends them"
        )
    if by_status.get("pending"):
        lines.append(f"  {by_status['pending']:,} not answered yet → job.wait() waits for them")
    truncated = by_status.get("truncated", 0)
    if truncated:
        cut = "NA" if job.output_spec is not None else "cut short"
        lines.append(
            f"  {truncated:,} truncated: stopped at max_tokens ({cut}) → "
            "job.retry(truncated=True, max_tokens=N) re-runs them with more room"
        )
    if job.skipped:
        reasons = Counter(job.skipped.values()).most_common(kinds)
        lines.append(
            f"  {len(job.skipped):,} skipped on purpose, not sent: "
            + "; ".join(f"{reason} ({n:,})" for reason, n in reasons)
        )
    if not lines:
        return None
    return (
        f"batchkit job {job.job_id}: {summary}.\n"
        + "\n".join(lines)
        + f"\n  Failed rows are NA in {job.output!r}; job.outcomes() has each row's status and error."
    )


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")
