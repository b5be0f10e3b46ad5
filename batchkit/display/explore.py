"""The cost and quality explorer: what a job would cost and take under other settings, in place.

``df.claude.explore(prompt, ...)``, ``estimate.explore()`` and ``comparison.explore()`` return an
:class:`Explorer`. Its settings (:class:`Settings`: rows, model, mode, caching and its TTL, the cache
hit rate, the typical answer length, a deadline) price the call again with
:func:`batchkit.costs.scaling.reprice` — ``estimate_cost`` itself on the estimate's own token
statistics, so a figure here is the figure ``estimate()`` gives for the same settings, and ten
million rows price as fast as ten. In a notebook the explorer is an ipywidgets panel
(:mod:`batchkit.display.explore_widget`); elsewhere ``print(explorer)`` shows the same table.
Explorers are built from a call, an estimate or a comparison in :mod:`batchkit.display.explore_sources`.

Each line of the table is one way of sending (``realtime`` at the standard price, ``batch`` at the
batch price with the cache asked for) for one model or comparison variant, with its dollars
(low, typical, high, upper bound), its time to finish — realtime from the rate limits (the
workspace's once learned, else :class:`~batchkit.core.modes.RealtimeLimits`' defaults, as the
estimate says), a batch typically within the hour and at most 24 h, as Anthropic documents — and
whether it meets the deadline; ``runs`` marks the line the chosen mode sends (``auto`` chooses as
a job would). A cascade's stages run one after another: its times are the stages' added up (stage
k's requests are the rows times the share that reaches it), the deadline is checked on the total,
and ``auto`` chooses per stage — when the stages differ, a third line prices the mix (``stage 1
batch, stage 2 realtime``). The batch line reads ``batch`` when nothing is cached. From a
comparison, each variant's quality, its 95% interval, and the dollars per correct row at those
settings (a cascade's range also spans its escalation share's cost range).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pandas as pd

from batchkit.core import modes
from batchkit.core.states import PriceMode
from batchkit.costs.caching import break_even_hit_rate, break_even_rows
from batchkit.costs.estimate import MODE_LABELS, CostEstimate, ModeCost
from batchkit.costs.scaling import reprice
from batchkit.costs.stages import mixed_cost, reaches
from batchkit.costs.usage import pct, usd
from batchkit.errors import InvalidOptionError

from .explore_widget import ExplorerPanel, render_html
from .views import in_kernel

__all__ = [
    "CACHING",
    "SEND_MODES",
    "Explorer",
    "Line",
    "Settings",
    "as_hit_rate",
    "check_setting_names",
    "check_settings",
    "refuse",
    "refuse_model",
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
    rescaled: CostEstimate | None = None
    """What other row counts scale (None: ``estimate``): a cascade whose later stage is answered already
    costs $0 for it at the frame's own rows, and new rows like them at others."""


Source = Callable[[str | None], Sequence[Line]]
"""The lines for a model (None: the source's own models): an estimate of the call for that model."""


def check_setting_names(names: Iterable[str]) -> None:
    """Refuse a setting the explorer does not have, naming the ones it has."""
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(names) - known
    if unknown:
        raise InvalidOptionError(
            f"explore has no setting {', '.join(sorted(unknown))}; it has {', '.join(sorted(known))}",
            option=sorted(unknown)[0],
        )


def check_settings(settings: Settings) -> Settings:
    """``settings``, or an :class:`~batchkit.errors.InvalidOptionError` naming the first wrong one and its fix."""
    s = settings
    whole_rows = isinstance(s.rows, int) and not isinstance(s.rows, bool)
    if not whole_rows or not 1 <= s.rows <= MAX_ROWS:
        refuse("rows", s.rows, f"a whole number of rows from 1 to {MAX_ROWS:,}")
    if s.mode not in SEND_MODES:
        refuse("mode", s.mode, "'batch' (half price), 'realtime' (standard price, seconds) or 'auto'")
    if s.caching not in CACHING:
        refuse("caching", s.caching, "'off' (cache=False), 'auto' (cache a long shared prefix) or 'prime'")
    if s.ttl not in ("5m", "1h"):
        refuse("ttl", s.ttl, "'5m' or '1h', the cache's time to live")
    if s.hit_rate is not None:
        lo, hi = s.hit_rate
        if not 0.0 <= lo <= hi <= 1.0:
            refuse("hit_rate", s.hit_rate, "a fraction or a (low, high) pair within 0..1, or None")
    out = s.output_tokens
    if out is not None and (not isinstance(out, int) or isinstance(out, bool) or out < 1):
        refuse("output_tokens", out, "a whole number of tokens ≥ 1, or None for the estimate's own")
    hours = s.deadline_hours
    if hours is not None and (not isinstance(hours, (int, float)) or not 0 < hours < math.inf):
        refuse("deadline_hours", hours, "hours from now (> 0), or None for no deadline")
    return settings


def refuse(name: str, value: Any, fix: str) -> NoReturn:
    """Raise the explorer's :class:`~batchkit.errors.InvalidOptionError`: ``name`` must be ``fix``, not ``value``."""
    raise InvalidOptionError(f"explore: {name} must be {fix}, not {value!r}", option=name)


def refuse_model(fixed: str, value: Any, *, cascade: bool) -> NoReturn:
    """Refuse another ``model`` for an explorer of one estimate (``fixed``'s), naming the call that prices it."""
    if cascade:
        refuse(
            "model",
            value,
            f"{fixed!r}: this explorer prices its cascade only "
            "(another cascade is another call: df.claude.explore(..., cascade=[...]))",
        )
    refuse(
        "model",
        value,
        f"{fixed!r}: this explorer prices its estimate's model only (df.claude.explore(...) offers every model)",
    )


def as_hit_rate(value: Any) -> tuple[float, float] | None:
    """A ``hit_rate`` setting as a ``(low, high)`` pair (a fraction is both), or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    try:
        lo, hi = value
        return float(lo), float(hi)
    except (TypeError, ValueError):
        refuse("hit_rate", value, "a fraction or a (low, high) pair within 0..1, or None")


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
        self._priced: tuple[Settings, dict[int, tuple[Line, CostEstimate]]] | None = None
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
        check_setting_names(changes)
        if "hit_rate" in changes:
            changes["hit_rate"] = as_hit_rate(changes["hit_rate"])
        model = changes.get("model", self.settings.model)
        if self.models and model not in self.models:
            refuse("model", model, f"one of {', '.join(self.models)}")
        if not self.models and model != self.settings.model:
            refuse_model(str(self.settings.model), model, cascade=any(x.estimate.staged for x in self.lines()))
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
        """``line``'s estimate priced at the current settings (:func:`batchkit.costs.scaling.reprice`),
        once per line and settings: the table, its text, the headline and the break-even points all
        read it."""
        s = self.settings
        memo = self._priced
        if memo is None or memo[0] is not s:
            memo = self._priced = (s, {})
        hit = memo[1].get(id(line))
        if hit is not None:
            return hit[1]
        scaled = line.rescaled if line.rescaled is not None and line.estimate.rows != s.rows else line.estimate
        priced = reprice(
            scaled,
            rows=s.rows,
            typical_output_tokens=s.output_tokens,
            hit_rate=s.hit_rate,
            primed=s.caching == "prime",
        )
        memo[1][id(line)] = (line, priced)  # the line is kept, so its id is not reused while the settings hold
        return priced

    @property
    def table(self) -> pd.DataFrame:
        """The figures at the current settings: one row per line and way of sending (module docstring)."""
        rows = [row for line in self.lines() for row in self._rows(line)]
        return pd.DataFrame(rows).set_index(["line", "mode"])

    def _batch_prices(self, e: CostEstimate) -> str:
        """The batch line's prices: with the cache asked for, if any stage has a prefix to cache."""
        s = self.settings
        stages = e.staged["stages"] if e.staged else (e,)
        cached = any(x.cached_prefix_tokens for x in stages)
        return f"batch+{s.ttl}" if cached and s.caching != "off" else PriceMode.BATCH

    def _stages(self, e: CostEstimate, deadline: float | None) -> list[_Stage]:
        """Each stage's work (one for a single model): its requests — a cascade's stage k sends rows ×
        its typical reach — its realtime seconds, and the mode a job would send it in, and why."""
        if not e.staged:
            parts: list[tuple[CostEstimate, float]] = [(e, 1.0)]
        else:
            reach = reaches(e.staged["shares"], len(e.staged["stages"]))
            parts = [(x, r[1]) for x, r in zip(e.staged["stages"], reach, strict=True)]
        out: list[_Stage] = []
        for x, r in parts:
            requests = x.requests if not e.staged else round(x.requests * r)
            work = {"input_tokens": x.input_tokens * r, "output_tokens": requests * x.typical_output_tokens}
            seconds, binding = modes.realtime_seconds(requests, limits=self.limits, **work)
            chosen, why = modes.choose(
                self.settings.mode, requests=requests, deadline_seconds=deadline, limits=self.limits, **work
            )
            if not requests and out:  # nothing to send at this stage: no way of sending of its own
                chosen, why = out[-1].chosen, out[-1].why
            out.append(_Stage(requests, seconds, binding, chosen, why))
        return out

    def _ways(self, e: CostEstimate, stages: list[_Stage]) -> list[tuple[str, list[str]]]:
        """The ways of sending priced: all realtime, all batch, and (``auto`` choosing differently per
        stage) the mix, each as its name and every stage's mode."""
        ways = [("realtime", ["realtime"] * len(stages)), ("batch", ["batch"] * len(stages))]
        chosen = [x.chosen for x in stages]
        if len(set(chosen)) > 1:
            ways.append((", ".join(f"stage {k + 1} {m}" for k, m in enumerate(chosen)), chosen))
        return ways

    def _rows(self, line: Line) -> list[dict[str, Any]]:
        s = self.settings
        e = self.priced(line)
        deadline = None if s.deadline_hours is None else s.deadline_hours * 3600.0
        stages = self._stages(e, deadline)
        chosen = [x.chosen for x in stages]
        out = []
        for way, sent in self._ways(e, stages):
            cost = self._cost(e, sent)
            finish, finish_max, basis = self._timing(e, stages, sent)
            runs = sent == chosen
            row: dict[str, Any] = {
                "line": line.name,
                "mode": way,
                "prices": ", ".join(dict.fromkeys(MODE_LABELS[self._prices(e, m)] for m in sent)),
                "low": cost.low,
                "typical": cost.typical,
                "high": cost.high,
                "upper_bound": cost.upper_bound,
                "requests": e.requests,
                "finish_seconds": finish,
                "finish_max_seconds": finish_max,
                "timing": basis,
                "meets_deadline": None if deadline is None else finish_max <= deadline,
                "runs": runs,
                "why": _why(stages) if runs else "",
            }
            if self.quality_label is not None:
                row.update(_quality(line, cost, s.rows, staged=bool(e.staged)))
            out.append(row)
        return out

    def _prices(self, e: CostEstimate, mode: str) -> str:
        return PriceMode.STANDARD if mode == "realtime" else self._batch_prices(e)

    def _cost(self, e: CostEstimate, sent: list[str]) -> ModeCost:
        """The dollars when each stage is sent as ``sent`` says (one mode for all: the estimate's own)."""
        if len(set(sent)) == 1:
            return e[self._prices(e, sent[0])]
        return mixed_cost(e.staged["stages"], e.staged["shares"], [self._prices(e, m) for m in sent])

    def _timing(self, e: CostEstimate, stages: list[_Stage], sent: list[str]) -> tuple[float, float, str]:
        """Typical and longest seconds to finish, the stages one after another, and what times them."""
        if not e.staged:
            if sent[0] == "realtime":
                return stages[0].seconds, stages[0].seconds, f"{stages[0].binding} binds{modes.where(self.limits)}"
            return modes.TYPICAL_BATCH_SECONDS, modes.MAX_BATCH_SECONDS, "typically within 1 h, at most 24 h"
        typical = longest = 0.0
        for x, m in zip(stages, sent, strict=True):
            batch = m == "batch" and x.requests > 0
            typical += modes.TYPICAL_BATCH_SECONDS if batch else x.seconds
            longest += modes.MAX_BATCH_SECONDS if batch else x.seconds
        return (
            typical,
            longest,
            (
                f"{len(stages)} stages one after another (a batch each typically within 1 h, at most 24 h; "
                f"realtime{modes.where(self.limits)})"
            ),
        )

    @property
    def break_even(self) -> dict[str, Any]:
        """Where the choices turn, for the (first) line's model at the current settings: the hit rate
        above which the cache pays (``hit_rate``), the fewest requests from which it pays at the
        typical hit rate (``rows``; None: never), and the requests from which ``auto`` sends batches."""
        line = self.lines()[0]
        e = self.priced(line)
        e = e.staged["stages"][0] if e.staged else e  # a cascade's caching is its first stage's
        prices = e.basis.get("prices")
        ttl = self.settings.ttl
        typical = e.basis.get("typical_hit_rate")  # None: a hit rate given, its middle; 0.0 is a rate
        mid = (sum(e.hit_rate) / 2 if typical is None else typical) if e.requests else e.hit_rate[0]
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
        priced = {x.name: self.priced(x) for x in self.lines()}
        first = next(iter(priced.values()))
        uncached = [] if s.caching == "off" else [k for k, e in priced.items() if self._batch_prices(e) == "batch"]
        cached = [e for k, e in priced.items() if k not in uncached]
        hit = _hit_text(s, cached[0] if cached else first, nothing=not cached)
        output = f"output {s.output_tokens:,} tokens" if s.output_tokens else _output_basis(first)
        if not s.output_tokens and len(self.lines()) > 1:
            output = "output as each variant's estimate has it"
        deadline = (
            "no deadline" if s.deadline_hours is None else f"deadline in {modes.duration(s.deadline_hours * 3600)}"
        )
        model = s.model or "each variant's model"
        caching = "caching off" if s.caching == "off" else f"caching {s.caching} ({s.ttl}), {hit}"
        lines = [f"{model}: {s.rows:,} rows, mode {s.mode}, {caching}, {output}, {deadline}"]
        if b["hit_rate"] is not None:
            pays = "never pays" if b["rows"] is None else f"pays from {b['rows']:,} requests"
            lines.append(
                f"break-even: a {b['ttl']} cache pays above a {pct(b['hit_rate'])} hit rate; at "
                f"{pct(b['typical_hit_rate'])} it {pays}"
            )
        if uncached and len(uncached) < len(self.lines()):
            lines.append(f"no shared prefix is cached for {', '.join(uncached)}: caching changes nothing for them")
        each = " each stage" if first.staged else ""
        lines.append(
            f"auto sends{each} realtime under {b['auto_batch_from']:,} requests (or for a near deadline), else batch"
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


def _quality(line: Line, cost: ModeCost, rows: int, *, staged: bool) -> dict[str, float]:
    """A comparison line's quality, its interval, and the dollars per correct row at the typical cost;
    its range from the quality's interval — and for a cascade the escalation share's cost range too
    (low cost at high quality .. high cost at low quality)."""
    lo, hi = line.interval
    per = cost.typical / rows
    cheap, dear = (cost.low / rows, cost.high / rows) if staged else (per, per)

    def per_correct(q: float, dollars: float) -> float:
        return dollars / q if q and not math.isnan(q) else math.inf

    return {
        "quality": line.quality,
        "quality_low": lo,
        "quality_high": hi,
        "per_correct_row": per_correct(line.quality, per),
        "per_correct_row_low": per_correct(hi, cheap),
        "per_correct_row_high": per_correct(lo, dear),
    }


@dataclass(frozen=True)
class _Stage:
    """One stage's work at the explorer's settings (a single model's call is one stage)."""

    requests: int
    seconds: float
    binding: str
    chosen: str
    why: str


def _why(stages: Sequence[_Stage]) -> str:
    """Why the chosen way runs: the one reason, or each stage's."""
    if len(stages) == 1 or len({x.why for x in stages}) == 1:
        return stages[0].why
    return "; ".join(f"stage {k + 1}: {x.why}" for k, x in enumerate(stages))


def _hit_text(s: Settings, first: CostEstimate, *, nothing: bool) -> str:
    """The cache hit rate the figures take (caching on): none when no line has a prefix to cache."""
    if nothing:
        return "nothing cacheable (no shared prefix long enough): caching changes nothing"
    lo, hi = s.hit_rate or first.hit_rate
    given = s.hit_rate is not None or first.basis.get("typical_hit_rate") is None
    return f"hit rate {pct(lo)}–{pct(hi)}" + ("" if given else " (from priming and size)")


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
