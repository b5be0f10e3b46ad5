"""A job's progress: one pure snapshot and its text and HTML renderings (this module gathers them).

The Message Batches API says nothing about a batch's progress until the whole batch ends:
``request_counts`` stay at "processing" until then. So nothing here shows a percentage of a
running batch. A batch shows its state and how long it has run against the typical (under an
hour) and the maximum (24 h, then it expires) duration; the rows fill in when their batch ends.

The pieces, one reason to change each:

=======================================  ==========================================================
:mod:`~batchkit.display.snapshot`        what a job's progress *is*: :class:`Snapshot`,
                                         :class:`BatchProgress` and every derived figure (pure)
:mod:`~batchkit.display.reader`          :func:`snapshot`: reading it from a job and its store,
                                         cheaply enough to refresh every second
:mod:`~batchkit.display.text`            :func:`render_line` (logs, a terminal's live status) and
                                         :func:`render_text` (a few lines: rows, batches, cost, errors)
:mod:`~batchkit.display.html_view`       :func:`render_html` (what ``Job._repr_html_`` shows)
:mod:`~batchkit.display.views`           the live views: an ipywidgets widget with Cancel and
                                         Retry failed buttons, and text lines for terminals
=======================================  ==========================================================

The bar turns green when every row succeeded and red when any row failed for good; once a
widget has turned red, a later success does not turn it green (tqdm's rule), until the
user asks for a retry from the widget.

>>> print(render_text(snapshot(job)))      # doctest: +SKIP
"""

from __future__ import annotations

from .html_view import render_html
from .reader import is_simulated, snapshot
from .snapshot import (
    FAILED_STATUSES,
    MAX_BATCH_SECONDS,
    SIMULATED_NOTE,
    TYPICAL_BATCH_SECONDS,
    BatchProgress,
    Snapshot,
)
from .text import render_line, render_text

__all__ = [
    "FAILED_STATUSES",
    "MAX_BATCH_SECONDS",
    "SIMULATED_NOTE",
    "TYPICAL_BATCH_SECONDS",
    "BatchProgress",
    "Snapshot",
    "is_simulated",
    "render_html",
    "render_line",
    "render_text",
    "snapshot",
]
