"""The cost and quality explorer: what a job would cost and take under other settings, in place.

``df.claude.explore(prompt, ...)``, ``estimate.explore()`` and ``comparison.explore()`` return an
:class:`Explorer`. Its settings (:class:`Settings`: rows, model, mode, caching and its TTL, the cache
hit rate, the typical answer length, a deadline) price the call again with
:func:`batchkit.costs.scaling.reprice` — ``estimate_cost`` itself on the estimate's own token
statistics, so a figure here is the figure ``estimate()`` gives for the same settings, and ten
million rows price as fast as ten. In a notebook the explorer is an ipywidgets panel
(:mod:`batchkit.display.explore_widget`); elsewhere ``print(explorer)`` shows the same table.

Each line of the table is one way of sending (``realtime`` at the standard price, ``batch`` at the
batch price with the cache asked for) for one model or comparison variant, with its dollars
(low, typical, high, upper bound), its time to finish — realtime from the rate limits (the
workspace's once learned, else :class:`~batchkit.core.modes.RealtimeLimits`' defaults, as the
estimate says), a batch typically within the hour and at most 24 h, as Anthropic documents — and
whether it meets the deadline; ``runs`` marks the line the chosen mode sends (``auto`` chooses as
a job would). From a comparison, each variant's quality, its 95% interval, and the dollars per
correct row at those settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from batchkit.core import modes
from batchkit.core.states import PriceMode
from batchkit.costs import figures
from batchkit.costs.caching import break_even_hit_rate, break_even_rows
from batchkit.costs.estimate import MODE_LABELS, CostEstimate
from batchkit.costs.prices import load_prices
from batchkit.costs.scaling import is_primed, reprice
from batchkit.costs.usage import pct, usd
from batchkit.engine import calls
from batchkit.engine.prepared import Call
from batchkit.engine.sendmode import realtime_limits
from batchkit.errors import InvalidOptionError
from batchkit.stores.store import Store

from .explore_widget import ExplorerPanel, render_html
from .views import in_kernel

__all__ = [
    "CACHING",
    "SEND_MODES",
    "Explorer",
    "Line",
    "Settings",
    "explore_call",
    "explore_comparison",
    "explore_estimate",
]

SEND_MODES = ("batch", "realtime", "auto")
"""The explorer's ``mode``: as ``mode=`` takes it."""
CACHING = ("off", "auto", "prime")
"""The explorer's ``caching``: ``cache=False``, ``"auto"``, ``"prime"``."""
MAX_ROWS = 100_000_000
"""The most rows the explorer prices (its rows control goes to tens of millions)."""


@dataclass(frozen=True)
class Settings:
    """What the explorer prices; :meth:`Explorer.set` changes them, each checked."""

    rows: int
    model: str | None = None
    """The model (None: each comparison variant's own)."""
    mode: str = "batch"
    caching: str = "auto"
    ttl: str = "1h"
    hit_rate: tuple[float, float] | None = None
    """The cache hit range; None: the estimate's (given, or from priming and the batch's size)."""
    output_tokens: int | None = None
    """The typical answer length; None: the estimate's (a prior, the schema's, or calibrated)."""
    deadline_hours: float | None = None


@dataclass(frozen=True)
class Line:
    """What one line of the table prices: a model's (or a comparison variant's) estimate."""

    name: str
    estimate: CostEstimate
    quality: float = math.nan
    interval: tuple[float, float] = (math.nan, math.nan)
    note: str = ""
    """Said above the table (e.g. that the rows are priced as new ones)."""


ANSWERED_NOTE = (
    "every row of this frame has an answer in the store already (a run of it costs $0 more): "
    "priced as new rows like them"
)


Source = Callable[[str | None], Sequence[Line]]
"""The lines for a model (None: the source's own models): an estimate of the call for that model."""


def check_settings(settings: Settings) -> Settings:
    """``settings``, or an :class:`~batchkit.errors.InvalidOptionError` naming the first wrong one and its fix."""
    s = settings
    whole_rows = isinstance(s.rows, int) and not isinstance(s.rows, bool)
    if not whole_rows or not 1 <= s.rows <= MAX_ROWS:
        _refuse("rows", s.rows, f"a whole number of rows from 1 to {MAX_ROWS:,}")
    if s.mode not in SEND_MODES:
        _refuse("mode", s.mode, "'batch' (half price), 'realtime' (standard price, seconds) or 'auto'")
    if s.caching not in CACHING:
        _refuse("caching", s.caching, "'off' (cache=False), 'auto' (cache a long shared prefix) or 'prime'")
    if s.ttl not in ("5m", "1h"):
        _refuse("ttl", s.ttl, "'5m' or '1h', the cache's time to live")
    if s.hit_rate is not None:
        lo, hi = s.hit_rate
        if not 0.0 <= lo <= hi <= 1.0:
            _refuse("hit_rate", s.hit_rate, "a fraction or a (low, high) pair within 0..1, or None")
    out = s.output_tokens
    if out is not None and (not isinstance(out, int) or isinstance(out, bool) or out < 1):
        _refuse("output_tokens", out, "a whole number of tokens ≥ 1, or None for the estimate's own")
    hours = s.deadline_hours
    if hours is not None and (not isinstance(hours, (int, float)) or not 0 < hours < math.inf):
        _refuse("deadline_hours", hours, "hours from now (> 0), or None for no deadline")
    return settings


def _refuse(name: str, value: Any, fix: str) -> None:
    raise InvalidOptionError(f"explore: {name} must be {fix}, not {value!r}", option=name)


def _hit_rate(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    try:
        lo, hi = value
        return float(lo), float(hi)
    except (TypeError, ValueError):
        _refuse("hit_rate", value, "a fraction or a (low, high) pair within 0..1, or None")
        raise  # unreachable: _refuse raises


class Explorer:
    """What ``df.claude.explore(...)``, ``estimate.explore()`` and ``comparison.explore()`` return:
    the call's cost and time under settings you move, with the figures ``estimate`` gives for them.

    ``explorer.set(rows=..., mode=..., ...)`` changes settings (checked first, nothing is sent);
    ``explorer.table`` is the current figures as a DataFrame, ``explorer.break_even`` the
    break-even points, ``print(explorer)`` the text view; in a notebook it displays as a panel of
    ipywidgets controls over the same table.

    >>> explorer = df.claude.explore("Sentiment of: {review}")         # doctest: +SKIP
    >>> explorer.set(rows=10_000_000, mode="auto", caching="prime")     # doctest: +SKIP
    >>> explorer.table[["prices", "typical", "finish_seconds", "runs"]]  # doctest: +SKIP
    """

    SEND_MODES = SEND_MODES
    CACHING = CACHING
    MAX_ROWS = MAX_ROWS

    def __init__(
        self,
        source: Source,
        settings: Settings,
        *,
        models: Sequence[str] = (),
        limits: modes.RealtimeLimits | None = None,
        quality_label: str | None = None,
    ) -> None:
        self._source = source
        self._lines: dict[str | None, Sequence[Line]] = {}
        self.models = tuple(models)
        """The models the model control offers (empty: a comparison's variants, each its own)."""
        self.limits = limits or modes.RealtimeLimits()
        self.quality_label = quality_label
        self.settings = check_settings(settings)
        self._listeners: list[Callable[[Explorer], None]] = []
        self.table  # noqa: B018  (estimated and priced now: a wrong call fails here, not in the panel)

    # ------------------------------------------------------------------ settings

    def set(self, **changes: Any) -> Explorer:
        """Change settings by name; returns the explorer (the panel, if shown, follows).

        Args:
            **changes: ``rows`` (1 to 100,000,000), ``model`` (one the explorer offers),
                ``mode`` (``"batch"``, ``"realtime"``, ``"auto"``), ``caching`` (``"off"``,
                ``"auto"``, ``"prime"``), ``ttl`` (``"5m"``, ``"1h"``), ``hit_rate`` (a fraction or
                a ``(low, high)`` pair; None: the estimate's), ``output_tokens`` (the typical
                answer length; None: the estimate's), ``deadline_hours`` (None: no deadline).

        Raises:
            InvalidOptionError: an unknown setting or a wrong value, named with its fix — before
                the figures change.
        """
        known = {f.name for f in dataclasses.fields(Settings)}
        unknown = set(changes) - known
        if unknown:
            raise InvalidOptionError(
                f"explore has no setting {', '.join(sorted(unknown))}; it has {', '.join(sorted(known))}",
                option=sorted(unknown)[0],
            )
        if "hit_rate" in changes:
            changes["hit_rate"] = _hit_rate(changes["hit_rate"])
        model = changes.get("model", self.settings.model)
        if self.models and model not in self.models:
            _refuse("model", model, f"one of {', '.join(self.models)}")
        if not self.models and model != self.settings.model:
            _refuse(
                "model",
                model,
                f"{self.settings.model!r}: this explorer prices its estimate's model only "
                "(df.claude.explore(...) offers every model)",
            )
        settings = check_settings(dataclasses.replace(self.settings, **changes))
        previous, self.settings = self.settings, settings
        try:
            self.table  # noqa: B018  (priced now: a setting the estimate cannot take fails here, not in a view)
        except Exception:
            self.settings = previous
            raise
        for listener in self._listeners:
            listener(self)
        return self

    def on_change(self, listener: Callable[[Explorer], None]) -> None:
        """Call ``listener(explorer)`` after each :meth:`set` (the panel redraws so)."""
        self._listeners.append(listener)

    def lines(self) -> Sequence[Line]:
        """The estimates for the current model (estimated when first asked for, then kept)."""
        model = self.settings.model if self.models else None
        if model not in self._lines:
            self._lines[model] = self._source(model)
        return self._lines[model]

    # ------------------------------------------------------------------ figures

    def priced(self, line: Line) -> CostEstimate:
        """``line``'s estimate priced at the current settings (:func:`batchkit.costs.scaling.reprice`)."""
        s = self.settings
        return reprice(
            line.estimate,
            rows=s.rows,
            typical_output_tokens=s.output_tokens,
            hit_rate=s.hit_rate,
            primed=s.caching == "prime",
        )

    @property
    def table(self) -> pd.DataFrame:
        """The figures at the current settings: one row per line and way of sending (module docstring)."""
        rows = [row for line in self.lines() for row in self._rows(line)]
        return pd.DataFrame(rows).set_index(["line", "mode"])

    def _batch_prices(self) -> str:
        s = self.settings
        return PriceMode.BATCH if s.caching == "off" else f"batch+{s.ttl}"

    def _rows(self, line: Line) -> list[dict[str, Any]]:
        s = self.settings
        e = self.priced(line)
        output = e.requests * e.typical_output_tokens
        realtime, binding = modes.realtime_seconds(e.requests, e.input_tokens, output, self.limits)
        deadline = None if s.deadline_hours is None else s.deadline_hours * 3600.0
        chosen, why = modes.choose(
            s.mode,
            requests=e.requests,
            input_tokens=e.input_tokens,
            output_tokens=output,
            deadline_seconds=deadline,
            limits=self.limits,
        )
        timing = {
            "realtime": (realtime, realtime, f"{binding} binds{modes.where(self.limits)}"),
            "batch": (modes.TYPICAL_BATCH_SECONDS, modes.MAX_BATCH_SECONDS, "typically within 1 h, at most 24 h"),
        }
        out = []
        for mode, prices in (("realtime", PriceMode.STANDARD), ("batch", self._batch_prices())):
            cost = e[prices]
            finish, finish_max, basis = timing[mode]
            row: dict[str, Any] = {
                "line": line.name,
                "mode": mode,
                "prices": MODE_LABELS[prices],
                "low": cost.low,
                "typical": cost.typical,
                "high": cost.high,
                "upper_bound": cost.upper_bound,
                "requests": e.requests,
                "finish_seconds": finish,
                "finish_max_seconds": finish_max,
                "timing": basis,
                "meets_deadline": None if deadline is None else finish_max <= deadline,
                "runs": mode == chosen,
                "why": why if mode == chosen else "",
            }
            if self.quality_label is not None:
                row.update(_quality(line, cost.typical, s.rows))
            out.append(row)
        return out

    @property
    def break_even(self) -> dict[str, Any]:
        """Where the choices turn, for the (first) line's model at the current settings: the hit rate
        above which the cache pays (``hit_rate``), the fewest requests from which it pays at the
        typical hit rate (``rows``; None: never), and the requests from which ``auto`` sends batches."""
        line = self.lines()[0]
        e = self.priced(line)
        prices = e.basis.get("prices")
        ttl = self.settings.ttl
        mid = (e.basis.get("typical_hit_rate") or sum(e.hit_rate) / 2) if e.requests else e.hit_rate[0]
        cached = bool(e.cached_prefix_tokens)
        return {
            "model": e.model,
            "ttl": ttl,
            "cached_prefix_tokens": e.cached_prefix_tokens,
            "hit_rate": break_even_hit_rate(e.model, ttl=ttl, prices=prices) if cached else None,
            "typical_hit_rate": mid,
            "rows": break_even_rows(e.model, hit_rate=mid, ttl=ttl, prices=prices) if cached else None,
            "auto_batch_from": modes.AUTO_REALTIME_BELOW,
        }

    # ------------------------------------------------------------------ views

    def headline(self) -> list[str]:
        """The settings and the break-even points, as lines of text."""
        s, b = self.settings, self.break_even
        first = self.priced(self.lines()[0])
        lo, hi = s.hit_rate or first.hit_rate
        given = s.hit_rate is not None or first.basis.get("typical_hit_rate") is None
        hit = f"hit rate {pct(lo)}–{pct(hi)}" + ("" if given else " (from priming and size)")
        output = f"output {s.output_tokens:,} tokens" if s.output_tokens else _output_basis(first)
        if not s.output_tokens and len(self.lines()) > 1:
            output = "output as each variant's estimate has it"
        deadline = (
            "no deadline" if s.deadline_hours is None else f"deadline in {modes.duration(s.deadline_hours * 3600)}"
        )
        model = s.model or "each variant's model"
        caching = "caching off" if s.caching == "off" else f"caching {s.caching} ({s.ttl})"
        lines = [f"{model}: {s.rows:,} rows, mode {s.mode}, {caching}, {hit}, {output}, {deadline}"]
        if b["hit_rate"] is None:
            lines.append(f"no shared prefix is cached for {b['model']}: caching changes nothing")
        else:
            pays = "never pays" if b["rows"] is None else f"pays from {b['rows']:,} requests"
            lines.append(
                f"break-even: a {b['ttl']} cache pays above a {pct(b['hit_rate'])} hit rate; at "
                f"{pct(b['typical_hit_rate'])} it {pays}"
            )
        lines.append(
            f"auto sends realtime under {b['auto_batch_from']:,} requests (or for a near deadline), else batch"
        )
        lines += list(dict.fromkeys(line.note for line in self.lines() if line.note))
        return lines

    def text_rows(self) -> list[tuple[str, ...]]:
        """The table as cells of text (header first): what the text view and the panel show."""
        header = ["line", "mode", "prices", "low", "typical", "high", "upper bound", "finish", "deadline", "runs"]
        if self.quality_label is not None:
            header[1:1] = [self.quality_label, "$ / correct row"]
        rows: list[tuple[str, ...]] = [tuple(header)]
        for (name, mode), r in self.table.iterrows():
            finish = f"≈ {modes.duration(r['finish_seconds'])}"
            if r["finish_max_seconds"] > r["finish_seconds"]:
                finish += f" (≤ {modes.duration(r['finish_max_seconds'])})"
            meets = {None: "", True: "meets", False: "may miss"}[r["meets_deadline"]]
            if r["meets_deadline"] is False and r["finish_seconds"] <= (self.settings.deadline_hours or 0) * 3600:
                meets = "likely"  # a batch typically within the hour, surely only within 24 h
            cells = [name, mode, r["prices"], *(usd(r[k]) for k in ("low", "typical", "high", "upper_bound"))]
            cells += [finish, meets, "◀ runs" if r["runs"] else ""]
            if self.quality_label is not None:
                cells[1:1] = [_interval_text(r), _per_correct_text(r)]
            rows.append(tuple(cells))
        return rows

    def __str__(self) -> str:
        rows = self.text_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        why = [r["why"] for _, r in self.table.iterrows() if r["why"]]
        return "\n".join(["Explorer", *self.headline(), "", *table, *(["", why[0]] if why else [])])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return render_html(self)

    def _ipython_display_(self) -> None:
        """The panel in a Jupyter kernel with ipywidgets; the HTML table (or text) elsewhere."""
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:  # called outside IPython: no one to hand a mimebundle to
            print(self)
            return
        if in_kernel():
            try:
                panel = ExplorerPanel(self)
            except ImportError:
                pass
            else:
                display(panel.widget)  # type: ignore[no-untyped-call]  # IPython ships no types
                return
        display({"text/plain": str(self), "text/html": self._repr_html_()}, raw=True)  # type: ignore[no-untyped-call]


def _quality(line: Line, typical: float, rows: int) -> dict[str, float]:
    """A comparison line's quality, its interval, and the dollars per correct row at ``typical``."""
    lo, hi = line.interval
    per = typical / rows

    def per_correct(q: float) -> float:
        return per / q if q and not math.isnan(q) else math.inf

    return {
        "quality": line.quality,
        "quality_low": lo,
        "quality_high": hi,
        "per_correct_row": per_correct(line.quality),
        "per_correct_row_low": per_correct(hi),
        "per_correct_row_high": per_correct(lo),
    }


def _interval_text(r: Mapping[str, Any]) -> str:
    if math.isnan(r["quality"]):
        return "no score"
    return f"{r['quality']:.1%} ({r['quality_low']:.0%}–{r['quality_high']:.0%})"


def _per_correct_text(r: Mapping[str, Any]) -> str:
    if not math.isfinite(r["per_correct_row"]):
        return "—"
    return f"{usd(r['per_correct_row'])} ({usd(r['per_correct_row_low'])}–{usd(r['per_correct_row_high'])})"


def _output_basis(e: CostEstimate) -> str:
    where = {"schema": "from the output schema", "measured": "calibrated", "given": "given"}.get(
        e.output_basis or "", "a prior"
    )
    if e.calibrated_on:
        where = f"calibrated on {e.calibrated_on}"
    return f"output {e.typical_output_tokens:,} tokens ({where})"


def starting_settings(estimate: CostEstimate, **given: Any) -> Settings:
    """The explorer's settings for ``estimate``: its own rows, model and caching, then ``given``."""
    caching = "prime" if is_primed(estimate) else "auto" if estimate.cached_prefix_tokens else "off"
    values: dict[str, Any] = {"rows": estimate.rows, "model": estimate.model, "caching": caching, **given}
    if "hit_rate" in values:
        values["hit_rate"] = _hit_rate(values["hit_rate"])
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise InvalidOptionError(
            f"explore has no setting {', '.join(sorted(unknown))}; it has {', '.join(sorted(known))}",
            option=sorted(unknown)[0],
        )
    return check_settings(Settings(**values))


def explore_estimate(estimate: CostEstimate, **settings: Any) -> Explorer:
    """The explorer of one estimate (``estimate.explore(**settings)``): its model only, at default
    rate limits (``df.claude.explore`` also offers other models and the workspace's learned limits)."""
    if settings.get("model", estimate.model) != estimate.model:
        _refuse(
            "model",
            settings["model"],
            f"{estimate.model!r}: this explorer prices its estimate's model only "
            "(df.claude.explore(...) offers every model)",
        )
    lines = (Line(estimate.model, estimate),)
    return Explorer(lambda _model: lines, starting_settings(estimate, **settings))


def explore_comparison(comparison: Any, **settings: Any) -> Explorer:
    """The explorer of a :class:`batchkit.Comparison` (``comparison.explore(**settings)``): one line per
    variant with a projection (its whole-frame estimate, calibrated on its sample), with its quality,
    the quality's 95% interval, and the dollars per correct row at the explorer's settings.

    Raises:
        InvalidOptionError: no variant has a projection, or a wrong setting.
    """
    lines = tuple(
        Line(v.name, v.projection, v.quality, v.interval) for v in comparison.variants if v.projection is not None
    )
    if not lines:
        raise InvalidOptionError(
            "no variant of this comparison has a whole-frame estimate to explore: compare on a frame "
            "(df.claude.compare(...)), then explore",
            option="comparison",
        )
    start = starting_settings(lines[0].estimate, model=None, **settings)
    return Explorer(lambda _model: lines, start, quality_label=comparison.quality_label)


def explore_call(call_for: Callable[[Mapping[str, Any]], Call], *, rows: int | None = None) -> Explorer:
    """The explorer of a front end's call (``df.claude.explore``): ``call_for(overrides)`` prepares
    the call with some options replaced (``model``, ``cache``). Every option is checked — and
    ``rows`` — before anything is counted; the model control offers every priced model, each
    estimated when first picked; realtime is timed by the workspace's limits once learned.

    Raises:
        InvalidOptionError: a wrong option or setting, or ``sample_answers=`` (it pays for answers:
            estimate with it once, then ``estimate.explore()``; or pass ``calibrate=job``).
    """
    call = call_for({})
    run = call.options.run
    if call.options.estimate.sample_answers is not None:
        _refuse(
            "sample_answers",
            call.options.estimate.sample_answers,
            "left out: explore answers nothing. Estimate with it once and explore that "
            "(df.claude.estimate(..., sample_answers=20).explore()), or pass calibrate=job",
        )
    caching = "off" if run.cache is False else str(run.cache)
    start = Settings(
        rows=len(call.plan.row_keys) if rows is None else rows,
        model=call.model,
        mode=run.mode,
        caching=caching,
        ttl=run.cache_ttl,
        deadline_hours=_hours(run.deadline),
    )
    check_settings(start)
    # The base is estimated with the cache on, so that the prefix is known and "off" is one control away.
    base = {"cache": "auto"} if run.cache is False else {}

    def source(model: str | None) -> Sequence[Line]:
        asked = call if model == call.model and not base else call_for({**base, "model": model})
        estimate = calls.estimate(asked)
        if estimate.requests or not estimate.unique_requests:
            return (Line(str(model), estimate),)
        # Every row is answered already (explored after its run): priced as new rows like them.
        with tempfile.TemporaryDirectory(prefix="batchkit-explore-") as folder:
            empty = Store(Path(folder) / "empty.sqlite3")
            try:
                fresh = calls.estimate(asked, store=empty)
            finally:
                empty.close()
        return (Line(str(model), fresh, note=ANSWERED_NOTE),)

    models = list(dict.fromkeys([call.model, *load_prices(run.prices)]))
    return Explorer(source, start, models=models, limits=realtime_limits(call))


def _hours(deadline: Any) -> float | None:
    """A ``deadline=`` (seconds, a timedelta or a datetime) as hours from now."""
    if deadline is None:
        return None
    if isinstance(deadline, dt.timedelta):
        return deadline.total_seconds() / 3600
    if isinstance(deadline, dt.datetime):
        return (deadline - dt.datetime.now(deadline.tzinfo or dt.UTC)).total_seconds() / 3600
    return float(deadline) / 3600


figures.register_view("explorer", explore_estimate)
