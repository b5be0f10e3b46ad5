"""A cascade's estimate from its stages' estimates: every stage priced on every row, each later
stage weighted by the share of rows that reach it. Pure.

:func:`combine_estimates` is the one rule: ``estimate(..., cascade=[...])`` (from each stage's
estimate and a stated or measured escalation share), a comparison's cascade variants (from their
models' projections and the share measured on the sample), and the re-pricing of either at other
settings (:func:`batchkit.costs.scaling.reprice` re-prices each stage and combines them again: the
combined estimate keeps what it was made from as :attr:`~batchkit.costs.estimate.CostEstimate.staged`).
Its time to finish is the stages' one after another (stage 1's own time and ``auto`` notes are
replaced by the cascade's), and :func:`mixed_cost` prices ``auto`` sending stages in different modes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from batchkit.core import modes
from batchkit.core.states import PriceMode

from .estimate import MODES, CostEstimate, ModeCost
from .prices import KINDS
from .usage import CostBreakdown, pct

__all__ = ["combine_estimates", "mixed_cost", "reaches"]


def combine_estimates(
    stages: Sequence[CostEstimate], shares: Sequence[tuple[float, float, float]], models: Sequence[str], basis: str
) -> CostEstimate:
    """One estimate of a cascade from each stage's estimate over every row and the (low, typical,
    high) share of rows each escalation sends on (``basis`` says where the shares come from).

    ``low``/``typical``/``high`` weight each later stage by the low/typical/high share of rows that
    reach it; ``upper_bound`` (what ``max_cost=`` checks) by the high share. The stages' own
    figures are in the notes; the arguments are kept as the estimate's ``staged``.
    """
    reach = reaches(shares, len(stages))
    notes = [f"a cascade {' → '.join(models)}: escalation {basis}"]
    for k, (est, share) in enumerate(zip(stages, reach, strict=True)):
        notes.append(
            f"stage {k + 1} {est.model}: {pct(share[1])} of rows typical ({pct(share[0])}–{pct(share[2])}); "
            f"on every row it would be ${est[PriceMode.BATCH].typical:,.4f} at batch price"
        )
    head = stages[0]
    own = tuple(
        n for n in head.notes if not n.startswith(_STAGE_ONE_ONLY)
    )  # stage 1's time and mode: not the cascade's
    times, timed = _times(stages, reach, auto=any(n.startswith("mode='auto'") for n in head.notes))
    return dataclasses.replace(
        head,
        model=" → ".join(models),
        requests=round(sum(e.requests * r[1] for e, r in zip(stages, reach, strict=True))),
        input_tokens=round(sum(e.input_tokens * r[1] for e, r in zip(stages, reach, strict=True))),
        modes=tuple(_combine(mode, [e[mode] for e in stages], reach) for mode in MODES),
        notes=(*notes, *own, *timed),
        finish_seconds=times,
        staged={"stages": tuple(stages), "shares": tuple(shares), "models": tuple(models), "basis": basis},
    )


_STAGE_ONE_ONLY = ("Time to finish", "mode='auto'")


def _times(
    stages: Sequence[CostEstimate], reach: list[tuple[float, float, float]], *, auto: bool
) -> tuple[dict[str, float], tuple[str, ...]]:
    """The cascade's time to finish, its stages one after another (stage k: its typical share of
    rows), and — if ``mode='auto'`` was asked — the mode each stage is sent in; as notes."""
    if not all("realtime" in e.finish_seconds for e in stages):
        return {}, ()  # priced without times (a comparison's projection, a re-pricing)
    requests = [round(e.requests * r[1]) for e, r in zip(stages, reach, strict=True)]
    sent = sum(1 for n in requests if n)
    realtime = sum(e.finish_seconds["realtime"] * r[1] for e, r in zip(stages, reach, strict=True))
    times = {
        "realtime": realtime,
        "batch": modes.TYPICAL_BATCH_SECONDS * sent,
        "batch_max": modes.MAX_BATCH_SECONDS * sent,
    }
    notes = [
        f"Time to finish, the stages one after another ({sent} of {len(stages)} with rows to send): realtime ≈ "
        f"{modes.duration(realtime)} at the standard price; batches typically within {sent} h, at most "
        f"{24 * sent} h, at half the price."
    ]
    if auto:
        chosen = ", ".join(
            f"stage {k + 1} ({n:,} requests) as {'realtime' if n < modes.AUTO_REALTIME_BELOW else 'batch'}"
            for k, n in enumerate(requests)
            if n
        )
        notes.append(
            f"mode='auto' chooses per stage: {chosen} "
            f"(realtime under {modes.AUTO_REALTIME_BELOW} requests, else batch)."
        )
    return times, tuple(notes)


def reaches(shares: Sequence[tuple[float, float, float]], stages: int) -> list[tuple[float, float, float]]:
    """The (low, typical, high) share of rows that reach each of ``stages`` stages (stage 1: all)."""
    reach = [(1.0, 1.0, 1.0)]
    for lo, typ, hi in shares:
        a, b, c = reach[-1]
        reach.append((a * lo, b * typ, c * hi))
    return reach[:stages]


def mixed_cost(
    stages: Sequence[CostEstimate], shares: Sequence[tuple[float, float, float]], prices: Sequence[str]
) -> ModeCost:
    """A cascade's dollars when stage k is sent at ``prices[k]`` (``mode='auto'`` choosing per stage),
    combined as :func:`combine_estimates` combines one price mode."""
    reach = reaches(shares, len(stages))
    return _combine(" + ".join(prices), [e[p] for e, p in zip(stages, prices, strict=True)], reach)


def _combine(mode: str, costs: Sequence[ModeCost], reach: list[tuple[float, float, float]]) -> ModeCost:
    parts = list(zip(costs, reach, strict=True))
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
