"""Cascades in a comparison: ``df.claude.compare(..., cascade=True)``. Pure but for reading the
sample jobs' per-row costs.

With ``cascade=True`` every single-model variant but the most expensive is asked for the same
``confidence`` field a cascade's first stages send (:func:`batchkit.engine.cascade.with_confidence`);
the most expensive is only ever a last stage, which is asked none, so its sample sends the plain
requests. A cascade is evaluated from the answers already paid for — no row is paid twice: for
each pair of models of one prompt, the cheaper first (by the price table), a sample row's cascade
answer is the first model's if its confidence is at least the threshold, else the second model's.
Its accuracy (with the same Wilson interval as every variant) comes from those rows; its cost is
the first model on every row with the field plus the second on the escalated ones without it (as
the cascade runs); its whole-frame projection likewise.

A single model whose sample carried the field is priced as run alone (:func:`field_tokens`,
:func:`alone_cost`): its sample's measured usage less the tokens the field added to each request.

The thresholds tried are the first model's own confidences on the sample (at most
:data:`MAX_THRESHOLDS` of them, spread as quantiles): each a confidence a row gave, named exactly as
it compares, so typing a name's threshold escalates the same rows. Of each pair, three are shown
(fewer when they coincide): the threshold with the lowest dollars per correct row, the one with the
highest quality, and — with ``target=`` — the cheapest whose lower bound meets the target. Chosen on the
sample they are scored on, their quality is a little optimistic; a larger sample narrows that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from batchkit.backends.clients import get_default_client
from batchkit.backends.tokens import count_tokens
from batchkit.core import _json
from batchkit.core.states import RowStatus
from batchkit.costs.calibration import BILLED
from batchkit.costs.estimate import CostEstimate
from batchkit.costs.tokens import estimate_request_tokens, schema_output_tokens
from batchkit.costs.usage import usage_cost_frame
from batchkit.engine.calls import Call
from batchkit.engine.cascade import by_price, combine_estimates, escalation, exact, has_label_field
from batchkit.errors import InvalidOptionError

from .comparison import TOLERANCE, Variant
from .scoring import wilson_interval

__all__ = [
    "MAX_THRESHOLDS",
    "CascadeVariant",
    "alone_cost",
    "check_cascade",
    "confidence_of",
    "evaluate",
    "field_tokens",
]

MAX_THRESHOLDS = 20
"""The most thresholds tried per pair of models (quantiles of the first model's confidences)."""


@dataclass(repr=False)
class CascadeVariant(Variant):
    """A cascade of two models of the comparison, evaluated on the sample from their answers.

    Attributes:
        models: the two models, the cheaper first.
        threshold: the first model's answer is kept when its confidence is at least this.
        kept: per sample row, whether the first model's answer is kept.
        share: the share of rows escalated, ``(low, typical, high)`` (a Wilson 95% interval).
    """

    models: tuple[str, ...] = ()
    threshold: float = math.nan
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    share: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def extras(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "escalated_share": self.share[1]}

    def run_kwargs(self) -> dict[str, Any]:
        return {"cascade": list(self.models), "threshold": self.threshold}

    def __repr__(self) -> str:
        base = super().__repr__()
        return base[:-1] + f"; {self.share[1]:.0%} of rows escalated>"


def check_cascade(cascade: Any, task: str, models: Sequence[str], spec: Any) -> bool:
    """Refuse ``cascade=True`` where no cascade can be evaluated, before anything is sent."""
    if not isinstance(cascade, (bool, np.bool_)):
        raise InvalidOptionError(f"cascade must be True or False, not {cascade!r:.60}", option="cascade")
    if not cascade:
        return False
    if task == "batch" or spec is None:
        raise InvalidOptionError(
            "cascade=True compares cascades of label answers (task='classify', or 'extract' with a label field); "
            "free text has no confidence to escalate by. Pass task='classify' with labels=, or drop cascade=True",
            option="cascade",
        )
    if len(models) < 2:
        raise InvalidOptionError(
            f"cascade=True needs two or more models= to cascade from one to the next, not {list(models)}; "
            f"e.g. models=['claude-haiku-4-5', 'claude-sonnet-4-6']",
            option="cascade",
        )
    if task == "extract" and not has_label_field(spec):
        raise InvalidOptionError(
            "cascade=True on extract needs a label field in the schema (a Literal[...] or an Enum); add one, "
            "or drop cascade=True",
            option="cascade",
        )
    return True


def evaluate(variants: Sequence[Variant], *, target: float | None, prices: Any) -> list[CascadeVariant]:
    """The cascades of every pair of models of each prompt (cheaper first), three thresholds each."""
    out: list[CascadeVariant] = []
    for prompt_name in dict.fromkeys(v.prompt_name for v in variants):
        mine = {v.model: v for v in variants if v.prompt_name == prompt_name}
        ordered = by_price(list(mine), prices)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                out += _pick(_candidates(mine[first], mine[second], prices), target)
    return out


def _thresholds(confidence: np.ndarray) -> list[float]:
    values = confidence[~np.isnan(confidence)]
    if not len(values):
        return []
    found = np.unique(values)
    if len(found) > MAX_THRESHOLDS:
        # observed confidences only (no value between two): a threshold selects the rows it is named by
        found = np.unique(np.quantile(values, np.linspace(0, 1, MAX_THRESHOLDS), method="inverted_cdf"))
    return [float(t) for t in found]


def _candidates(first: Variant, second: Variant, prices: Any) -> list[CascadeVariant]:
    conf = first.confidence if first.confidence is not None else np.full(len(first.correct), math.nan)
    statuses = first.row_statuses()
    second_cost = _row_costs(second, prices)
    out = []
    for t in _thresholds(conf):
        kept, sent_on = escalation(statuses, conf, t)  # the rule the cascade's run applies
        if kept.all() or not kept.any():
            continue  # the first model alone, or the second on every row: variants of their own already
        out.append(_cascade(first, second, t, (kept, sent_on), second_cost))
    return out


def _cascade(
    first: Variant, second: Variant, t: float, split: tuple[np.ndarray, np.ndarray], second_cost: np.ndarray
) -> CascadeVariant:
    kept, escalated = split
    n = int((first.row_statuses() != RowStatus.SKIPPED).sum())
    k = int(escalated.sum())
    lo, hi = wilson_interval(k, n)
    share = (lo, k / n if n else math.nan, hi)
    paid = float(second_cost.sum())
    part = float(second_cost[escalated].sum()) / paid if paid > 0 else share[1]
    # stage 1 as its sample ran (with the confidence); the last stage plain, as a run of it alone
    first_paid = first.paid if first.paid is not None else first.usage_cost
    usage = (first_paid[0] + part * second.usage_cost[0], first_paid[1] + part * second.usage_cost[1])
    answers = first.answers.copy()
    rows = np.flatnonzero(escalated)
    for column in answers.columns:
        answers.iloc[rows, answers.columns.get_loc(column)] = second.answers[column].iloc[rows].to_numpy()
    # each row's outcome at the stage whose answer it keeps: the second model's where escalated
    final = np.where(escalated, second.row_statuses(), first.row_statuses()).astype(str)
    counts = {str(s): int(m) for s, m in zip(*np.unique(final, return_counts=True), strict=True)}
    v = CascadeVariant(
        name=f"{first.model} → {second.model} @ {exact(t)} · {first.prompt_name}",
        model=f"{first.model} → {second.model}",
        prompt_name=first.prompt_name,
        prompt=first.prompt,
        job=first.job,
        seconds=first.seconds + (second.seconds if not math.isnan(second.seconds) else 0.0),
        answers=answers,
        correct=np.where(kept, first.correct, second.correct),
        scored=first.scored & second.scored,
        outcome_counts=counts,
        usage_cost=usage,
        projector=_projector(first, second, share),
        models=(first.model, second.model),
        threshold=t,
        kept=kept,
        share=share,
    )
    return v


def _row_costs(v: Variant, prices: Any) -> np.ndarray:
    """What each sample row's answer costs at batch price, from its usage (tokens × price), whether
    the sample paid for it or found it in the store: so a comparison's cascade costs the same in a
    fresh store and in one an earlier run filled. A request asked by several rows counts once, on
    its first row (as the sample's own cost counts it)."""
    outcomes = v.job.outcomes()
    billed = outcomes["status"].isin(BILLED).to_numpy()
    first = billed & ~outcomes["request_key"].where(billed).duplicated().to_numpy()
    dollars = usage_cost_frame(outcomes, v.model, batch=True, prices=prices)["total"].to_numpy(dtype=float)
    costs: np.ndarray = np.where(first, np.nan_to_num(dollars), 0.0)
    return costs


def _projector(first: Variant, second: Variant, share: tuple[float, float, float]) -> Callable[[], CostEstimate]:
    def project() -> CostEstimate:
        a, b = first.staged_projection, second.projection
        assert a is not None and b is not None
        return combine_estimates([a, b], [share], (first.model, second.model), "measured on the sample")

    return project


def _pick(candidates: list[CascadeVariant], target: float | None) -> list[CascadeVariant]:
    """Of one pair's thresholds: the lowest $ per correct row, the best quality, the cheapest meeting ``target``."""
    scored = [c for c in candidates if not math.isnan(c.quality)]
    if not scored:
        return []

    def per_correct(c: CascadeVariant) -> float:
        return c.usage_cost[0] / c.quality if c.quality else math.inf

    picks = [min(scored, key=per_correct), max(scored, key=lambda c: (c.quality, -c.usage_cost[0]))]
    if target is not None:
        good = [c for c in scored if c.interval[0] + TOLERANCE >= target]
        if good:
            picks.append(min(good, key=lambda c: c.usage_cost[0]))
    return list({id(c): c for c in picks}.values())


def confidence_of(answers: pd.DataFrame, column: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The answers without the confidence column, and the confidences (NaN where none)."""
    if column not in answers.columns:
        return answers, None
    values: np.ndarray = pd.to_numeric(answers[column], errors="coerce").astype(float).to_numpy()
    return answers.drop(columns=[column]), values


# --------------------------------------------------------------------------- a single model as run alone


def field_tokens(staged: Call, plain: Call) -> tuple[float, float]:
    """The input and output tokens the confidence field adds to each request: the input counted on
    one row's two requests (``count_tokens`` when a client is at hand, as an estimate counts, else
    offline), the output from the two schemas' typical answers (the estimate's own rule)."""
    if not staged.plan.lines or not plain.plan.lines:
        return 0.0, 0.0
    client = staged.options.run.client or get_default_client()
    counted = []
    for call in (staged, plain):
        body = call.plan.body(next(iter(call.plan.lines)))
        tokens = count_tokens(client, body) if client is not None else None
        counted.append(tokens if tokens is not None else estimate_request_tokens(_json.loads(body)))
    assert staged.spec.output_spec is not None and plain.spec.output_spec is not None
    output = schema_output_tokens(staged.spec.output_spec["schema"])[1]
    output -= schema_output_tokens(plain.spec.output_spec["schema"])[1]
    return float(counted[0] - counted[1]), max(0.0, output)


def alone_cost(billed: pd.DataFrame, model: str, extra: tuple[float, float], prices: Any) -> tuple[float, float]:
    """Dollars of a sample's billed requests at (batch, standard) price as they would be without the
    confidence field: each request's measured usage less the ``extra`` (input, output) tokens it added."""
    if billed.empty:
        return 0.0, 0.0
    usage = billed.copy()
    usage["input_tokens"] = (usage["input_tokens"] - extra[0]).clip(lower=0)
    usage["output_tokens"] = (usage["output_tokens"] - extra[1]).clip(lower=0)
    batch = float(usage_cost_frame(usage, model, batch=True, prices=prices)["total"].sum())
    standard = float(usage_cost_frame(usage, model, batch=False, prices=prices)["total"].sum())
    return batch, standard
