"""A partitioned run's progress view: a line on stderr, or an HTML bar in a notebook, kept current.

A run (:class:`batchkit.engine.runs.Run`) plans its partitions one after another; its view shows
the partitions done, in flight and waiting and the rows answered, refreshed by a daemon thread
(the same :class:`~batchkit.display.views.Poller` a job's views use) until the run's driver has
finished. The view reads the run through the few public members :class:`RunLike` names, so the
engine never imports the display: the run's ``_repr_html_`` and its live view both come from here.

>>> view = display_run(run)      # doctest: +SKIP
>>> view.finish()                # doctest: +SKIP   (the run's final line, now)
"""

from __future__ import annotations

import html
import sys
from typing import IO, Any, Protocol

from .views import Poller, import_widgets, in_kernel

__all__ = ["RunLike", "RunView", "display_run", "run_html"]


class RunLike(Protocol):
    """What the view reads of a run (all of it public on :class:`~batchkit.engine.runs.Run`)."""

    @property
    def run_id(self) -> str: ...

    @property
    def rows_planned(self) -> int:
        """Rows of the partitions planned so far (in this process)."""
        ...

    @property
    def rows_done(self) -> int:
        """Rows of those partitions already output."""
        ...

    @property
    def finished(self) -> bool:
        """The run's driver has stopped (or no one drives the run in this process)."""
        ...

    def progress_text(self) -> str: ...


def run_html(run: RunLike) -> str:
    """The run as a small HTML block: a green bar of the rows output, and its progress line."""
    rows = run.rows_planned
    share = run.rows_done / rows if rows else 0.0
    return (
        f'<div class="batchkit-run" data-run="{html.escape(run.run_id)}" style="font-size:13px">'
        f'<div style="background:#e8e8e8;width:100%;height:10px"><div style="background:#2ca02c;height:10px;'
        f'width:{share:.1%}"></div></div><div>{html.escape(run.progress_text())}</div></div>'
    )


class RunView:
    """Text lines on stderr (or a widget in a notebook) refreshed by a daemon thread."""

    def __init__(self, run: RunLike, *, widget: Any = None, file: IO[str] | None = None, interval: float = 2.0) -> None:
        self.run = run
        self.widget = widget
        self.file = file
        self._last = ""
        self._poller = Poller(self._tick, interval, f"batchkit-view-{run.run_id}")
        self._poller.start()

    def _tick(self) -> bool:
        done = self.run.finished
        if self.widget is not None:
            self.widget.value = run_html(self.run)
            return done
        text = self.run.progress_text()
        if text != self._last or done:
            self._last = text
            print("batchkit: " + text, file=self.file if self.file is not None else sys.stderr, flush=True)
        return done

    def wake(self) -> None:
        """Refresh now rather than at the next interval."""
        self._poller.wake()

    def finish(self, timeout: float = 2.0) -> None:
        """Show the final state now (the run has just ended) and let the refresh thread end."""
        self._poller.wake()
        self._poller.join(timeout)


def display_run(run: RunLike) -> RunView:
    """Show ``run``'s progress where the user is looking: an HTML widget in a Jupyter kernel with
    ipywidgets (refreshed every 0.5 s), else lines on stderr (every 2 s, when they change)."""
    if in_kernel():
        try:
            widgets = import_widgets()
        except ImportError:
            pass
        else:
            from IPython.display import display

            widget = widgets.HTML(run_html(run))
            display(widget)  # type: ignore[no-untyped-call]  # IPython ships no types
            return RunView(run, widget=widget, interval=0.5)
    return RunView(run)
