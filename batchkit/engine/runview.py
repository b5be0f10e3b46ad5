"""A partitioned run's progress while it runs: text lines on stderr, or a widget in a notebook.

A daemon thread refreshes the view from the run's own numbers (:class:`~batchkit.engine.runs.RunProgress`,
kept by the driver in this process) and the store; it prints a line only when it changes, and
the run's final line (partitions, rows by status, cost) once it has ended.
"""

from __future__ import annotations

import html
import sys
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .driver import RunControl


class ShownRun(Protocol):
    """What the view reads of a run (:class:`batchkit.engine.runs.Run`)."""

    run_id: str
    control: RunControl

    def progress_text(self) -> str: ...


__all__ = ["RunView", "ShownRun", "progress_html", "show_run"]


def progress_html(run: ShownRun) -> str:
    """The run's progress bar and line as HTML (a notebook's view, and ``Run._repr_html_``)."""
    p = run.control.progress
    share = p.rows_done / p.rows if p.rows else 0.0
    return (
        f'<div class="batchkit-run" data-run="{html.escape(run.run_id)}" style="font-size:13px">'
        f'<div style="background:#e8e8e8;width:100%;height:10px"><div style="background:#2ca02c;height:10px;'
        f'width:{share:.1%}"></div></div><div>{html.escape(run.progress_text())}</div></div>'
    )


class RunView:
    """Text lines on stderr (or a widget in a notebook) refreshed by a daemon thread."""

    def __init__(
        self, run: ShownRun, *, widget: Any = None, file: IO[str] | None = None, interval: float = 2.0
    ) -> None:
        from batchkit.display.views import _Poller

        self.run = run
        self.widget = widget
        self.file = file
        self._last = ""
        self._poller = _Poller(self._tick, interval, f"batchkit-view-{run.run_id}")
        self._poller.start()

    def _tick(self) -> bool:
        done = self.run.control.done.is_set()
        if self.widget is not None:
            self.widget.value = progress_html(self.run)
            return done
        text = self.run.progress_text()
        if text != self._last or done:
            self._last = text
            print("batchkit: " + text, file=self.file if self.file is not None else sys.stderr, flush=True)
        return done

    def wake(self) -> None:
        self._poller.wake()

    def finish(self, timeout: float = 2.0) -> None:
        self._poller.wake()
        self._poller.join(timeout)


def show_run(run: ShownRun) -> RunView:
    """Show the run's progress: a widget in a notebook kernel (with ipywidgets), else lines on stderr."""
    from batchkit.display.views import _import_widgets, _in_kernel

    if _in_kernel():
        try:
            widgets = _import_widgets()
        except ImportError:
            pass
        else:
            from IPython.display import display

            widget = widgets.HTML(progress_html(run))
            display(widget)  # type: ignore[no-untyped-call]
            return RunView(run, widget=widget, interval=0.5)
    return RunView(run)
