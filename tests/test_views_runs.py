"""A partitioned run's view (batchkit.display.runs), over a stand-in with the run's public members."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from batchkit.display.runs import RunView, display_run, run_html


@dataclass
class _Run:
    run_id: str = "run_<1>"
    rows_planned: int = 0
    rows_done: int = 0
    finished: bool = False
    line: str = "partitions 0 done"

    def progress_text(self) -> str:
        return self.line


def test_the_html_bar_shows_the_share_of_rows_output_and_escapes_the_line():
    page = run_html(_Run(rows_planned=400, rows_done=100, line="a <b> & c"))
    assert 'data-run="run_&lt;1&gt;"' in page and "width:25.0%" in page
    assert "a &lt;b&gt; &amp; c" in page


def test_a_run_with_no_rows_planned_yet_draws_an_empty_bar():
    assert "width:0.0%" in run_html(_Run())


def test_outside_a_kernel_the_view_prints_a_line_when_it_changes_and_the_final_one():
    run, out = _Run(line="partitions 1 done"), io.StringIO()
    view = RunView(run, file=out, interval=0.01)
    threading.Event().wait(0.1)  # several refreshes of an unchanged line
    run.line = "partitions 2 done"
    view.wake()
    run.line, run.finished = "run ended: 2 partitions", True
    view.finish(5)
    lines = out.getvalue().splitlines()
    assert lines[0] == "batchkit: partitions 1 done" and lines[-1] == "batchkit: run ended: 2 partitions"
    assert lines.count("batchkit: partitions 1 done") == 1  # an unchanged line is not printed again


def test_display_run_falls_back_to_text_outside_a_kernel():
    view = display_run(_Run(finished=True))
    assert isinstance(view, RunView) and view.widget is None
    view.finish(5)
