"""How a job or a run is shown, without the engine importing the display.

The display (:mod:`batchkit.display`) draws jobs and runs from what the engine exposes, so it
imports the engine; the engine importing it back would close an import circle. Instead the display
hands its views to this registry when it is imported (``import batchkit`` imports it), and
:class:`~batchkit.engine.jobs.Job` and :class:`~batchkit.engine.runs.Run` ask for them here. With
the engine imported alone, a job or a run shows a plain line and a run shows no live view.

======================  ============================================================================
``job_line(job)``       one line of a job's progress (``repr(job)``)
``job_html(job)``       a job's progress as HTML (its ``_repr_html_`` in a notebook)
``run_html(run)``       a partitioned run's progress as HTML (``Run._repr_html_``)
``show_run(run)``       start the live view of a run as it runs; returns it (``.wake()`` refreshes)
======================  ============================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register", "view"]

_VIEWS: dict[str, Callable[..., Any]] = {}
NAMES = ("job_line", "job_html", "run_html", "show_run")


def register(**views: Callable[..., Any]) -> None:
    """Hand the engine the display's views, by the names above (the display does this on import)."""
    unknown = set(views) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown view names {sorted(unknown)}; the engine shows {', '.join(NAMES)}")
    _VIEWS.update(views)


def view(name: str) -> Callable[..., Any] | None:
    """The registered view called ``name``, or None when the display is not imported."""
    return _VIEWS.get(name)
