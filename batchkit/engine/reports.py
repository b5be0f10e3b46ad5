"""What the user is told when a job's rows have no answer.

:func:`warn_failures` is the :class:`BatchkitWarning` a
blocking call ends with when rows failed, were canceled or were skipped, written at the user's
own line and saying what can be done about each kind of failure.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from batchkit.backends.errors import RETRY_CAN_FIX
from batchkit.core.results import Summary
from batchkit.errors import warn

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["failure_report", "warn_failures"]


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
