"""A cascade's estimate from its stages' estimates: every stage priced on every row, each later
stage weighted by the share of rows that reach it. Pure.

:func:`combine_estimates` is the one rule: ``estimate(..., cascade=[...])`` (from each stage's
estimate and a stated or measured escalation share), a comparison's cascade variants (from their
models' projections and the share measured on the sample), and the re-pricing of either at other
settings (:func:`batchkit.costs.scaling.reprice` re-prices each stage and combines them again: the
combined estimate keeps what it was made from as :attr:`~batchkit.costs.estimate.CostEstimate.staged`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from batchkit.core.states import PriceMode

from .estimate import MODES, CostEstimate, ModeCost
from .prices import KINDS
from .usage import CostBreakdown, pct

__all__ = ["combine_estimates"]


def combine_estimates(
    stages: Sequence[CostEstimate], shares: Sequence[tuple[float, float, float]], models: Sequence[str], basis: str
) -> CostEstimate:
    """One estimate of a cascade from each stage's estimate over every row and the (low, typical,
    high) share of rows each escalation sends on (``basis`` says where the shares come from).

    ``low``/``typical``/``high`` weight each later stage by the low/typical/high share of rows that
    reach it; ``upper_bound`` (what ``max_cost=`` checks) by the high share. The stages' own
    figures are in the notes; the arguments are kept as the estimate's ``staged``.
    """
    reach = [(1.0, 1.0, 1.0)]
    for lo, typ, hi in shares:
        a, b, c = reach[-1]
        reach.append((a * lo, b * typ, c * hi))
    reach = reach[: len(stages)]
    notes = [f"a cascade {' → '.join(models)}: escalation {basis}"]
    for k, (est, share) in enumerate(zip(stages, reach, strict=True)):
        notes.append(
            f"stage {k + 1} {est.model}: {pct(share[1])} of rows typical ({pct(share[0])}–{pct(share[2])}); "
            f"on every row it would be ${est[PriceMode.BATCH].typical:,.4f} at batch price"
        )
    head = stages[0]
    return dataclasses.replace(
        head,
        model=" → ".join(models),
        requests=round(sum(e.requests * r[1] for e, r in zip(stages, reach, strict=True))),
        input_tokens=round(sum(e.input_tokens * r[1] for e, r in zip(stages, reach, strict=True))),
        modes=tuple(_combine(mode, list(stages), reach) for mode in MODES),
        notes=(*notes, *head.notes),
        staged={"stages": tuple(stages), "shares": tuple(shares), "models": tuple(models), "basis": basis},
    )


def _combine(mode: str, stages: list[CostEstimate], reach: list[tuple[float, float, float]]) -> ModeCost:
    parts = [(e[mode], r) for e, r in zip(stages, reach, strict=True)]
    breakdown = sum((_scaled(c.breakdown, r[1]) for c, r in parts), CostBreakdown())
    return ModeCost(
        mode,
        low=sum(c.low * r[0] for c, r in parts),
        typical=sum(c.typical * r[1] for c, r in parts),
        high=sum(c.high * r[2] for c, r in parts),
        upper_bound=sum(c.upper_bound * r[2] for c, r in parts),
        breakdown=breakdown,
    )


def _scaled(b: CostBreakdown, factor: float) -> CostBreakdown:
    return CostBreakdown(*(getattr(b, k) * factor for k in KINDS))
