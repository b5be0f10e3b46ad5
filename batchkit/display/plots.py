"""Cost figures, and a comparison's cost against quality. Every function draws on ``ax`` (a new figure when
``None``) and returns it.

matplotlib is imported here only, and lazily, so ``import batchkit`` stays fast. Nothing here
calls ``plt.show()`` or changes global style; the numbers come from :mod:`batchkit.costs`.

The arrow runs from the display to the costs only: a cost object never imports this module.
Its ``.plot()`` (``estimate.plot()``, ``job.cost.plot()``) draws with the figure this module
registers in :mod:`batchkit.costs.figures` when it is imported (``import batchkit`` imports it).

Example:
    >>> from batchkit.display.plots import plot_savings_vs_rows
    >>> ax = plot_savings_vs_rows("claude-haiku-4-5", prefix_tokens=5000, other_input_tokens=300,
    ...                           output_tokens=20, hit_rate=(0.3, 0.98))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from batchkit.core.states import PriceMode
from batchkit.costs import caching, figures
from batchkit.costs.estimate import MODE_LABELS, MODES, CostEstimate
from batchkit.costs.prices import PriceSource, load_prices
from batchkit.costs.usage import CostBreakdown

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_comparison",
    "plot_estimate",
    "plot_estimate_vs_actual",
    "plot_savings_vs_prefix",
    "plot_savings_vs_rows",
]


class _Range(Protocol):
    """The figures of an estimate for one mode."""

    @property
    def low(self) -> float: ...
    @property
    def typical(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def upper_bound(self) -> float: ...


class _Estimate(Protocol):
    """What the estimate-vs-actual plot reads: a :class:`CostEstimate`, or a job's stored figures."""

    @property
    def model(self) -> str: ...
    def __getitem__(self, mode: str) -> _Range: ...


class _Variant(Protocol):
    """What the comparison plot reads of a variant (:class:`batchkit.compare.comparison.Variant`)."""

    @property
    def name(self) -> str: ...
    @property
    def quality(self) -> float: ...
    @property
    def interval(self) -> tuple[float, float]: ...


class _Comparison(Protocol):
    """What the comparison plot reads (:class:`batchkit.Comparison`; the display does not import it)."""

    @property
    def front(self) -> Sequence[Any]: ...
    @property
    def recommended(self) -> Any: ...
    @property
    def target(self) -> float | None: ...
    @property
    def quality_label(self) -> str: ...
    @property
    def simulated(self) -> bool: ...
    def scorable(self) -> Sequence[Any]: ...
    def cost_per_row(self, variant: Any, *, standard: bool = False) -> float: ...


_COLORS: dict[str, str] = {
    PriceMode.STANDARD: "#8c8c8c",
    PriceMode.BATCH: "#4c72b0",
    PriceMode.BATCH_5M: "#55a868",
    PriceMode.BATCH_1H: "#2a7a44",
}
_NO_CACHE, _CACHE, _MARK, _OVER = "#4c72b0", "#2a7a44", "#c44e52", "#dd8452"


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 3.6)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _dollars(value: float) -> str:
    """A dollar amount for display; the sign is escaped, since two ``$`` in one matplotlib
    text would otherwise turn the span between them into math."""
    if value == 0:
        text = "$0"
    elif abs(value) < 1:
        text = f"${value:.3g}"
    elif abs(value) < 1000:
        text = f"${value:,.2f}".removesuffix(".00")
    else:
        text = f"${value:,.0f}"
    return text.replace("$", r"\$")


def _dollar_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _dollars(v)))


def _hit_range(hit_rate: float | tuple[float, float]) -> tuple[float, float]:
    return (hit_rate, hit_rate) if isinstance(hit_rate, (int, float)) else (float(hit_rate[0]), float(hit_rate[1]))


def _hit_label(lo: float, hi: float) -> str:
    return f"hit rate {lo:.0%}" if lo == hi else f"hit rate {lo:.0%}–{hi:.0%}"


def plot_estimate(estimate: CostEstimate, ax: Axes | None = None) -> Axes:
    """Typical cost per mode as bars, the low–high range as whiskers, the budget guard's upper
    bound as a marker where it lies above the range."""
    ax = _axes(ax)
    costs = [estimate[m] for m in MODES]
    x = np.arange(len(costs))
    typical = np.array([c.typical for c in costs])
    errors = np.array([[c.typical - c.low for c in costs], [c.high - c.typical for c in costs]])
    bars = ax.bar(
        x,
        typical,
        yerr=errors,
        capsize=6,
        color=[_COLORS[m] for m in MODES],
        error_kw={"elinewidth": 1.2, "ecolor": "#333333"},
        label="typical (whiskers: low–high)",
    )
    ax.bar_label(bars, labels=[_dollars(v) for v in typical], padding=2, fontsize=8)
    above = [(i, c.upper_bound) for i, c in enumerate(costs) if c.upper_bound > c.high]
    if above:
        ax.scatter(
            [i for i, _ in above],
            [v for _, v in above],
            marker="_",
            s=300,
            color=_MARK,
            zorder=3,
            label="upper bound (budget guard)",
        )
    ax.set_xticks(x, [MODE_LABELS[m] for m in MODES])
    _dollar_axis(ax.yaxis)
    top = max([c.upper_bound for c in costs] + [c.high for c in costs])
    ax.set_ylim(0, top * 1.3 or 1.0)  # headroom for the bar labels and the legend
    ax.set_ylabel("cost (USD)")
    ax.set_title(f"Estimated cost: {estimate.model}, {estimate.requests:,} requests", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    return ax


def plot_savings_vs_prefix(
    model: str,
    *,
    rows: int,
    other_input_tokens: int,
    output_tokens: int,
    hit_rate: float | tuple[float, float],
    prefix_range: Sequence[int] | None = None,
    ttl: str = "1h",
    batch: bool = True,
    prices: PriceSource = None,
    ax: Axes | None = None,
) -> Axes:
    """Cost of ``rows`` requests against shared-prefix length, with and without a cache.

    A ``(low, high)`` hit rate draws the cached cost at the midpoint with the range shaded.
    The vertical line is the model's minimum cacheable length; below it nothing is cached.
    The saving per prefix token is constant, so caching pays for every length above the
    minimum iff the hit rate beats :func:`~batchkit.costs.caching.break_even_hit_rate` (stated in the title).
    """
    ax = _axes(ax)
    lo, hi = _hit_range(hit_rate)
    kw: dict[str, Any] = {
        "rows": rows,
        "other_input_tokens": other_input_tokens,
        "output_tokens": output_tokens,
        "prefix_range": prefix_range,
        "ttl": ttl,
        "batch": batch,
        "prices": prices,
    }
    mid = caching.savings_vs_prefix(model, hit_rate=(lo + hi) / 2, **kw)
    mode = PriceMode.BATCH if batch else PriceMode.STANDARD
    ax.plot(mid.index, mid["without_cache"], color=_NO_CACHE, label=f"{mode}, no cache")
    ax.plot(mid.index, mid["with_cache"], color=_CACHE, label=f"{mode} + {ttl} cache, {_hit_label(lo, hi)}")
    if lo != hi:
        worst = caching.savings_vs_prefix(model, hit_rate=lo, **kw)["with_cache"]
        best = caching.savings_vs_prefix(model, hit_rate=hi, **kw)["with_cache"]
        ax.fill_between(mid.index, best, worst, color=_CACHE, alpha=0.15, linewidth=0)
    price = load_prices(prices).get(model)
    minimum = price.min_cacheable_tokens
    assumed = "" if price.min_cacheable_known else ", assumed"
    ax.axvline(
        minimum, color=_MARK, linestyle="--", linewidth=1, label=f"minimum cacheable: {minimum:,} tokens{assumed}"
    )
    even = caching.break_even_hit_rate(model, ttl=ttl, prices=prices)
    verdict = "pays above the minimum" if lo > even else ("may not pay" if hi > even else "never pays")
    ax.set_title(f"{model}, {rows:,} requests\ncaching {verdict} (break-even hit rate {even:.0%})", fontsize=10)
    ax.set_xlabel("shared prefix per request (tokens)")
    ax.set_ylabel("cost (USD)")
    _dollar_axis(ax.yaxis)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_savings_vs_rows(
    model: str,
    *,
    prefix_tokens: int,
    other_input_tokens: int,
    output_tokens: int,
    hit_rate: float | tuple[float, float],
    rows_range: Sequence[int] | None = None,
    ttl: str = "1h",
    batch: bool = True,
    prices: PriceSource = None,
    ax: Axes | None = None,
) -> Axes:
    """Cost against the number of requests (log-log), with and without a cache, and the
    break-even row count (:func:`~batchkit.costs.caching.break_even_rows`) as a vertical line."""
    ax = _axes(ax)
    lo, hi = _hit_range(hit_rate)
    kw: dict[str, Any] = {
        "prefix_tokens": prefix_tokens,
        "other_input_tokens": other_input_tokens,
        "output_tokens": output_tokens,
        "rows_range": rows_range,
        "ttl": ttl,
        "batch": batch,
        "prices": prices,
    }
    mid_rate = (lo + hi) / 2
    mid = caching.savings_vs_rows(model, hit_rate=mid_rate, **kw)
    mode = PriceMode.BATCH if batch else PriceMode.STANDARD
    ax.plot(mid.index, mid["without_cache"], color=_NO_CACHE, label=f"{mode}, no cache")
    ax.plot(mid.index, mid["with_cache"], color=_CACHE, label=f"{mode} + {ttl} cache, {_hit_label(lo, hi)}")
    if lo != hi:
        worst = caching.savings_vs_rows(model, hit_rate=lo, **kw)["with_cache"]
        best = caching.savings_vs_rows(model, hit_rate=hi, **kw)["with_cache"]
        ax.fill_between(mid.index, best, worst, color=_CACHE, alpha=0.15, linewidth=0)
    minimum = load_prices(prices).get(model).min_cacheable_tokens
    even = caching.break_even_rows(model, hit_rate=mid_rate, ttl=ttl, prices=prices)
    if prefix_tokens < minimum:
        title = f"prefix {prefix_tokens:,} tokens is under the {minimum:,}-token minimum: never cached"
    elif even is None:
        title = f"at a {mid_rate:.0%} hit rate caching never pays"
    else:
        ax.axvline(even, color=_MARK, linestyle="--", linewidth=1, label=f"break-even: {even:,} requests")
        title = f"caching pays from {even:,} requests"
    ax.set_xscale("log")
    ax.set_yscale("log")
    _dollar_axis(ax.yaxis)
    ax.set_title(f"{model}, {prefix_tokens:,}-token shared prefix\n{title}", fontsize=10)
    ax.set_xlabel("requests")
    ax.set_ylabel("cost (USD)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_estimate_vs_actual(
    estimate: _Estimate, actual: CostBreakdown | float, *, mode: str = PriceMode.BATCH, ax: Axes | None = None
) -> Axes:
    """The estimate's low–high range for ``mode`` as a band, its typical figure and upper bound
    as ticks, and the job's actual cost as a line: green inside the range, orange outside."""
    ax = _axes(ax, figsize=(6.4, 2.2))
    cost = estimate[mode]
    spent = actual.total if isinstance(actual, CostBreakdown) else float(actual)
    ax.barh(
        0,
        cost.high - cost.low,
        left=cost.low,
        height=0.5,
        color=_COLORS[mode],
        alpha=0.35,
        label=f"estimate {_dollars(cost.low)}–{_dollars(cost.high)}",
    )
    ax.plot(
        [cost.typical] * 2, [-0.25, 0.25], color=_COLORS[mode], linewidth=2, label=f"typical {_dollars(cost.typical)}"
    )
    if cost.upper_bound > cost.high:
        ax.plot(
            [cost.upper_bound] * 2,
            [-0.25, 0.25],
            color=_MARK,
            linewidth=1,
            linestyle=":",
            label=f"upper bound {_dollars(cost.upper_bound)}",
        )
    inside = cost.low <= spent <= cost.high
    ax.axvline(spent, color="#2ca02c" if inside else _OVER, linewidth=2, label=f"actual {_dollars(spent)}")
    right = max(cost.upper_bound, spent) * 1.1 or 1.0
    ax.set_xlim(0, right)
    ax.set_ylim(-0.6, 0.9)
    ax.set_yticks([])
    _dollar_axis(ax.xaxis)
    where = "within the estimate" if inside else ("below the estimate" if spent < cost.low else "above the estimate")
    ax.set_title(f"{estimate.model}, {MODE_LABELS[mode]}\nactual {_dollars(spent)} is {where}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2, frameon=False)
    return ax


def plot_comparison(comparison: _Comparison, ax: Axes | None = None) -> Axes:
    """A comparison's variants: batch dollars per row against quality (with 95% intervals); the
    cost–quality front drawn, the recommended variant ringed, the target as a line."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.5, 4))
    for v in comparison.scorable():  # a variant without answers has no point to draw (the table says why)
        lo, hi = v.interval
        x = comparison.cost_per_row(v)
        ax.errorbar(
            [x],
            [v.quality],
            yerr=[[v.quality - lo], [hi - v.quality]],
            fmt="o",
            color="#1f77b4" if v in comparison.front else "#999999",
            capsize=3,
        )
    if comparison.front:
        ax.plot(
            [comparison.cost_per_row(v) for v in comparison.front],
            [v.quality for v in comparison.front],
            "-",
            color="#1f77b4",
            linewidth=1,
            label="cost–quality front",
        )
    if comparison.recommended is not None:
        ax.plot(
            [comparison.cost_per_row(comparison.recommended)],
            [comparison.recommended.quality],
            "o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor="#2ca02c",
            markeredgewidth=2,
            label="recommended",
        )
    if comparison.target is not None:
        ax.axhline(
            comparison.target, color="#d62728", linestyle=":", linewidth=1, label=f"target {comparison.target:.0%}"
        )
    ax.set_xlabel("$ per row (batch price, measured on the sample)")
    ax.set_ylabel(comparison.quality_label)
    ax.set_title("Cost vs quality" + (" (simulated answers)" if comparison.simulated else ""))
    _label_points(ax, [(v.name, comparison.cost_per_row(v), v.quality) for v in comparison.scorable()])
    if not comparison.scorable():
        ax.text(0.5, 0.5, "no variant has answers to score", transform=ax.transAxes, ha="center", va="center")
    if ax.get_legend_handles_labels()[0]:  # matplotlib warns about a legend of nothing
        ax.legend(loc="best", fontsize=8)
    return ax


def _label_points(ax: Axes, points: list[tuple[str, float, float]]) -> None:
    """Name each point beside it, inside the axes and clear of the names already placed: the first of
    a few places around the point that fits (right, left, above, below, further out), else the
    least crowded one."""
    if not points:
        return
    ax.margins(x=0.08, y=0.1)
    ax.autoscale_view()
    figure = ax.figure
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    places = [
        ((6, 3), "left", "bottom"),
        ((-6, 3), "right", "bottom"),
        ((6, -3), "left", "top"),
        ((-6, -3), "right", "top"),
        ((0, 9), "center", "bottom"),
        ((0, -9), "center", "top"),
        ((6, 15), "left", "bottom"),
        ((-6, 15), "right", "bottom"),
        ((6, -15), "left", "top"),
        ((-6, -15), "right", "top"),
    ]
    placed: list[Any] = []
    for name, x, y in sorted(points, key=lambda p: (p[1], p[2])):
        best = None
        for offset, ha, va in places:
            label = ax.annotate(name, (x, y), textcoords="offset points", xytext=offset, fontsize=8, ha=ha, va=va)
            box = label.get_window_extent(renderer).expanded(1.04, 1.1)
            overlaps = sum(box.overlaps(other) for other in placed)
            outside = not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1)
            score = overlaps + 10 * outside
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, label, box)
            else:
                label.remove()
            if score == 0:
                break
        assert best is not None
        placed.append(best[2])


figures.register("estimate", plot_estimate)
figures.register("estimate_vs_actual", plot_estimate_vs_actual)
