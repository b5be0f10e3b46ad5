"""Hands the engine its views: a job's progress line and HTML, a run's HTML and live view.

The engine cannot import the display (the display imports the engine), so the display registers
its views with :mod:`batchkit.engine.shown` when this module is imported — ``import batchkit``
does it — and ``repr(job)``, ``job._repr_html_()``, ``Run._repr_html_()`` and a run's live view
ask for them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchkit.engine import shown

from .html_view import render_html
from .reader import snapshot
from .runs import display_run, run_html
from .text import render_line

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job

__all__: list[str] = []


def _job_line(job: Job) -> str:
    return render_line(snapshot(job))


def _job_html(job: Job) -> str:
    return render_html(snapshot(job))


shown.register(job_line=_job_line, job_html=_job_html, run_html=run_html, show_run=display_run)
