"""Prompt caching in dollars: the caching model, hit rates, break-even points and savings curves. Pure.

Prompt caching bills a cached prefix at a per-model write rate (5 min or 1 h TTL) on a miss and
a per-model read rate on a hit (:mod:`batchkit.costs.prices` holds the rates). Every figure here,
and every estimate (:func:`batchkit.costs.pricing.estimate_cost`), uses one model of how a run
meets the cache (documented once, here)::

    N requests share a cached prefix of P tokens (P >= the model's minimum, else P = 0).
    A fraction h of them read the prefix (a hit); the rest write it (a miss). At least one
    request must write it before anyone can read it, so
        writes = max(1, (1 - h) * N),   reads = N - writes
    h = 1 is therefore a *primed* cache: 1 write + (N - 1) reads. Batch requests run
    concurrently in any order, so hits are best effort: the docs quote roughly 30%-98%.

    cost = writes*P*write_rate + reads*P*read_rate + (other input)*input_rate + output*output_rate

:func:`cache_hit_range` says what hit rate a batch can expect; :func:`break_even_hit_rate` and
:func:`break_even_rows` where caching starts to pay; :func:`caching_savings` what it saves on a
run, and :func:`savings_vs_prefix` / :func:`savings_vs_rows` the same along one axis (the curves
:mod:`batchkit.display.plots` draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .prices import Price, PriceSource, load_prices
from .usage import MTOK, CostBreakdown

__all__ = [
    "ASSUMED_CONCURRENCY",
    "PRIMED_HIT_RATE",
    "break_even_hit_rate",
    "break_even_rows",
    "cache_hit_range",
    "caching_savings",
    "check_hit_rate",
    "expected_hit_rates",
    "run_cost",
    "savings_vs_prefix",
    "savings_vs_rows",
]


def run_cost(
    price: Price,
    *,
    requests: float,
    input_tokens: float,
    output_tokens: float,
    batch: bool,
    ttl: str | None = None,
    prefix_tokens: float = 0,
    hit_rate: float = 0.0,
    min_writes: float = 1.0,
) -> CostBreakdown:
    """Cost of ``requests`` requests under the caching model in the module docstring.

    ``input_tokens`` and ``output_tokens`` are totals over all requests; ``input_tokens``
    includes the prefix. ``prefix_tokens`` is per request and already checked against the minimum.
    """
    if requests <= 0:
        return CostBreakdown()
    long_prompt = price.is_long(input_tokens / requests)
    rates = price.rates(batch=batch, long_prompt=long_prompt)
    dollars = {"input": input_tokens * rates["input"] / MTOK, "output": output_tokens * rates["output"] / MTOK}
    if ttl is not None and prefix_tokens > 0:
        writes = min(requests, max(min_writes, (1.0 - hit_rate) * requests))
        reads = requests - writes
        write_kind = f"cache_write_{ttl}"
        dollars["input"] = (input_tokens - requests * prefix_tokens) * rates["input"] / MTOK
        dollars[write_kind] = writes * prefix_tokens * rates[write_kind] / MTOK
        dollars["cache_read"] = reads * prefix_tokens * rates["cache_read"] / MTOK
    return CostBreakdown(**dollars)


ASSUMED_CONCURRENCY = (20, 100, 500)
"""Requests of one batch that start at the same moment (low, typical, high): batchkit's
assumption where the API documents none; they all miss a cache nobody has written yet."""
PRIMED_HIT_RATE = (0.9, 1.0, 1.0)
"""(worst, typical, best) hit rate of a primed batch: every request after the primer reads the
prefix, unless the cache drops it (best effort)."""


def cache_hit_range(requests: int, *, primed: bool) -> tuple[float, float, float]:
    """(worst, typical, best) share of requests that read a shared cached prefix.

    Primed (``cache="prime"``): :data:`PRIMED_HIT_RATE`. Not primed: the first requests of a
    batch run at once and all miss (nobody has written the prefix yet), later ones read it, so
    the share that hits is ``1 - concurrency / requests`` over :data:`ASSUMED_CONCURRENCY` —
    a small batch hardly hits at all, a large one almost always does.

    >>> [round(h, 3) for h in cache_hit_range(2000, primed=False)]
    [0.75, 0.95, 0.99]
    >>> cache_hit_range(50, primed=False)
    (0.0, 0.0, 0.6)
    """
    if primed:
        return PRIMED_HIT_RATE
    if requests <= 0:
        return 0.0, 0.0, 0.0
    worst, typical, best = (max(0.0, 1.0 - c / requests) for c in reversed(ASSUMED_CONCURRENCY))
    return worst, typical, best


def expected_hit_rates(
    requests: int, *, given: tuple[float, float] | None, primed: bool
) -> tuple[tuple[float, float], float | None, float]:
    """An estimate's cache hit rates: the (worst, best) range, the typical (None: the middle of a
    given range) and the rate the budget guard's bound takes (none for a given range: the worst
    case is no hit at all). Given (``hit_rate=``), or what priming and the batch's size make likely
    (:func:`cache_hit_range`). The one rule both an estimate and its re-pricing at another row
    count (:func:`batchkit.costs.scaling.reprice`) follow."""
    if given is not None:
        return given, None, 0.0
    worst, typical, best = cache_hit_range(requests, primed=primed)
    return (worst, best), typical, worst


def check_hit_rate(hit_rate: Any) -> tuple[float, float]:
    lo, hi = (hit_rate, hit_rate) if isinstance(hit_rate, (int, float)) else hit_rate
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"hit_rate must be a fraction or a (low, high) pair within 0..1, not {hit_rate!r}")
    return float(lo), float(hi)


def _write_rate(price: Price, ttl: str) -> float:
    if ttl not in ("5m", "1h"):
        raise ValueError(f'ttl must be "5m" or "1h", not {ttl!r}')
    return float(getattr(price, f"cache_write_{ttl}"))


def break_even_hit_rate(model: str, *, ttl: str = "1h", prices: PriceSource = None) -> float:
    """The hit rate above which caching a prefix costs less than not caching it.

    Per prefix token and request, caching costs ``(1 - h)·write + h·read`` against ``input``,
    so it pays when ``h > (write - input) / (write - read)``. The batch discount and a long tier
    scale all three rates alike and cancel. Standard multipliers give 1/1.9 ≈ 52.6% for a 1 h
    cache and 0.25/1.15 ≈ 21.7% for 5 min.

    >>> round(break_even_hit_rate("claude-sonnet-4-5", ttl="1h"), 4)
    0.5263
    """
    price = load_prices(prices).get(model)
    write, read = _write_rate(price, ttl), price.cache_read
    return max(0.0, (write - price.input) / (write - read))


def break_even_rows(model: str, *, hit_rate: float = 1.0, ttl: str = "1h", prices: PriceSource = None) -> int | None:
    """The fewest requests for which caching a shared prefix is cheaper; ``None`` if never.

    With ``writes = max(1, (1 - h)·N)`` (module docstring): while one write covers the run
    (a primed cache), caching pays once ``write + (N - 1)·read < N·input``, i.e.
    ``N > (write - read) / (input - read)``; beyond that the hit rate alone decides, and it
    pays iff ``h > break_even_hit_rate``. Both thresholds coincide, so the answer is
    ``floor((write - read) / (input - read)) + 1`` when ``h`` is above the break-even hit rate.
    Standard multipliers: 3 requests for a 1 h cache, 2 for 5 min.

    >>> break_even_rows("claude-sonnet-4-5", ttl="1h"), break_even_rows("claude-sonnet-4-5", ttl="5m")
    (3, 2)
    """
    price = load_prices(prices).get(model)
    if hit_rate <= break_even_hit_rate(model, ttl=ttl, prices=prices) or price.input <= price.cache_read:
        return None
    write, read = _write_rate(price, ttl), price.cache_read
    return math.floor((write - read) / (price.input - read)) + 1


def caching_savings(
    model: str,
    *,
    rows: int,
    prefix_tokens: int,
    other_input_tokens: int,
    output_tokens: int,
    hit_rate: float,
    ttl: Literal["5m", "1h"] = "1h",
    batch: bool = True,
    prices: PriceSource = None,
) -> dict[str, Any]:
    """What caching a shared prefix saves on ``rows`` requests (tokens are per request).

    Returns a dict: ``without_cache`` and ``with_cache`` (dollars), ``saving`` (dollars,
    negative when caching costs more), ``saving_pct`` (of ``without_cache``), ``cached``
    (False when the prefix is under the model's minimum: then nothing changes),
    ``cache_writes`` and ``cache_reads`` (requests), ``min_cacheable_tokens``,
    ``break_even_hit_rate`` and ``break_even_rows``.
    """
    price = load_prices(prices).get(model)
    _write_rate(price, ttl)
    hit_rate = check_hit_rate(hit_rate)[0]
    cached = prefix_tokens >= price.min_cacheable_tokens
    common: dict[str, Any] = {
        "requests": rows,
        "input_tokens": rows * (prefix_tokens + other_input_tokens),
        "output_tokens": rows * output_tokens,
        "batch": batch,
    }
    without = run_cost(price, **common).total
    with_cache = run_cost(
        price, **common, ttl=ttl, prefix_tokens=prefix_tokens if cached else 0, hit_rate=hit_rate
    ).total
    writes = min(rows, max(1.0, (1.0 - hit_rate) * rows)) if cached and rows else 0.0
    return {
        "model": model,
        "rows": rows,
        "ttl": ttl,
        "batch": batch,
        "hit_rate": hit_rate,
        "without_cache": without,
        "with_cache": with_cache,
        "saving": without - with_cache,
        "saving_pct": (without - with_cache) / without if without else 0.0,
        "cached": cached,
        "cache_writes": writes,
        "cache_reads": (rows - writes) if cached else 0.0,
        "min_cacheable_tokens": price.min_cacheable_tokens,
        "break_even_hit_rate": break_even_hit_rate(model, ttl=ttl, prices=prices),
        "break_even_rows": break_even_rows(model, hit_rate=hit_rate, ttl=ttl, prices=prices),
    }


_CURVE_COLUMNS = ["without_cache", "with_cache", "saving", "saving_pct"]


def savings_vs_prefix(
    model: str,
    *,
    rows: int,
    other_input_tokens: int,
    output_tokens: int,
    hit_rate: float,
    prefix_range: Sequence[int] | None = None,
    ttl: Literal["5m", "1h"] = "1h",
    batch: bool = True,
    prices: PriceSource = None,
) -> pd.DataFrame:
    """:func:`caching_savings` for each shared-prefix length (default: 0 to 4× the model's
    minimum, at least 8,192, with the minimum itself included). Indexed by ``prefix_tokens``.

    The per-token saving does not depend on the prefix length, so the only threshold along this
    axis is the model's minimum cacheable length.
    """
    minimum = load_prices(prices).get(model).min_cacheable_tokens
    points: Sequence[int]
    if prefix_range is None:
        grid = np.linspace(0, max(4 * minimum, 8192), 129).round().astype(int)
        points = np.unique(np.concatenate([grid, [minimum - 1, minimum]])).tolist()
    else:
        points = prefix_range
    kw: dict[str, Any] = {
        "other_input_tokens": other_input_tokens,
        "output_tokens": output_tokens,
        "hit_rate": hit_rate,
        "ttl": ttl,
        "batch": batch,
        "prices": prices,
    }
    data = [caching_savings(model, rows=rows, prefix_tokens=int(p), **kw) for p in points]
    index = pd.Index([int(p) for p in points], name="prefix_tokens")
    return pd.DataFrame(data, index=index)[_CURVE_COLUMNS]


def savings_vs_rows(
    model: str,
    *,
    prefix_tokens: int,
    other_input_tokens: int,
    output_tokens: int,
    hit_rate: float,
    rows_range: Sequence[int] | None = None,
    ttl: Literal["5m", "1h"] = "1h",
    batch: bool = True,
    prices: PriceSource = None,
) -> pd.DataFrame:
    """:func:`caching_savings` for each row count (default 1 to 100,000, log-spaced).
    Indexed by ``rows``; :func:`break_even_rows` gives the crossing point."""
    points: Sequence[int]
    if rows_range is None:
        points = np.unique(np.geomspace(1, 100_000, 121).round().astype(int)).tolist()
    else:
        points = rows_range
    kw: dict[str, Any] = {
        "prefix_tokens": prefix_tokens,
        "other_input_tokens": other_input_tokens,
        "output_tokens": output_tokens,
        "hit_rate": hit_rate,
        "ttl": ttl,
        "batch": batch,
        "prices": prices,
    }
    data = [caching_savings(model, rows=int(n), **kw) for n in points]
    index = pd.Index([int(n) for n in points], name="rows")
    return pd.DataFrame(data, index=index)[_CURVE_COLUMNS]
