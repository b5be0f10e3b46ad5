"""An estimate priced again at another row count, output length or cache hit rate: the explorer's
arithmetic, and no second cost model. Pure.

:func:`reprice` takes what a :class:`~batchkit.costs.estimate.CostEstimate` was made from (the
arguments of :func:`~batchkit.costs.pricing.estimate_cost`, kept on the estimate as ``basis``) and
calls :func:`~batchkit.costs.pricing.estimate_cost` again with what changed. Nothing is rendered or
counted again, so pricing ten million rows takes as long as pricing ten. How the figures scale:

* **rows**: a frame like the estimated one, ``rows`` long. Skipped rows and distinct requests keep
  their share of the rows; requests already answered (or in batches already sent) stay as many as
  they are — they are particular requests in the store — up to every distinct request.
* **input tokens**: the estimate's mean per request to send, times the requests to send; a range
  from counting a sample keeps its width relative to the total. (An estimate whose rows were all
  counted has no range: its rows' mean is taken for the larger frame's.)
* **cache hit rate**: a given range stays; otherwise :func:`~batchkit.costs.caching.expected_hit_rates`
  at the new number of requests, primed or not — the rule the estimate itself followed.
* **a cascade** (an estimate :func:`~batchkit.costs.stages.combine_estimates` made): each stage's
  estimate over every row is priced again as above, and the stages combined again with the same
  escalation shares — the low and high figures from the share's range.
* **output length**: ``typical_output_tokens=N`` is what ``estimate(..., typical_output_tokens=N)``
  prices: free text keeps its range (the shortest answer to ``max_tokens``), a label set or schema
  keeps its bound, and a calibration is replaced by the figure (its measured bound kept).

>>> from batchkit.costs.pricing import estimate_cost
>>> e = estimate_cost(model="claude-haiku-4-5", rows=1_000, unique_requests=1_000,
...                   input_tokens=300_000, max_tokens=20, typical_output_tokens=5)
>>> reprice(e, rows=10_000_000)["batch"].typical == estimate_cost(
...     model="claude-haiku-4-5", rows=10_000_000, unique_requests=10_000_000,
...     input_tokens=3_000_000_000, max_tokens=20, typical_output_tokens=5)["batch"].typical
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from batchkit.errors import InvalidOptionError

from .caching import PRIMED_HIT_RATE, check_hit_rate, expected_hit_rates
from .estimate import CostEstimate
from .pricing import estimate_cost
from .stages import combine_estimates

__all__ = ["is_primed", "reprice"]


def is_primed(estimate: CostEstimate) -> bool:
    """Whether the estimate's hit rates are those of a primed (or already warm) cache."""
    basis = estimate.basis
    if basis.get("typical_hit_rate") is None:  # a hit rate given, not derived
        return False
    return bool(basis.get("cache_warm")) or estimate.hit_rate == (PRIMED_HIT_RATE[0], PRIMED_HIT_RATE[2])


def reprice(
    estimate: CostEstimate,
    *,
    rows: int | None = None,
    typical_output_tokens: int | None = None,
    hit_rate: float | tuple[float, float] | None = None,
    primed: bool | None = None,
) -> CostEstimate:
    """``estimate`` priced again for ``rows`` rows, a typical answer of ``typical_output_tokens``
    tokens, and a cache ``hit_rate`` (a fraction or a ``(low, high)`` pair; None: as the estimate
    had it — given, or from priming and size with ``primed``, default as the estimate was).
    The module docstring says how each figure scales.

    Raises:
        InvalidOptionError: ``rows`` or ``typical_output_tokens`` is no whole number ≥ 1, or
            ``hit_rate`` no fraction or pair within 0..1; or the estimate cannot be scaled (it was
            not made by ``estimate_cost``, or it has no request to send to take a mean from).
    """
    if estimate.staged:  # a cascade: every stage again, combined by the rule that combined them
        staged = estimate.staged
        again = [
            reprice(s, rows=rows, typical_output_tokens=typical_output_tokens, hit_rate=hit_rate, primed=primed)
            for s in staged["stages"]
        ]
        return combine_estimates(again, staged["shares"], staged["models"], staged["basis"])
    basis = dict(estimate.basis)
    if not basis:
        raise InvalidOptionError(
            "this estimate keeps no record of what it was made from, so it cannot be priced again: "
            "make it with df.claude.estimate(...) or batchkit.pricing.estimate_cost(...)",
            option="estimate",
        )
    n = estimate.rows if rows is None else _whole("rows", rows)
    basis.update(_counts(estimate, n))
    basis.update(
        _hit_rates(
            estimate, basis["unique_requests"] - basis["already_answered"] - basis["in_flight"], hit_rate, primed
        )
    )
    if typical_output_tokens is not None:
        basis.update(_output(basis, _whole("typical_output_tokens", typical_output_tokens)))
    priced = estimate_cost(**basis)
    if typical_output_tokens is None and estimate.calibrated_on:
        priced = dataclasses.replace(priced, calibrated_on=estimate.calibrated_on)
    return priced


def _whole(name: str, value: Any) -> int:
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value)
    if not whole or value < 1:
        raise InvalidOptionError(f"{name} must be a whole number ≥ 1, not {value!r}", option=name)
    return int(value)


def _counts(estimate: CostEstimate, rows: int) -> dict[str, Any]:
    """The counts of a frame like the estimated one, ``rows`` long (module docstring); at the
    estimate's own rows, its own counts."""
    counts: dict[str, Any] = {
        "rows": estimate.rows,
        "rows_skipped": estimate.rows_skipped,
        "unique_requests": estimate.unique_requests,
        "already_answered": estimate.already_answered,
        "in_flight": estimate.in_flight,
        "input_tokens": estimate.input_tokens,
    }
    if rows != estimate.rows:
        if not estimate.requests:
            raise InvalidOptionError(
                "every request of this estimate is answered already, so there is no request to take a "
                "mean from: estimate rows that are not answered yet (or a copy of the frame under another prompt)",
                option="rows",
            )
        share = rows / estimate.rows
        skipped = min(rows, round(estimate.rows_skipped * share))
        unique = min(rows - skipped, max(1, round(estimate.unique_requests * share)))
        answered = min(estimate.already_answered, unique)
        in_flight = min(estimate.in_flight, unique - answered)
        requests = unique - answered - in_flight
        counts.update(
            rows=rows,
            rows_skipped=skipped,
            unique_requests=unique,
            already_answered=answered,
            in_flight=in_flight,
            input_tokens=round(estimate.input_tokens / estimate.requests * requests),
        )
    counted, of = estimate.basis.get("input_range"), estimate.basis["input_tokens"]
    scale = counts["input_tokens"] / of if of else 0.0  # relative to the total the range was counted for
    counts["input_range"] = None if counted is None else (counted[0] * scale, counted[1] * scale)
    return counts


def _hit_rates(
    estimate: CostEstimate, requests: int, hit_rate: float | tuple[float, float] | None, primed: bool | None
) -> dict[str, Any]:
    basis = estimate.basis
    if hit_rate is not None:
        try:
            given: tuple[float, float] | None = check_hit_rate(hit_rate)
        except (TypeError, ValueError) as exc:
            raise InvalidOptionError(
                f"hit_rate must be a fraction or a (low, high) pair within 0..1, not {hit_rate!r}", option="hit_rate"
            ) from exc
    elif basis.get("typical_hit_rate") is None:
        given = check_hit_rate(basis["hit_rate"])  # the estimate's own given range: priming does not change it
    else:
        given = None
    warm = bool(basis.get("cache_warm"))
    rates, typical, bound = expected_hit_rates(
        requests, given=given, primed=is_primed(estimate) if primed is None else primed or warm
    )
    return {"hit_rate": rates, "typical_hit_rate": typical, "bound_hit_rate": bound}


def _output(basis: dict[str, Any], typical: int) -> dict[str, Any]:
    """The output arguments of ``estimate(..., typical_output_tokens=typical)`` (module docstring)."""
    extra = tuple(n for n in basis.get("extra_notes", ()) if not n.startswith("Calibrated on "))
    if basis.get("output_basis") in ("schema", "measured"):
        return {"typical_output_tokens": typical, "output_basis": "given", "output_range": None, "extra_notes": extra}
    return {"typical_output_tokens": typical}
