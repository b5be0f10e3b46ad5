"""A job's progress as HTML: what ``Job._repr_html_`` shows and the widget's details.

:func:`render_html` draws a :class:`~batchkit.display.snapshot.Snapshot` as one self-contained
block (inline styles, no scripts, so it renders the same in JupyterLab, VS Code and a saved
notebook): a rows bar coloured by status, the mode, the processing queue, a table of batches
with each one's time against the 24 h limit (a time gauge, not a progress bar: the API says
nothing of a running batch's progress), the cost and the errors. The ``batchkit-*`` classes and
``data-*`` attributes are what the browser test reads.

>>> render_html(snapshot(job))      # doctest: +SKIP
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from batchkit.core.states import RowStatus, SendMode, UnitState

from .snapshot import SIMULATED_NOTE, BatchProgress, Snapshot
from .text import (
    MAX_LISTED_BATCHES,
    ROW_LABELS,
    batch_result,
    batch_summary,
    batch_time,
    cost_text,
    duration,
    realtime_text,
    row_parts,
)

if TYPE_CHECKING:
    from .queues import QueueSnapshot  # its numbers only: the queue's view is read in the reader

__all__ = ["render_html"]

_COLORS = {
    RowStatus.SUCCEEDED: "#2ca02c",
    RowStatus.TRUNCATED: "#98c93c",
    "retrying": "#f0ad4e",
    RowStatus.ERRORED: "#d62728",
    RowStatus.EXPIRED: "#e4574f",
    RowStatus.INVALID_OUTPUT: "#a50f15",
    RowStatus.CANCELED: "#7f7f7f",
    RowStatus.SKIPPED: "#c7c7c7",
    "pending": "#e8e8e8",
}
_BAR_STYLE_COLORS = {"success": "#2ca02c", "danger": "#d62728", "warning": "#f0ad4e", "": "#4c72b0"}


def _rows_bar_html(snap: Snapshot) -> str:
    esc = html.escape
    total = max(snap.rows, 1)
    cells = []
    for status, n in snap.segments():
        width = 100.0 * n / total
        label = ROW_LABELS.get(status, status)
        pattern = (
            (";background-image:repeating-linear-gradient(45deg,transparent 0 6px,rgba(255,255,255,.55) 6px 12px)")
            if status == "pending"
            else ""
        )
        cells.append(
            f'<div class="batchkit-seg batchkit-seg-{esc(status)}" title="{n:,} {esc(label)}" '
            f'style="width:{width:.3f}%;background:{_COLORS.get(status, "#999")}{pattern}"></div>'
        )
    return (
        '<div class="batchkit-rows-bar" style="display:flex;height:12px;border-radius:3px;'
        'overflow:hidden;background:#eee;margin:4px 0;max-width:640px">' + "".join(cells) + "</div>"
    )


def _time_gauge_html(b: BatchProgress, snap: Snapshot) -> str:
    """Time used of the 24 h limit, with a tick at the typical duration — time, not progress."""
    if b.elapsed is None or b.state == UnitState.SUBMITTING:
        return ""
    share = min(1.0, b.elapsed / snap.max_seconds)
    tick = 100.0 * snap.typical_seconds / snap.max_seconds
    color = "#999" if b.ended else ("#4c72b0" if b.elapsed <= snap.typical_seconds else "#dd8452")
    title = (
        f"{duration(b.elapsed)} of the {duration(snap.max_seconds)} limit "
        f"(most batches end within {duration(snap.typical_seconds)})"
    )
    return (
        f'<div title="{html.escape(title)}" style="position:relative;width:120px;height:6px;background:#eee;'
        f'border-radius:3px"><div style="width:{100 * share:.2f}%;min-width:2px;height:100%;'
        f'background:{color};border-radius:3px"></div><div style="position:absolute;left:{tick:.2f}%;'
        'top:-2px;width:1px;height:10px;background:#555"></div></div>'
    )


def _queue_html(queue: QueueSnapshot) -> str:
    """The queue in one line: waiting / in flight / done, and the limit with where it came from."""
    cells = [
        ("waiting", queue.waiting_batches, queue.waiting),
        ("in-flight", queue.in_flight_batches, queue.in_flight),
        ("done", queue.done_batches, queue.done),
    ]
    parts = " · ".join(
        f'<span class="batchkit-queue-{name}" data-batches="{n}" data-requests="{requests}">'
        f"{n:,} {name.replace('-', ' ')}</span>"
        for name, n, requests in cells
    )
    return (
        f'<div class="batchkit-queue" data-limit="{queue.limit or ""}" data-source="{queue.source or ""}">'
        f"queue: {parts}; limit {html.escape(queue.limit_text())}</div>"
    )


def render_html(snap: Snapshot, *, max_batches: int = MAX_LISTED_BATCHES, bar: bool = True) -> str:
    """The snapshot as one self-contained HTML block (inline styles, no scripts).

    ``bar=False`` leaves out the rows bar (the widget draws its own).
    """
    esc = html.escape
    cost = f'<div class="batchkit-cost">cost: {esc(cost_text(snap))}</div>'
    return (
        f'<div class="batchkit-job" data-job="{esc(snap.job_id)}" data-status="{esc(snap.status)}" '
        f'data-done="{str(snap.done).lower()}" data-style="{esc(snap.style)}" '
        'style="font-size:13px;line-height:1.45">'
        + _header_html(snap)
        + (_rows_bar_html(snap) if bar else "")
        + _rows_html(snap)
        + _batches_html(snap, max_batches)
        + cost
        + _notes_html(snap)
        + "</div>"
    )


def _header_html(snap: Snapshot) -> str:
    """``batchkit job <id> · model → <output> · <state> · <time>``, the state in the bar's colour."""
    esc = html.escape
    color = _BAR_STYLE_COLORS[snap.style]
    when = f" · {duration(snap.elapsed)}" if snap.elapsed is not None else ""
    return (
        f"<div><b>batchkit job</b> <code>{esc(snap.job_id)}</code> · {esc(snap.model)} → "
        f'<code>{esc(snap.output)}</code> · <span class="batchkit-state" data-state="{esc(snap.status)}" '
        f'style="color:{color};font-weight:600">{esc(snap.state_label)}</span>{esc(when)}</div>'
    )


def _rows_html(snap: Snapshot) -> str:
    """Rows by status, the mode (and why), the realtime speed, the deadline and the queue."""
    esc = html.escape
    rows = f'<div class="batchkit-rows">{snap.rows:,} rows: ' + esc(", ".join(row_parts(snap)) or "none") + "</div>"
    rows += (
        f'<div class="batchkit-mode" data-mode="{esc(snap.mode)}">mode: <b>{esc(snap.mode)}</b>'
        + (f" — {esc(snap.mode_reason)}" if snap.mode_reason else "")
        + "</div>"
    )
    if snap.mode != SendMode.BATCH or snap.realtime_answers:
        rows += f'<div class="batchkit-speed">{esc(realtime_text(snap))}</div>'
    if snap.deadline:
        rows += f'<div class="batchkit-deadline">deadline: {esc(snap.deadline)}</div>'
    if snap.queue is not None and snap.queue.batches:
        rows += _queue_html(snap.queue)
    return rows


_CELL = 'style="padding:1px 8px 1px 0;text-align:{}"'


def _batches_html(snap: Snapshot, max_batches: int) -> str:
    """The table of batches (the first ``max_batches``, the rest counted), or a line without any."""
    esc = html.escape
    if not snap.batches:
        return f"<div>batches: {esc(batch_summary(snap))}</div>"
    body = "".join(_batch_row_html(b, snap) for b in snap.batches[:max_batches])
    more = ""
    if len(snap.batches) > max_batches:
        more = f'<div style="color:#666">… and {len(snap.batches) - max_batches} more batches</div>'
    heads = (
        "batch",
        "attempt",
        "state",
        "requests",
        f"time (typical < {duration(snap.typical_seconds)})",
        f"of the {duration(snap.max_seconds)} limit",
        "results",
    )
    header = "".join(f"<th {_CELL.format('left')}>{h}</th>" for h in heads)
    return (
        f'<table class="batchkit-batches" style="border-collapse:collapse;font-size:90%">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>{more}"
    )


def _batch_row_html(b: BatchProgress, snap: Snapshot) -> str:
    esc, cell = html.escape, _CELL
    return (
        "<tr>"
        f"<td {cell.format('left')}><code>{esc(b.api_id or '(planned)')}</code></td>"
        f"<td {cell.format('right')}>{b.attempt}</td>"
        f'<td {cell.format("left")} class="batchkit-batch-state">{esc(b.label)}</td>'
        f"<td {cell.format('right')}>{b.requests:,}</td>"
        f"<td {cell.format('left')}>{esc(batch_time(b, snap, limits=False))}</td>"
        f"<td {cell.format('left')}>{_time_gauge_html(b, snap)}</td>"
        f"<td {cell.format('left')}>{esc(batch_result(b))}</td>"
        "</tr>"
    )


def _notes_html(snap: Snapshot) -> str:
    """The errors by type, and that the answers are simulated."""
    esc = html.escape
    notes = ""
    if snap.by_error:
        notes = (
            '<div class="batchkit-errors">errors: '
            + esc(", ".join(f"{t}: {n:,}" for t, n in snap.by_error.items()))
            + "</div>"
        )
    if snap.simulated:
        notes += f'<div class="batchkit-simulated" style="color:#666">answers: {esc(SIMULATED_NOTE)}</div>'
    return notes
