"""Cost figures: each returns the Axes it drew on, with the bars, lines and labels a reader needs."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after use("Agg"): the backend is fixed when pyplot loads
import pytest
from matplotlib import cbook
from matplotlib.axes import Axes

from batchkit.costs.pricing import CostBreakdown, estimate_cost
from batchkit.display.plots import (
    plot_estimate,
    plot_estimate_vs_actual,
    plot_savings_vs_prefix,
    plot_savings_vs_rows,
)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture
def estimate():
    return estimate_cost(
        model="claude-haiku-4-5",
        rows=10_000,
        unique_requests=10_000,
        input_tokens=10_000 * 5000,
        shared_prefix_tokens=4500,
        max_tokens=20,
    )


def shown(text: str) -> str:
    """Text as matplotlib renders it: an escaped dollar sign is a dollar sign."""
    assert not cbook.is_math_text(text), f"{text!r} would render as math"
    return text.replace("\\$", "$")


def legend_texts(ax: Axes) -> list[str]:
    return [shown(t.get_text()) for t in ax.get_legend().get_texts()]


def test_plot_estimate_draws_one_bar_per_mode(estimate) -> None:
    ax = plot_estimate(estimate)
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["standard", "batch", "batch + 5m cache", "batch + 1h cache"]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([c.typical for c in estimate.modes])
    assert shown(ax.yaxis.get_major_formatter()(25.0, 0)) == "$25"
    assert shown(ax.yaxis.get_major_formatter()(2.5, 0)) == "$2.50"
    bar_labels = [shown(t.get_text()) for t in ax.texts]
    assert len(bar_labels) == 4 and all(t.startswith("$") for t in bar_labels)
    assert "upper bound (budget guard)" in legend_texts(ax)


def test_plot_estimate_draws_on_the_given_axes(estimate) -> None:
    _, (left, right) = plt.subplots(1, 2)
    assert plot_estimate(estimate, ax=right) is right
    assert estimate.plot(ax=left) is left
    assert len(left.patches) == len(right.patches) == 4


def test_plot_savings_vs_prefix_marks_the_minimum() -> None:
    ax = plot_savings_vs_prefix("claude-sonnet-4-5", rows=1000, other_input_tokens=500, output_tokens=100, hit_rate=0.9)
    lines = ax.get_lines()
    assert len(lines) == 3  # no cache, cache, minimum
    assert lines[2].get_xdata()[0] == 1024
    labels = legend_texts(ax)
    assert labels[0] == "batch, no cache" and "hit rate 90%" in labels[1]
    assert "minimum cacheable: 1,024 tokens" in labels[2]
    assert "break-even hit rate 53%" in ax.get_title()
    assert ax.get_xlabel() == "shared prefix per request (tokens)"


def test_plot_savings_vs_prefix_shades_a_hit_rate_range() -> None:
    ax = plot_savings_vs_prefix(
        "claude-opus-5",
        rows=1000,
        other_input_tokens=500,
        output_tokens=100,
        hit_rate=(0.3, 0.98),
        ttl="5m",
        prefix_range=[0, 500, 1000, 2000, 4000],
    )
    assert len(ax.get_lines()) == 3 and len(ax.collections) == 1
    assert "assumed" in legend_texts(ax)[2]  # Opus 5's minimum is undocumented


def test_plot_savings_vs_rows_marks_break_even() -> None:
    ax = plot_savings_vs_rows(
        "claude-sonnet-4-5", prefix_tokens=2000, other_input_tokens=500, output_tokens=100, hit_rate=1.0
    )
    lines = ax.get_lines()
    assert len(lines) == 3
    assert lines[2].get_xdata()[0] == 3  # primed 1h cache pays from the third request
    assert "break-even: 3 requests" in legend_texts(ax)
    assert ax.get_xscale() == "log"


def test_plot_savings_vs_rows_without_break_even() -> None:
    never = plot_savings_vs_rows(
        "claude-sonnet-4-5", prefix_tokens=2000, other_input_tokens=500, output_tokens=100, hit_rate=(0.3, 0.5)
    )
    assert len(never.get_lines()) == 2 and "never pays" in never.get_title()
    small = plot_savings_vs_rows(
        "claude-sonnet-4-5", prefix_tokens=500, other_input_tokens=500, output_tokens=100, hit_rate=0.9
    )
    assert len(small.get_lines()) == 2 and "never cached" in small.get_title()


@pytest.mark.parametrize("actual, verdict", [(None, "within"), (1000.0, "above")])
def test_plot_estimate_vs_actual(estimate, actual, verdict) -> None:
    cost = estimate["batch+1h"]
    spent = CostBreakdown(input=cost.typical) if actual is None else actual
    ax = plot_estimate_vs_actual(estimate, spent, mode="batch+1h")
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 1  # the range band
    labels = legend_texts(ax)
    assert any(label.startswith("estimate $") for label in labels)
    assert any(label.startswith("actual $") for label in labels)
    assert any(label.startswith("upper bound") for label in labels)
    assert verdict in shown(ax.get_title())


def test_plots_leave_global_style_alone(estimate) -> None:
    before = dict(plt.rcParams)
    plot_estimate(estimate)
    plot_savings_vs_rows(
        "claude-haiku-4-5",
        prefix_tokens=5000,
        other_input_tokens=300,
        output_tokens=20,
        hit_rate=0.9,
        rows_range=[1, 10, 100],
    )
    assert dict(plt.rcParams) == before


def test_a_job_cost_plots_its_estimate_against_what_it_paid() -> None:
    from batchkit.costs.accounting import EstimateRange, JobCost

    cost = JobCost(
        model="claude-haiku-4-5",
        paid=CostBreakdown(input=1.0, output=0.5),
        requests_paid=100,
        requests_reused=0,
        standard=3.0,
        estimate=EstimateRange("batch", low=1.0, typical=1.4, high=2.0, upper_bound=4.0, token_source="offline"),
    )
    ax = cost.plot()
    assert isinstance(ax, Axes)
    assert "actual $1.50 is within the estimate" in shown(ax.get_title())


def test_cost_objects_never_import_the_display() -> None:
    # The display takes a cost object and draws it; .plot() finds the figure the display registered
    # (batchkit.costs.figures), so no module of batchkit/costs names batchkit.display, lazily or not.
    import ast
    from pathlib import Path

    import batchkit.costs

    for path in Path(batchkit.costs.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):  # from ..display import x: batchkit.display
                names = [("batchkit." if node.level == 2 else "") + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(n.startswith("batchkit.display") for n in names), path.name
