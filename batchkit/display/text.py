"""A job's progress as text: one line for logs and a live terminal status, a few lines for a report.

=====================  ======================================================================
:func:`render_line`    one line: state, rows with an outcome, batches ended, cost
:func:`render_text`    a few lines: rows by status, mode, batches (each with its time), queue,
                       cost, errors
=====================  ======================================================================

Both are plain functions of a :class:`~batchkit.display.snapshot.Snapshot`. The phrases they
share with the HTML view (a duration, dollars, rows by status, a batch's time and result, the
cost line) are the public helpers here, so every view says a thing the same way.

>>> print(render_text(snapshot(job)))      # doctest: +SKIP
"""

from __future__ import annotations

from batchkit.core.states import JobState, SendMode, UnitState

from .snapshot import SIMULATED_NOTE, BatchProgress, Snapshot

__all__ = [
    "MAX_LISTED_BATCHES",
    "ROW_LABELS",
    "batch_result",
    "batch_summary",
    "batch_time",
    "cost_text",
    "dollars",
    "duration",
    "realtime_text",
    "render_line",
    "render_text",
    "row_parts",
]

ROW_LABELS = {"pending": "waiting for their batch", "retrying": "failed, retry pending"}
"""How a display category of rows reads where its name alone would not say it."""
MAX_LISTED_BATCHES = 12
"""Batches listed one per line; the rest are counted."""


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h``, ``2 h 04 min``, ``24 h``, ``3 d 2 h``.

    >>> duration(59.6), duration(185), duration(3600), duration(86400)
    ('1 min 00 s', '3 min 05 s', '1 h', '24 h')
    """
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 2 * 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m:02d} min" if m else f"{h} h"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def dollars(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def row_parts(snap: Snapshot) -> list[str]:
    labels = ROW_LABELS if snap.mode == SendMode.BATCH else {**ROW_LABELS, "pending": "waiting for their answer"}
    return [f"{n:,} {labels.get(s, s)}" for s, n in snap.segments()]


def batch_summary(snap: Snapshot) -> str:
    if not snap.batches:
        return "none sent (every row was already answered or skipped)" if snap.done else "none yet"
    by_state: dict[str, int] = {}
    for b in snap.batches:
        by_state[b.label] = by_state.get(b.label, 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in by_state.items())
    retries = f"; {snap.attempts - 1} round(s) of retries" if snap.attempts > 1 else ""
    return f"{len(snap.batches)} ({states}){retries}"


def batch_time(b: BatchProgress, snap: Snapshot, *, limits: bool = True) -> str:
    if b.ended:
        return f"took {duration(b.elapsed)}" if b.elapsed is not None else ""
    if b.state == UnitState.SUBMITTING:
        return "being created"
    if not limits:
        return f"{duration(b.elapsed)} so far"
    limit = f"typical < {duration(snap.typical_seconds)}, limit {duration(snap.max_seconds)}"
    return f"{duration(b.elapsed)} so far ({limit})"


def batch_result(b: BatchProgress) -> str:
    if b.error:
        return b.error
    if b.counts is None:
        return "counts come when the batch ends" if not b.ended else ""
    return ", ".join(f"{n:,} {k}" for k, n in b.counts.items() if n and k != "processing") or "no results"


def _queue_matters(snap: Snapshot) -> bool:
    """Whether the processing queue is worth a line: a limit the user set or batchkit learned from
    a refusal, or batches of a running job still waiting to be created. A finished job on a queue
    whose limit nobody knows shows none (there is nothing to act on)."""
    queue = snap.queue
    if queue is None or not queue.batches:
        return False
    waiting = snap.status == JobState.RUNNING and queue.waiting_batches > 0
    return queue.limit is not None or queue.refused > 0 or waiting


def cost_text(snap: Snapshot) -> str:
    if snap.done and not snap.batches and not snap.cost:
        return "$0 (nothing sent: " + ("no rows)" if not snap.rows else "every row was already answered or skipped)")
    if snap.done:
        prices = (
            "batch prices"
            if not snap.realtime_answers
            else (
                "standard prices"
                if snap.mode != SendMode.BATCH
                and snap.batches
                and all(not str(b.api_id or "").startswith("msgbatch") for b in snap.batches)
                else "batch and standard prices"
            )
        )
        text = f"{dollars(snap.cost)} ({prices})" if snap.cost is not None else "unknown"
        if snap.estimate_range is not None:
            low, high = snap.estimate_range
            text += f"; estimated {dollars(low)}–{dollars(high)}"
        return text
    text = f"{dollars(snap.cost)} so far"
    if snap.cost_requests:
        text += f" for {snap.cost_requests:,} answered requests"
    if snap.estimated_total is not None:
        text += f"; about {dollars(snap.estimated_total)} in all ({snap.estimate_basis})"
    else:
        text += "; a total is projected once the first batch ends"
    return text


def render_line(snap: Snapshot) -> str:
    """One line: state, rows with an outcome, batches ended, cost.

    >>> import datetime as dt
    >>> snap = Snapshot("job_1", "claude-haiku-4-5", "out", "running",
    ...                 dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), None, 10,
    ...                 {"pending": 4, "succeeded": 6}, {}, cost=0.0)
    >>> render_line(snap)
    'job_1 running: 6 of 10 rows back (6 succeeded, 4 waiting for their batch); batches: none yet; $0 so far'
    """
    when = f" {duration(snap.elapsed)}" if snap.elapsed is not None else ""
    rows = f"{snap.rows_done:,} of {snap.rows:,} rows back" if not snap.done else f"{snap.rows:,} rows"
    parts = ", ".join(row_parts(snap))
    ended = sum(b.ended for b in snap.batches)
    batches = f"{ended} of {len(snap.batches)} batches ended" if snap.batches else batch_summary(snap)
    cost = dollars(snap.cost) + ("" if snap.done else " so far")
    if snap.mode != SendMode.BATCH or snap.realtime_answers:
        return f"{snap.job_id} {snap.state_label}{when}: {rows} ({parts}); {realtime_text(snap)}; {cost}"
    queue = snap.queue
    if queue is not None and queue.waiting_batches and snap.status == JobState.RUNNING:
        used = queue.workspace_in_flight if queue.workspace_in_flight is not None else queue.in_flight
        held = queue.limit is not None and used + queue.waiting > queue.limit  # else: about to be created
        batches += f", {queue.waiting_batches} " + ("waiting for room in the queue" if held else "not created yet")
    return f"{snap.job_id} {snap.state_label}{when}: {rows} ({parts}); batches: {batches}; {cost}"


def realtime_text(snap: Snapshot) -> str:
    """``realtime: 12.5 rows/s, ETA 8 s`` (what a realtime job shows instead of batch times)."""
    rate = snap.rate
    text = f"{snap.mode}: " + (f"{rate:,.1f} rows/s" if rate is not None else "starting")
    if snap.eta is not None:
        text += f", ETA {duration(snap.eta)}"
    return text


def render_text(snap: Snapshot, *, max_batches: int = MAX_LISTED_BATCHES) -> str:
    """A few lines for a terminal or a log: header, rows, batches (each with its time), cost, errors."""
    when = f", {duration(snap.elapsed)}" if snap.elapsed is not None else ""
    lines = [
        f"batchkit job {snap.job_id} ({snap.model} → {snap.output!r}): {snap.state_label}{when}",
        f"  rows     {snap.rows:,}: " + (", ".join(row_parts(snap)) or "none"),
        f"  mode     {snap.mode} — {snap.mode_reason}" if snap.mode_reason else f"  mode     {snap.mode}",
        f"  batches  {batch_summary(snap)}",
    ]
    if _queue_matters(snap):
        lines.append(f"  queue    {snap.queue.text()}")  # type: ignore[union-attr]
    if snap.deadline:
        lines.insert(3, f"  deadline {snap.deadline}")
    if snap.realtime_answers or (snap.mode != SendMode.BATCH and not snap.done):  # no "starting" once done
        lines.insert(2, f"  speed    {realtime_text(snap)}")
    for b in snap.batches[:max_batches]:
        name = b.api_id or "(planned)"
        lines.append(
            f"    {name:<34} attempt {b.attempt}  {b.label:<11} {b.requests:>7,} requests  "
            f"{batch_time(b, snap)}  {batch_result(b)}".rstrip()
        )
    if len(snap.batches) > max_batches:
        lines.append(f"    … and {len(snap.batches) - max_batches} more")
    lines.append(f"  cost     {cost_text(snap)}")
    if snap.by_error:
        lines.append("  errors   " + ", ".join(f"{t}: {n:,}" for t, n in snap.by_error.items()))
    if snap.simulated:
        lines.append(f"  answers  {SIMULATED_NOTE}")
    return "\n".join(lines)
