"""What a job actually cost, from the usage in each result. Pure.

Every answered request carries its usage (input, output, cache writes by TTL, cache reads); a
job pays for the requests its own batches answered — rows answered earlier, by another job or a
previous run, cost it nothing — at the batch price of its model. :class:`JobCost` puts that next
to what the same tokens would have cost sent one by one to the standard API without caching,
and next to the estimate made when the job was submitted.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from batchkit.core.states import SendMode

from . import figures
from .estimate import MODE_LABELS
from .prices import KINDS
from .usage import CostBreakdown, kind_costs

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["JobCost", "request_costs"]


def request_costs(usage: np.ndarray, model: str, *, batch: bool = True, prices: Any = None) -> np.ndarray:
    """Dollars per request from its usage (``(n, 5)`` token counts)."""
    dollars: np.ndarray = kind_costs(usage, model, batch=batch, prices=prices).sum(axis=1)
    return dollars


@dataclass(frozen=True)
class EstimateRange:
    """The figures of a submitted job's estimate for the mode it ran in."""

    mode: str
    low: float
    typical: float
    high: float
    upper_bound: float
    token_source: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> EstimateRange | None:
        return cls(**data) if data else None


@dataclass(frozen=True)
class JobCost:
    """The actual cost of a job.

    Attributes:
        model: the model priced.
        paid: dollars this job's batches were billed, by kind of token.
        requests_paid: requests answered (and billed) by this job's batches.
        requests_reused: requests whose answers were already in the store: free.
        standard: what the same requests would cost sent one by one to the standard API
            (no batch discount, no caching) — the baseline batch + caching is measured against.
        estimate: the estimate made at submission, for the mode the job ran in (if the model
            has a price).
        by_mode: ``{mode: (dollars, requests)}`` — what was paid at the batch price and what at
            the standard (realtime) price.
    """

    model: str
    paid: CostBreakdown
    requests_paid: int
    requests_reused: int
    standard: float
    estimate: EstimateRange | None = None
    by_mode: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    answered_twice: int = 0
    """Requests the deadline hedge had answered both ways (a batch finished them while it was being
    canceled, and realtime answered them too): both were paid and are in the cost; each row is merged once."""
    lost_responses: int = 0
    """Realtime responses lost on the way back (the connection failed or timed out after the request
    was sent): the API may have answered and charged each of them, and the request was sent again.
    The Messages API cannot tell, so these are counted, not known: at most this many answers were
    paid twice. Not in :attr:`total`."""
    lost_cost: float = 0.0
    """About what :attr:`lost_responses` may have cost on top of :attr:`total` (at the job's average
    realtime cost per answer): an upper estimate, not a charge known to have happened."""

    @property
    def total(self) -> float:
        return self.paid.total

    @property
    def saving(self) -> float:
        """The share of the standard-API cost not paid (0.93 = 93% saved)."""
        return 1.0 - self.total / self.standard if self.standard else 0.0

    @property
    def saving_text(self) -> str:
        """The saving in words: ``"50% saved"``, ``"no saving"`` (a realtime job pays the standard
        price; never ``"-0% saved"``), or ``"3% more"``."""
        if abs(self.saving) < 0.005:
            return "no saving"
        return f"{self.saving:.0%} saved" if self.saving > 0 else f"{-self.saving:.0%} more"

    def to_frame(self) -> pd.DataFrame:
        """Dollars by kind of token, with the total."""
        values = self.paid.to_dict()
        return pd.DataFrame({"dollars": [values[k] for k in KINDS] + [self.total]}, index=[*KINDS, "total"])

    def _lines(self) -> list[str]:
        lines = [
            f"${self.total:,.4f} for {self.requests_paid:,} requests on {self.model}"
            + (f" ({self.requests_reused:,} more answered from the store at $0)" if self.requests_reused else ""),
            "  "
            + ", ".join(
                f"{k.replace('_', ' ')} ${v:,.4f}" for k, v in self.paid.to_dict().items() if v and k != "total"
            ),
            f"  standard API, one by one, no caching: ${self.standard:,.4f} — {self.saving_text}",
        ]
        if len(self.by_mode) > 1 or SendMode.REALTIME in self.by_mode:
            lines.insert(
                2,
                "  by mode: "
                + ", ".join(
                    f"{mode} ${dollars:,.4f} ({count:,} requests)" for mode, (dollars, count) in self.by_mode.items()
                ),
            )
        if self.answered_twice:
            lines.insert(
                3,
                f"  hedge: {self.answered_twice:,} requests answered both by batch and realtime "
                "(both paid, each row merged once)",
            )
        if self.lost_responses:
            lines.append(
                f"  {self.lost_responses:,} realtime responses were lost on the way back (their requests "
                f"tried again): the API may have charged them too — up to about ${self.lost_cost:,.4f} more "
                "than this total"
            )
        if self.estimate is not None:
            e = self.estimate
            slack = 1e-9 * max(1.0, e.high)  # sums in another order differ in the last digit
            inside = e.low - slack <= self.total <= e.high + slack
            where = "within" if inside else ("below" if self.total < e.low else "above")
            lines.append(
                f"  estimate ({MODE_LABELS.get(e.mode, e.mode)}, {e.token_source} tokens): ${e.low:,.4f}–${e.high:,.4f}"
                f", typical ${e.typical:,.4f} — actual is {where} it"
            )
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def __repr__(self) -> str:
        return f"<JobCost ${self.total:,.4f} on {self.model}, {self.saving_text} against the standard price>"

    def _repr_html_(self) -> str:
        # The model id comes from the caller (or the API): escaped like every other line.
        rows = "".join(f"<div>{html.escape(line.strip())}</div>" for line in self._lines())
        return f'<div style="font-family: monospace; font-size: 12px">{rows}</div>'

    def plot(self, ax: Axes | None = None) -> Axes:
        """The estimate's range against the actual cost (needs an estimate;
        :func:`batchkit.display.plots.plot_estimate_vs_actual`)."""
        if self.estimate is None:
            raise ValueError("this job has no estimate to compare with (its model has no price)")
        view = _EstimateView(self.model, self.estimate)
        return figures.draw("estimate_vs_actual", view, self.paid, mode=self.estimate.mode, ax=ax)


class _EstimateView:
    """Just enough of a :class:`~batchkit.costs.pricing.CostEstimate` for the estimate-vs-actual plot."""

    def __init__(self, model: str, estimate: EstimateRange) -> None:
        self.model = model
        self._estimate = estimate

    def __getitem__(self, mode: str) -> EstimateRange:
        return self._estimate
