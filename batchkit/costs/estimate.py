"""The estimate a user reads before paying: :class:`CostEstimate`, one :class:`ModeCost` per way of running. Pure.

An estimate holds the counts it was made from (rows, requests, tokens), one range of dollars per
price mode (:data:`MODES`: the Messages API, Message Batches, and batches with a 5 min or 1 h
prompt cache) and the notes that qualify them; it prints as a table, renders in a notebook,
turns into a frame, and checks a budget before anything is sent. It is built by
:func:`batchkit.costs.pricing.estimate_cost`; it draws nothing itself: ``.plot()`` hands it to the
figure registered for it (:mod:`batchkit.costs.figures`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.core.states import PriceMode
from batchkit.errors import BudgetExceededError

from . import figures
from .prices import PRICES_AS_OF, Price
from .usage import CostBreakdown, pct, usd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["CACHED_MODES", "MODES", "MODE_LABELS", "CostEstimate", "ModeCost"]

MODES: tuple[PriceMode, ...] = tuple(PriceMode)
"""The ways to run a job an estimate compares: Messages API, Batch API, Batch API + prompt cache."""
MODE_LABELS: dict[str, str] = {
    PriceMode.STANDARD: "standard",
    PriceMode.BATCH: "batch",
    PriceMode.BATCH_5M: "batch + 5m cache",
    PriceMode.BATCH_1H: "batch + 1h cache",
}
CACHED_MODES = frozenset({PriceMode.BATCH_5M, PriceMode.BATCH_1H})
"""The price modes with a prompt cache."""


@dataclass(frozen=True)
class ModeCost:
    """Dollars for one way of running the job."""

    mode: str
    low: float
    """The fewest likely output tokens (free text uncalibrated: one-token answers), best hit rate of the range."""
    typical: float
    """Typical output, middle of the hit-rate range."""
    high: float
    """The most likely output tokens (free text uncalibrated: ``max_tokens``), worst hit rate of the range."""
    upper_bound: float
    """Every answer at ``max_tokens`` and no cache hit at all: what the budget guard checks."""
    breakdown: CostBreakdown
    """The typical figure by kind of token."""


@dataclass(frozen=True, repr=False)
class CostEstimate:
    """Tokens and dollars for a job before it runs, under each of :data:`MODES`.

    Build it with :func:`estimate_cost`. Display it in a notebook, print it, ``.to_frame()``
    it or ``.plot()`` it; ``check_budget(max_cost)`` raises before anything is paid.
    """

    model: str
    rows: int
    rows_skipped: int
    unique_requests: int
    already_answered: int
    requests: int
    """Requests that will be sent and paid for: unique and not already answered."""
    input_tokens: int
    shared_prefix_tokens: int
    """Shared prefix per request as given."""
    cached_prefix_tokens: int
    """Shared prefix per request that can be cached (0 when under the model's minimum)."""
    max_tokens: int
    typical_output_tokens: int
    typical_output_assumed: bool
    token_source: str
    hit_rate: tuple[float, float]
    price: Price
    modes: tuple[ModeCost, ...]
    notes: tuple[str, ...] = ()
    in_flight: int = 0
    """Requests already in batches that were sent (a resumed job, or another call): paid for,
    waited for, and not sent again — not in :attr:`requests`."""
    prices_as_of: str = PRICES_AS_OF
    output_bound: int | None = None
    """The most output tokens a request can take (``max_tokens``, or less when the schema bounds it)."""
    output_basis: str | None = None
    """Where the output figures come from: ``"schema"``, ``"measured"``, ``"given"`` or None (a guess)."""
    calibrated_on: str | None = None
    """What the estimate was calibrated on (``estimate(..., calibrate=...)``), or None."""
    finish_seconds: Mapping[str, float] = field(default_factory=dict)
    """Expected seconds to finish per way of sending (``realtime``, ``batch`` typical, ``batch_max``)."""
    sample_answers: int = 0
    """Rows answered in realtime to calibrate this estimate (``estimate(..., sample_answers=N)``): paid,
    stored, and reused by the run, so they are in :attr:`already_answered`, not in :attr:`requests`."""
    sample_cost: float = 0.0
    """Dollars those answers cost (standard price, realtime), already paid; not in any mode's figures."""
    sample_job: str | None = None
    """The job id of that sample."""
    basis: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The arguments of :func:`~batchkit.costs.pricing.estimate_cost` this estimate was made from: what
    :func:`~batchkit.costs.scaling.reprice` prices again at another row count, output length or hit rate."""
    staged: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """A cascade's: the arguments of :func:`~batchkit.costs.stages.combine_estimates` it was made from
    (each stage's estimate over every row, the escalation shares): ``reprice`` prices every stage again."""

    def __getitem__(self, mode: str) -> ModeCost:
        for cost in self.modes:
            if cost.mode == mode:
                return cost
        raise KeyError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")

    def upper_bound(self, mode: str = PriceMode.BATCH) -> float:
        """The most the run can cost in ``mode``: every answer ``max_tokens`` long, no cache hit."""
        return self[mode].upper_bound

    def check_budget(self, max_cost: float, mode: str = PriceMode.BATCH) -> None:
        """Raise :class:`~batchkit.errors.BudgetExceededError` if the upper bound is over ``max_cost``."""
        bound = self.upper_bound(mode)
        if bound <= max_cost:
            return
        cost = self[mode]
        hits = " and no cache hit" if mode in CACHED_MODES and self.cached_prefix_tokens else ""
        if self.staged:
            raise BudgetExceededError(self._cascade_over(mode, max_cost, hits), limit=max_cost, estimate=bound)
        raise BudgetExceededError(
            f"The {MODE_LABELS[mode]} run could cost up to {usd(bound)}, over max_cost={usd(max_cost)}: "
            f"{self.requests:,} requests, {self.input_tokens:,} input tokens ({self._token_note()}), "
            f"every answer {self._bound:,} tokens long{hits}. Typical estimate {usd(cost.typical)} "
            f"(range {usd(cost.low)}–{usd(cost.high)}). Lower max_tokens, send fewer rows, or raise max_cost.",
            limit=max_cost,
            estimate=bound,
        )

    def _cascade_over(self, mode: str, max_cost: float, hits: str) -> str:
        """A cascade's ``max_cost=`` refusal: the requests its bound counts (every stage at the high
        escalation share, not the typical one), what that share assumes, and the fix for each case."""
        stages, shares = self.staged["stages"], self.staged["shares"]
        reach, high = 1.0, [1.0]
        for share in shares[: len(stages) - 1]:
            reach *= share[2]
            high.append(reach)
        requests = round(sum(e.requests * r for e, r in zip(stages, high, strict=True)))
        cost = self[mode]
        every = all(share[2] >= 1.0 for share in shares)
        assumed = (
            "every row escalates (the high end of the assumed share)"
            if every
            else f"{', '.join(pct(share[2]) for share in shares)} of rows escalate (the high end of the measured share)"
        )
        fix = (
            f"Measure the share with compare(..., cascade=True) and pass calibrate=cmp, or run the first model "
            f"alone (model={stages[0].model!r}); else lower max_tokens, send fewer rows, or raise max_cost."
            if every
            else "Raise max_cost, lower max_tokens, send fewer rows, or pass a lower threshold= (fewer rows escalate)."
        )
        return (
            f"The {MODE_LABELS[mode]} run of the cascade {self.model} could cost up to {usd(self.upper_bound(mode))}, "
            f"over max_cost={usd(max_cost)}: the bound assumes {assumed}, so {requests:,} requests, every answer "
            f"{self._bound:,} tokens long{hits}. Typical estimate {usd(cost.typical)} for {self.requests:,} requests "
            f"(range {usd(cost.low)}–{usd(cost.high)}; {self.staged['basis']}). {fix}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per mode: dollars (low, typical, high, upper_bound) and tokens."""
        rows = [
            {
                "mode": c.mode,
                "low": c.low,
                "typical": c.typical,
                "high": c.high,
                "upper_bound": c.upper_bound,
                "requests": self.requests,
                "input_tokens": self.input_tokens,
                "cached_prefix_tokens": self.cached_prefix_tokens if c.mode in CACHED_MODES else 0,
                "output_tokens_typical": self.requests * self.typical_output_tokens,
                "output_tokens_max": self.requests * self._bound,
            }
            for c in self.modes
        ]
        return pd.DataFrame(rows).set_index("mode")

    def plot(self, ax: Axes | None = None) -> Axes:
        """Bars of the typical cost per mode with the low–high range (:func:`batchkit.display.plots.plot_estimate`)."""
        return figures.draw("estimate", self, ax=ax)

    def explore(self, **settings: Any) -> Any:
        """An interactive explorer of this estimate: rows, mode, caching, hit rate, output length and
        deadline as controls, the cost and time per mode updated in place (an ipywidgets panel in a
        notebook, a table elsewhere); ``settings`` are its starting values (those of
        :meth:`batchkit.Explorer.set`). Returns a :class:`batchkit.Explorer`."""
        return figures.view("explorer", self, **settings)

    @property
    def _bound(self) -> int:
        return self.output_bound if self.output_bound is not None else self.max_tokens

    # -- display

    def _token_note(self) -> str:
        if self.token_source == "count_tokens":
            return "counted by the API"
        if self.token_source == "count_tokens+offline":
            return (
                "counted by the API, except requests too large for count_tokens, "
                "estimated offline at ≈4 UTF-8 bytes per token"
            )
        return "offline estimate, ≈4 UTF-8 bytes per token"

    def _summary(self) -> list[str]:
        dupes = self.rows - self.rows_skipped - self.unique_requests
        basis = {
            "schema": ", from the output schema",
            "measured": ", measured",
            "given": ", your figure: a prior, not measured",
        }.get(self.output_basis or "", "")
        guess = ", a prior: not measured" if self.typical_output_assumed else basis
        typical = f"{self.typical_output_tokens:,}{guess}"
        lines = [
            (
                f"{self.model}: {self.requests:,} requests to send ({self.rows:,} rows: "
                f"{self.rows_skipped:,} skipped, {dupes:,} duplicates, "
                f"{self.already_answered:,} already answered"
                + (f", {self.in_flight:,} in batches already sent: paid for, not sent again" if self.in_flight else "")
                + ")"
            ),
            (
                f"input {self.input_tokens:,} tokens ({self._token_note()}); output up to "
                f"{self._bound:,} tokens per request (typical {typical})"
            ),
        ]
        if self.sample_answers:
            lines.append(
                f"sample: {self.sample_answers:,} rows answered in realtime ({self.sample_job}) for "
                f"{usd(self.sample_cost)}, paid at the standard price; the run reuses their answers"
            )
        if self.calibrated_on:
            lines.append(f"calibrated on {self.calibrated_on}")
        if self.cached_prefix_tokens:
            lo, hi = self.hit_rate
            lines.append(
                f"cached prefix {self.cached_prefix_tokens:,} tokens per request; cache hit "
                f"rate {pct(lo)}–{pct(hi)} (best effort in a batch)"
            )
        return lines

    def _table_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        base = self[PriceMode.STANDARD].typical
        rows = []
        for c in self.modes:
            vs = "—" if c.mode == PriceMode.STANDARD or not base else f"−{1 - c.typical / base:.0%}"
            if base and c.typical > base:
                vs = f"+{c.typical / base - 1:.0%}"
            figures = (usd(c.low), usd(c.typical), usd(c.high), usd(c.upper_bound))
            rows.append((MODE_LABELS[c.mode], *figures, vs))
        return rows

    def __str__(self) -> str:
        header = ("mode", "low", "typical", "high", "upper bound", "vs standard")
        rows = [header, *self._table_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        table = [
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        notes = [f"- {n}" for n in self.notes]
        return "\n".join(["CostEstimate", *self._summary(), "", *table, *(["", *notes] if notes else [])])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = 'style="padding:2px 8px;text-align:{}"'
        head = "".join(
            f"<th {cell.format('left' if i == 0 else 'right')}>{esc(h)}</th>"
            for i, h in enumerate(("mode", "low", "typical", "high", "upper bound", "vs standard"))
        )
        body = "".join(
            "<tr>"
            + "".join(f"<td {cell.format('left' if i == 0 else 'right')}>{esc(v)}</td>" for i, v in enumerate(row))
            + "</tr>"
            for row in self._table_rows()
        )
        summary = "<br>".join(esc(line) for line in self._summary())
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return (
            '<div class="batchkit-estimate"><b>CostEstimate</b>'
            f'<div style="font-size:90%">{summary}</div>'
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            + (f'<ul style="font-size:90%;margin:4px 0">{notes}</ul>' if notes else "")
            + f'<div style="font-size:80%;color:#666">prices as of {esc(self.prices_as_of)}</div></div>'
        )
