"""Offline token estimates and cost arithmetic over the price table (:mod:`batchkit.costs.prices`):
the estimate of a job before it runs (:func:`estimate_cost`), and the one place every cost name is
imported from. Pure: no network, no disk (except a price file the caller names), no store.

Everything is in US dollars; prices are **per million tokens** (MTok) at the standard (non-batch)
rate. Three modifiers stack multiplicatively, per the pricing page:

* the **Batch API** bills every kind of token (input, output, cache writes, cache reads) at
  ``batch_multiplier`` (0.5) of its standard price — e.g. Haiku 4.5 batch 1 h write is
  $2.00 × 0.5 = $1.00/MTok;
* **prompt caching** bills the cached prefix at a per-model write rate (5 min or 1 h TTL) on a
  miss and a per-model read rate on a hit. Older models follow the standard multipliers
  (1.25× / 2× / 0.1× of input); newer ones read cheaper, so the table stores each rate;
* a **long-prompt tier** (Haiku 5.5 only, today) multiplies every rate of a request whose prompt
  (input + cache read + cache write) is over a threshold.

The parts, one reason to change each (all their names are importable from here, and from the
older path ``batchkit.pricing``):

* :mod:`batchkit.costs.tokens` — counting a request's input tokens offline, bounding an answer's
  output tokens (by ``max_tokens`` or the output schema);
* :mod:`batchkit.costs.usage` — what answered requests cost, from their reported usage
  (:func:`usage_cost`, :func:`kind_costs`, :func:`usage_cost_frame`, :class:`CostBreakdown`);
* :mod:`batchkit.costs.caching` — the caching model (writes, reads and hit rates; documented
  there once and used everywhere), break-even points and savings curves;
* :mod:`batchkit.costs.estimate` — the estimate objects a user reads (:class:`CostEstimate`,
  :class:`ModeCost`);
* this module — :func:`estimate_cost`: counts, output ranges and hit rates in, an estimate out.

Example:
    >>> from batchkit.costs.pricing import usage_cost
    >>> usage_cost({"input_tokens": 1_000_000, "output_tokens": 0}, "claude-haiku-4-5").total
    0.5
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from batchkit.core.states import PriceMode

# ``X as X``: importable from here as before the split, though not in __all__ (engine.calls imports them)
from .caching import ASSUMED_CONCURRENCY as ASSUMED_CONCURRENCY
from .caching import PRIMED_HIT_RATE as PRIMED_HIT_RATE
from .caching import (
    break_even_hit_rate,
    break_even_rows,
    cache_hit_range,
    caching_savings,
    check_hit_rate,
    run_cost,
    savings_vs_prefix,
    savings_vs_rows,
)
from .estimate import MODE_LABELS, MODES, CostEstimate, ModeCost
from .prices import KINDS, PRICES_AS_OF, Price, PriceTable, load_prices
from .prices import PriceSource as PriceSource
from .tokens import (
    SHORTEST_ANSWER_TOKENS,
    default_typical_output_tokens,
    estimate_request_tokens,
    estimate_tokens,
    schema_output_tokens,
    shared_prefix_tokens,
)
from .usage import CostBreakdown, kind_costs, pct, usage_cost, usage_cost_frame, usd

__all__ = [
    "KINDS",
    "MODES",
    "MODE_LABELS",
    "PRICES_AS_OF",
    "SHORTEST_ANSWER_TOKENS",
    "CostBreakdown",
    "CostEstimate",
    "ModeCost",
    "Price",
    "PriceTable",
    "break_even_hit_rate",
    "break_even_rows",
    "cache_hit_range",
    "caching_savings",
    "default_typical_output_tokens",
    "estimate_cost",
    "estimate_request_tokens",
    "estimate_tokens",
    "kind_costs",
    "load_prices",
    "savings_vs_prefix",
    "savings_vs_rows",
    "schema_output_tokens",
    "shared_prefix_tokens",
    "usage_cost",
    "usage_cost_frame",
]

Mode = PriceMode
"""The price modes an estimate compares (kept under its older name; the vocabulary's is :class:`PriceMode`)."""
TokenSource = Literal["offline", "count_tokens", "count_tokens+offline"]
"""Where an estimate's input tokens come from; ``count_tokens+offline``: requests too large for the
``count_tokens`` endpoint (over 32 MB, though they fit a batch) were counted offline."""


def estimate_cost(
    *,
    model: str,
    rows: int,
    unique_requests: int,
    input_tokens: int,
    max_tokens: int,
    rows_skipped: int = 0,
    already_answered: int = 0,
    in_flight: int = 0,
    shared_prefix_tokens: int = 0,
    typical_output_tokens: float | None = None,
    token_source: TokenSource = "offline",
    hit_rate: float | tuple[float, float] = (0.3, 0.98),
    prices: PriceSource = None,
    typical_hit_rate: float | None = None,
    output_range: tuple[float, float] | None = None,
    output_bound: int | None = None,
    bound_hit_rate: float = 0.0,
    output_basis: str | None = None,
    extra_notes: Sequence[str] = (),
    input_range: tuple[float, float] | None = None,
    cache_warm: bool = False,
) -> CostEstimate:
    """Dollars under standard, batch, batch + 5 min cache and batch + 1 h cache.

    Args:
        rows: rows in the frame; ``rows_skipped`` of them are not sent (missing values).
        unique_requests: distinct requests among the rows that are sent;
            ``already_answered`` of them are in the store and cost nothing; ``in_flight`` more
            are in batches already sent (paid for, and waited for: not sent again).
        input_tokens: total input tokens of the requests to be sent (unique, not answered),
            including the shared prefix.
        shared_prefix_tokens: tokens of the cacheable prefix every request shares. A prefix
            under the model's minimum cacheable length is not cached (and a note says so).
        typical_output_tokens: expected answer length; default
            :func:`default_typical_output_tokens` (flagged as a guess).
        hit_rate: (worst, best) fraction of requests that read the cache; the caching modes'
            ``low`` uses the best, ``typical`` the midpoint, ``high`` the worst, and
            ``upper_bound`` assumes ``bound_hit_rate`` (default: no hit at all). See the module
            docstring for the model.
        typical_hit_rate: the hit rate of the ``typical`` figure (default: the middle of ``hit_rate``).
        output_range: (fewest, most) output tokens per request that are likely — for the
            ``low`` and ``high`` figures (default: the typical length and ``output_bound``).
        output_bound: the most output tokens a request can take (default ``max_tokens``; less
            when the output schema bounds the answer) — for ``high`` and ``upper_bound``.
        output_basis: where the output figures come from (``"schema"``, ``"measured"``, …);
            with one given, the typical length is not flagged as a guess.
        extra_notes: more notes to show with the estimate (e.g. what it was calibrated on).
        input_range: (low, high) total input tokens when they were counted on a sample of the
            requests and scaled (for the ``low`` and ``high`` figures).
        cache_warm: the prefix is in the cache already (a run of the same template just before):
            no request needs to write it.

    >>> e = estimate_cost(model="claude-sonnet-4-5", rows=100_000, unique_requests=100_000,
    ...                   input_tokens=50_000_000, max_tokens=200, typical_output_tokens=200)
    >>> e["standard"].typical, e["batch"].typical
    (450.0, 225.0)
    """
    basis = dict(locals())  # every argument, first thing: what reprice() scales (costs.scaling)
    price = load_prices(prices).get(model)
    lo, hi = check_hit_rate(hit_rate)
    c = _checked_counts(
        rows, rows_skipped, unique_requests, already_answered, in_flight, input_tokens, max_tokens, shared_prefix_tokens
    )
    assumed = typical_output_tokens is None and output_basis is None
    output = _output_range(c.max_tokens, typical_output_tokens, output_range, output_bound)
    mid = (lo + hi) / 2 if typical_hit_rate is None else min(hi, max(lo, typical_hit_rate))
    below_min = 0 < c.shared_prefix_tokens < price.min_cacheable_tokens
    prefix = 0 if below_min else c.shared_prefix_tokens
    ranges = _Ranges(output, _input_range(c, input_range, prefix), (hi, mid, lo, min(bound_hit_rate, lo)))
    modes = [_mode_cost(m, price, c, prefix, ranges, cache_warm=cache_warm) for m in MODES]
    notes = [
        *_estimate_notes(model, price, {m.mode: m for m in modes}, c, below_min, assumed, lo),
        *_bound_notes(model, price, c, modes, output_bound, output_basis, bound=output[3]),
        *extra_notes,
    ]
    return CostEstimate(
        model=model,
        **c._asdict(),
        requests=c.requests,
        cached_prefix_tokens=prefix,
        typical_output_tokens=max(1, round(output[1])),
        typical_output_assumed=assumed,
        token_source=token_source,
        hit_rate=(lo, hi),
        price=price,
        modes=tuple(modes),
        notes=tuple(dict.fromkeys(notes)),
        output_bound=output[3],
        output_basis=output_basis if output_basis is not None else None if assumed else "given",
        basis=basis,
    )


class _Counts(NamedTuple):
    """The whole-number counts an estimate is made from, checked."""

    rows: int
    rows_skipped: int
    unique_requests: int
    already_answered: int
    in_flight: int
    input_tokens: int
    max_tokens: int
    shared_prefix_tokens: int

    @property
    def requests(self) -> int:
        """Requests that will be sent and paid for."""
        return self.unique_requests - self.already_answered - self.in_flight


def _checked_counts(*counts: int) -> _Counts:
    """The counts (in :class:`_Counts` order) as ints, after refusing a negative or fractional one and
    an inconsistent set."""
    for name, value in zip(_Counts._fields, counts, strict=True):
        whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value)
        if not whole or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    c = _Counts(*(int(value) for value in counts))
    if c.rows_skipped + c.unique_requests > c.rows or c.already_answered + c.in_flight > c.unique_requests:
        raise ValueError(
            f"inconsistent counts: rows={c.rows}, rows_skipped={c.rows_skipped}, "
            f"unique_requests={c.unique_requests}, already_answered={c.already_answered}, "
            f"in_flight={c.in_flight}"
        )
    if c.requests and c.shared_prefix_tokens * c.requests > c.input_tokens:
        raise ValueError("shared_prefix_tokens × requests is more than input_tokens (which includes the prefix)")
    return c


def _output_range(
    max_tokens: int,
    typical: float | None,
    likely: tuple[float, float] | None,
    bound: int | None,
) -> tuple[float, float, float, int]:
    """Output tokens per request: (low, typical, high, upper bound), each within the bound."""
    most = max_tokens if bound is None else max(1, min(int(bound), max_tokens))
    typical_exact: float = default_typical_output_tokens(max_tokens) if typical is None else min(float(typical), most)
    out_lo, out_hi = likely if likely is not None else (typical_exact, most)
    return min(out_lo, typical_exact), typical_exact, min(max(out_hi, typical_exact), most), most


def _input_range(c: _Counts, counted: tuple[float, float] | None, prefix: int) -> tuple[float, float, float]:
    """Total input tokens: (low, typical, high); low and high from a sample's count scaled, if any."""
    in_lo, in_hi = (c.input_tokens, c.input_tokens) if counted is None else counted
    return max(min(in_lo, c.input_tokens), prefix * c.requests), c.input_tokens, max(in_hi, c.input_tokens)


@dataclass(frozen=True)
class _Ranges:
    """What a mode's four figures (low, typical, high, upper bound) assume, each in that order."""

    output: tuple[float, float, float, int]
    """Output tokens per request."""
    input: tuple[float, float, float]
    """Total input tokens (the upper bound takes the high figure)."""
    hits: tuple[float, float, float, float]
    """Cache hit rates: the best for ``low``, the worst for ``high``."""


def _mode_cost(
    mode: PriceMode, price: Price, c: _Counts, prefix: int, ranges: _Ranges, *, cache_warm: bool
) -> ModeCost:
    def cost(output: float, hit: float, tokens: float) -> CostBreakdown:
        return run_cost(
            price,
            requests=c.requests,
            input_tokens=tokens,
            batch=mode != PriceMode.STANDARD,
            output_tokens=c.requests * output,
            ttl=mode.partition("+")[2] or None,
            prefix_tokens=prefix,
            hit_rate=hit,
            min_writes=0.0 if cache_warm else 1.0,
        )

    (out_lo, out_typical, out_hi, bound), (in_lo, in_typical, in_hi) = ranges.output, ranges.input
    best, mid, worst, at_bound = ranges.hits
    typical = cost(out_typical, mid, in_typical)
    high = cost(out_hi, worst, in_hi).total
    return ModeCost(
        mode=mode.value,  # the text, as it always read (ModeCost's repr shows it)
        low=cost(out_lo, best, in_lo).total,
        typical=typical.total,
        high=high,
        upper_bound=max(high, cost(bound, at_bound, in_hi).total),
        breakdown=typical,
    )


def _estimate_notes(
    model: str,
    price: Price,
    modes: dict[str, ModeCost],
    c: _Counts,
    below_min: bool,
    assumed: bool,
    worst_hit: float,
) -> list[str]:
    prefix = c.shared_prefix_tokens
    prompt_per_request = c.input_tokens / c.requests if c.requests else 0.0
    notes = []
    minimum = f"{price.min_cacheable_tokens:,} tokens" + ("" if price.min_cacheable_known else ", assumed")
    if below_min:
        notes.append(
            f"The shared prefix ({prefix:,} tokens) is under {model}'s minimum cacheable "
            f"length ({minimum}): the API will not cache it, so caching saves nothing."
        )
    elif not prefix:
        notes.append("No shared prefix is marked for caching: the caching modes cost the same as batch.")
    elif modes[PriceMode.BATCH_1H].high > modes[PriceMode.BATCH].high:
        notes.append(
            f"At a {pct(worst_hit)} hit rate a 1h cache costs more than no cache: every miss "
            f"writes the prefix at {price.cache_write_1h / price.input:g}× the input price."
        )
    if assumed:
        notes.append(
            "Typical output length is a prior, not a measurement (a quarter of max_tokens, at most "
            "1,024). sample_answers=20 measures it on 20 rows answered in realtime (paid; the run "
            "reuses them), or pass typical_output_tokens or calibrate=job."
        )
    if price.is_long(prompt_per_request):
        notes.append(
            f"Prompts average over {price.long_prompt_threshold:,} tokens: {model}'s "
            f"long-prompt rates (×{price.long_prompt_multiplier:g}) apply."
        )
    if price.uncertain:
        notes.append(f"{model}'s price is uncertain: {price.note}.")
    if not price.min_cacheable_known and prefix:
        notes.append(f"{model}'s minimum cacheable length is undocumented; 1,024 tokens assumed.")
    return notes


def _bound_notes(
    model: str,
    price: Price,
    c: _Counts,
    modes: list[ModeCost],
    output_bound: int | None,
    output_basis: str | None,
    *,
    bound: int,
) -> list[str]:
    """What bounds the answers' length, when something other than ``max_tokens`` does or it is over the cap."""
    notes = []
    if output_bound is not None and bound < c.max_tokens and output_basis == "measured":
        notes.append(
            f"The budget guard takes answers of {bound:,} tokens on average, from the measurement "
            f"(max_tokens is {c.max_tokens:,})."
        )
    elif output_bound is not None and bound < c.max_tokens:
        notes.append(
            f"Answers are at most {bound:,} tokens: the longest answer the output schema allows "
            f"(max_tokens is {c.max_tokens:,})."
        )
    if price.max_output_tokens is not None and c.max_tokens > price.max_output_tokens:
        worst = modes[MODES.index(PriceMode.BATCH)].upper_bound / c.requests if c.requests else 0.0
        notes.append(
            f"max_tokens={c.max_tokens:,} is over {model}'s standard output cap "
            f"({price.max_output_tokens:,}): batches go out with the output-300k beta. The worst "
            f"case per row is large — {c.max_tokens:,} output tokens, {usd(worst)} at batch price — "
            f"and one answer that long can take over an hour."
        )
    return notes
