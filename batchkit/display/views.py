"""Live views of a job: an ipywidgets widget in a notebook, text lines elsewhere.

Both are thin views over :func:`batchkit.display.reader.snapshot`, refreshed by a daemon thread so
the kernel stays free; ipywidgets is imported only when a widget is wanted.

>>> job = df.claude.submit("Sentiment of: {review}", output="sentiment")  # doctest: +SKIP
>>> batchkit.display_job(job)                                            # doctest: +SKIP
"""

from __future__ import annotations

import html
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from batchkit.core.states import JobState, RowStatus
from batchkit.engine.reports import warn_failures

from .html_view import render_html
from .reader import snapshot
from .snapshot import FAILED_STATUSES, Snapshot
from .text import render_line, render_text

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job

__all__ = [
    "JobWidget",
    "Poller",
    "TextProgress",
    "display_job",
    "import_widgets",
    "in_kernel",
    "render_from_store",
    "show_job",
    "wait_with_progress",
]


def in_kernel() -> bool:
    """Whether this code runs inside a Jupyter kernel (not a terminal IPython, not a script)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def import_widgets() -> Any:
    """The ipywidgets module, imported now (never at ``import batchkit``), or an ImportError saying
    how to install it."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError(
            "batchkit's live job widget needs ipywidgets: pip install 'ipywidgets>=8' "
            "(JupyterLab then shows it; no extension to enable)"
        ) from exc
    return ipywidgets


class Poller:
    """A daemon thread that calls ``tick`` every ``interval`` seconds until it returns True."""

    def __init__(
        self,
        tick: Callable[[], bool],
        interval: float,
        name: str,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._tick = tick
        self._on_error = on_error
        self.interval = interval
        self._name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self._tick():
                    return
            except Exception as exc:
                self.error = exc
                if self._on_error is not None:
                    self._on_error(exc)
                return
            # A refresh must not eat the process: wait at least five times what it took.
            spent = time.monotonic() - started
            self._wake.wait(max(self.interval, 5 * spent))
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Refresh now rather than at the next interval."""
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class _LiveView:
    """What both views share: a refresh thread over the job and its lifecycle."""

    job: Job
    _poller: Poller

    def start(self) -> _LiveView:
        """Refresh from a background thread until the job is done (idempotent)."""
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop refreshing (the job itself is not affected)."""
        self._poller.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the refresh thread to finish (it does once the job is done)."""
        return self._poller.join(timeout)

    def finish(self, timeout: float = 2.0) -> bool:
        """Show the final state now (the job has just ended) and let the refresh thread end."""
        self._poller.wake()
        return self.join(timeout)


class JobWidget(_LiveView):
    """A live ipywidgets view of a job: a rows bar, the batches with their times, cost, errors,
    and Cancel / Retry failed buttons.

    A daemon thread refreshes it every ``interval`` seconds until the job is done, so it stays
    current while the kernel runs other cells (or waits in ``job.wait()``). The buttons act in
    a worker thread through ``job.cancel()`` and ``job.retry()``. Note that a kernel busy in a
    blocking cell handles button clicks only when that cell ends; interrupt it to detach.

    >>> w = JobWidget(job)   # doctest: +SKIP
    >>> w                    # doctest: +SKIP  (the last expression of a cell displays it)
    """

    def __init__(self, job: Job, *, interval: float = 0.5, start: bool = True) -> None:
        widgets = import_widgets()
        self.job = job
        self.snapshot: Snapshot | None = None
        self._red = False
        self._lock = threading.RLock()
        self._action: threading.Thread | None = None
        self.bar = widgets.IntProgress(
            value=0,
            min=0,
            max=1,
            description="",
            bar_style="",
            layout=widgets.Layout(width="100%", max_width="640px"),
        )
        self.details = widgets.HTML()
        self.message = widgets.HTML()
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", tooltip="job.cancel()", layout=widgets.Layout(width="auto")
        )
        self.retry_button = widgets.Button(
            description="Retry failed",
            icon="redo",
            tooltip="job.retry(statuses=...)",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.cancel_button.on_click(lambda _b: self._act("cancel"))
        self.retry_button.on_click(lambda _b: self._act("retry"))
        buttons = widgets.HBox([self.cancel_button, self.retry_button, self.message])
        self.widget = widgets.VBox([self.bar, self.details, buttons])
        self.widget.add_class("batchkit-job-widget")
        self._poller = Poller(self._tick, interval, name=f"batchkit-view-{job.job_id}", on_error=self._show_error)
        self.refresh()
        if start:
            self.start()

    # -- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return render_text(self.snapshot) if self.snapshot is not None else f"<JobWidget {self.job.job_id}>"

    # -- refreshing

    def _tick(self) -> bool:
        snap = self.refresh()
        return snap.done and not self._busy()

    def _busy(self) -> bool:
        return self._action is not None and self._action.is_alive()

    def refresh(self) -> Snapshot:
        """Read the job now and redraw; returns the snapshot shown."""
        snap = snapshot(self.job)
        with self._lock:
            self.snapshot = snap
            style = snap.style
            if style == "danger":
                self._red = True
            elif self._red:
                style = "danger"  # green never overwrites red
            self.bar.max = max(snap.rows, 1)
            self.bar.value = snap.rows_done
            self.bar.bar_style = style
            self.bar.description = f"{snap.rows_done:,}/{snap.rows:,}"
            self.details.value = render_html(snap, bar=False)
            busy = self._busy()
            self.cancel_button.disabled = snap.done or busy
            self.cancel_button.layout.display = "none" if snap.done else ""
            retryable = snap.done and snap.failed > 0 and snap.status != JobState.CANCELED
            self.retry_button.disabled = busy or not retryable
            self.retry_button.layout.display = "" if retryable or busy else "none"
        return snap

    def _show_error(self, exc: BaseException) -> None:
        self.message.value = (
            f'<span style="color:#d62728">stopped refreshing: {html.escape(f"{type(exc).__name__}: {exc}")}</span>'
        )

    # -- actions

    def cancel(self) -> threading.Thread:
        """What the Cancel button does: ``job.cancel()`` in a worker thread."""
        return self._act("cancel")

    def retry(self) -> threading.Thread:
        """What the Retry failed button does: ``job.retry(statuses=<failed ones>, wait=False)``."""
        return self._act("retry")

    def _act(self, what: str) -> threading.Thread:
        with self._lock:
            if self._busy():
                assert self._action is not None
                return self._action
            self.cancel_button.disabled = True
            self.retry_button.disabled = True
            self.message.value = "canceling…" if what == "cancel" else "resubmitting failed rows…"
            if what == "retry":
                self._red = False  # a new attempt: its outcome decides the colour again
            self._action = threading.Thread(
                target=self._run_action, args=(what,), name=f"batchkit-{what}-{self.job.job_id}", daemon=True
            )
            self._action.start()
            return self._action

    def _run_action(self, what: str) -> None:
        try:
            if what == "cancel":
                self.job.cancel()
                note = "canceled"
            else:
                statuses = [s for s in FAILED_STATUSES if self.snapshot and self.snapshot.by_status.get(s)]
                self.job.retry(statuses=statuses or FAILED_STATUSES, wait=False)
                note = "failed rows resubmitted"
            self.message.value = f'<span style="color:#666">{html.escape(note)}</span>'
        except Exception as exc:
            self.message.value = f'<span style="color:#d62728">{html.escape(f"{what} failed: {exc}")}</span>'
        finally:
            with self._lock:
                self._action = None
            self.refresh()
            self._poller.start()  # a retry makes the job run again


class TextProgress(_LiveView):
    """Text lines for terminals and logs: a line whenever the job's counts change, then the
    full :func:`render_text` once it is done (one line with ``brief``: a comparison shows its
    own table). A job that sent nothing — every row answered from the store — gets one line
    that says so, nothing else."""

    def __init__(
        self, job: Job, *, file: IO[str] | None = None, interval: float = 1.0, start: bool = True, brief: bool = False
    ) -> None:
        self.job = job
        self.file = file
        self.brief = brief
        self.snapshot: Snapshot | None = None
        self._last: Any = None
        self._poller = Poller(self._tick, interval, name=f"batchkit-text-{job.job_id}", on_error=self._show_error)
        if start:
            self.start()

    def _show_error(self, exc: BaseException) -> None:
        out = self.file if self.file is not None else sys.stderr
        print(f"batchkit: stopped showing job {self.job.job_id}: {type(exc).__name__}: {exc}", file=out)

    def _tick(self) -> bool:
        snap = self.snapshot = snapshot(self.job)
        out = self.file if self.file is not None else sys.stderr
        if snap.done:
            if snap.status == JobState.ENDED and not snap.batches:
                text = render_from_store(snap)
            else:
                text = render_line(snap) if self.brief else render_text(snap)
            out.write(text + "\n")  # one write, so lines of views in other threads never interleave
            out.flush()
            return True
        key = (dict(snap.by_status), tuple(b.state for b in snap.batches))
        if key != self._last and snap.rows:  # an empty frame has nothing to show until its one line
            self._last = key
            out.write(render_line(snap) + "\n")
            out.flush()
        return False


def render_from_store(snap: Snapshot) -> str:
    """The one line of a job answered from the store: nothing was sent for it, nothing paid now."""
    head = f"batchkit job {snap.job_id} ({snap.model} → {snap.output!r})"
    if not snap.rows:
        return f"{head}: no rows, nothing sent, $0"
    parts = ", ".join(f"{n:,} {s}" for s, n in snap.by_status.items() if n)
    how = "answered from the store" + (" or skipped" if snap.by_status.get(RowStatus.SKIPPED) else "")
    return f"{head}: {snap.rows:,} rows {how} ({parts}), nothing sent, $0"


def display_job(
    job: Job, *, interval: float = 0.5, file: IO[str] | None = None, brief: bool = False
) -> JobWidget | TextProgress:
    """Show ``job``'s progress where the user is looking, and keep it current.

    In a Jupyter kernel with ipywidgets: a :class:`JobWidget`, displayed in the cell's output.
    Anywhere else (a terminal, a script, a kernel without ipywidgets): a :class:`TextProgress`
    printing to ``file`` (default stderr). Either way a daemon thread does the refreshing and
    the call returns at once; ``.join()`` waits for the final state to be shown.
    """
    if in_kernel():
        try:
            widget = JobWidget(job, interval=interval)
        except ImportError:
            pass
        else:
            from IPython.display import display

            display(widget.widget)  # type: ignore[no-untyped-call]  # IPython ships no types
            return widget
    return TextProgress(job, file=file, interval=max(interval, 1.0), brief=brief)


def show_job(job: Job, *, brief: bool = False) -> JobWidget | TextProgress | None:
    """:func:`display_job` for a call that just submitted ``job`` — except that a job already
    finished (a re-run of the same call, answered from the store) gets one line on a terminal,
    not its whole story again; returns the live view, if any."""
    if job.status == JobState.ENDED and not in_kernel():
        print(render_from_store(snapshot(job)), file=sys.stderr, flush=True)
        return None
    return display_job(job, brief=brief)


def wait_with_progress(job: Job, *, progress: bool = True) -> None:
    """Wait for the job of a blocking call (``batch``, ``classify``, ``extract``), showing its
    progress where the user looks (:func:`display_job`) unless ``progress`` is False; then warn
    once of the rows without an answer (:func:`batchkit.engine.reports.warn_failures`).

    A KeyboardInterrupt propagates: the job and its view keep running (``Job.load`` re-attaches).
    """
    view = show_job(job) if progress else None
    job.wait()
    if view is not None:
        view.finish()  # draw the final state now
    warn_failures(job)
