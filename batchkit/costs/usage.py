"""What answered requests cost, from the usage the API reported for each. Pure.

Each response's ``usage`` says how many tokens of each kind it was billed for: input, output,
cache writes by TTL (5 minutes or 1 hour) and cache reads. Priced at the model's rates
(:mod:`batchkit.costs.prices`) at the batch or the standard price, one request at a time, so a
long-prompt tier applies only to the requests over its threshold. :func:`usage_cost` prices one
response, :func:`kind_costs` an array of them, :func:`usage_cost_frame` a frame of usage columns
(as ``pandas.json_normalize`` or ``Job.outcomes()`` leave them) — all as dollars by kind of token,
a :class:`CostBreakdown`.

Example:
    >>> usage_cost({"input_tokens": 1_000_000, "output_tokens": 0}, "claude-haiku-4-5").total
    0.5
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .prices import KINDS, PriceSource, load_prices

__all__ = ["MTOK", "CostBreakdown", "kind_costs", "pct", "usage_cost", "usage_cost_frame", "usd"]

MTOK = 1_000_000
"""Tokens in the unit prices are quoted per (a million)."""


def usd(value: float) -> str:
    """Dollars for reading: cents, or four decimals under a cent (``$0.0042``)."""
    if value != 0 and abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def pct(value: float) -> str:
    """A fraction as a whole percentage (``0.3`` → ``30%``)."""
    return f"{value:.0%}"


@dataclass(frozen=True)
class CostBreakdown:
    """Dollars by kind of token. Add them with ``+`` or ``sum()``.

    >>> sum([CostBreakdown(input=1.0), CostBreakdown(output=2.0)]).total
    3.0
    """

    input: float = 0.0
    output: float = 0.0
    cache_write_5m: float = 0.0
    cache_write_1h: float = 0.0
    cache_read: float = 0.0

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_write_5m + self.cache_write_1h + self.cache_read

    def to_dict(self) -> dict[str, float]:
        """``{kind: dollars, ..., "total": dollars}``."""
        return {**dataclasses.asdict(self), "total": self.total}

    def __add__(self, other: object) -> CostBreakdown:
        if isinstance(other, CostBreakdown):
            return CostBreakdown(*(getattr(self, k) + getattr(other, k) for k in KINDS))
        if isinstance(other, (int, float)) and other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    __radd__ = __add__

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {usd(v)}" for k, v in dataclasses.asdict(self).items() if v)
        return f"{usd(self.total)}" + (f" ({parts})" if parts else "")


def _usage_counts(usage: Any) -> tuple[float, float, float, float, float]:
    if hasattr(usage, "model_dump"):  # an anthropic.types.Usage
        usage = usage.model_dump()

    def num(mapping: Any, key: str) -> float:
        value = mapping.get(key) if isinstance(mapping, Mapping) else None
        return float(value) if value is not None else 0.0

    split = usage.get("cache_creation")
    w5, w1 = num(split, "ephemeral_5m_input_tokens"), num(split, "ephemeral_1h_input_tokens")
    # Writes not attributed to a TTL (no split reported) are billed as 5-minute writes.
    w5 += max(0.0, num(usage, "cache_creation_input_tokens") - w5 - w1)
    return (num(usage, "input_tokens"), num(usage, "output_tokens"), w5, w1, num(usage, "cache_read_input_tokens"))


def usage_cost(
    usage: Mapping[str, Any], model: str, *, batch: bool = True, prices: PriceSource = None
) -> CostBreakdown:
    """Dollars for one response's ``usage`` (any field may be missing or ``None``).

    ``cache_creation_input_tokens`` not split by TTL in ``cache_creation`` is billed as 5 min
    writes. A long-prompt tier applies when input + cache read + cache write is over its threshold.

    >>> cost = usage_cost({"input_tokens": 500, "output_tokens": 200}, "claude-sonnet-4-5", batch=False)
    >>> round(cost.total, 6), round(cost.output, 6)
    (0.0045, 0.003)
    """
    dollars = kind_costs(np.array([_usage_counts(usage)]), model, batch=batch, prices=prices)[0]
    return CostBreakdown(*map(float, dollars))


_USAGE_COLUMNS = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cache_creation_input_tokens": ("cache_creation_input_tokens",),
    "cache_read_input_tokens": ("cache_read_input_tokens", "cache_read"),
    "ephemeral_5m": (
        "ephemeral_5m_input_tokens",
        "cache_creation.ephemeral_5m_input_tokens",
        "cache_creation_ephemeral_5m_input_tokens",
        "cache_write_5m",
    ),
    "ephemeral_1h": (
        "ephemeral_1h_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens",
        "cache_creation_ephemeral_1h_input_tokens",
        "cache_write_1h",
    ),
}


def _usage_column(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    for prefix in ("", "usage.", "usage_"):
        for name in names:
            if prefix + name in frame.columns:
                values = pd.to_numeric(frame[prefix + name], errors="coerce")
                column: np.ndarray = np.nan_to_num(values.to_numpy(dtype="float64", na_value=np.nan))
                return column
    return np.zeros(len(frame))


def kind_costs(usage: np.ndarray, model: str, *, batch: bool = True, prices: PriceSource = None) -> np.ndarray:
    """Dollars by kind of token, ``(n, 5)`` in :data:`KINDS` order, for token counts in that order.

    Each request is priced on its own, so the long-prompt tier applies to just the requests
    whose prompt (input + cache writes + cache reads) is over the model's threshold.

    >>> kind_costs(np.array([[1_000_000, 0, 0, 0, 0]]), "claude-haiku-4-5").tolist()
    [[0.5, 0.0, 0.0, 0.0, 0.0]]
    """
    price = load_prices(prices).get(model)
    usage = np.asarray(usage, dtype=np.float64).reshape(-1, len(KINDS))
    short = np.array(list(price.rates(batch=batch, long_prompt=False).values())) / MTOK
    out = usage * short
    threshold = price.long_prompt_threshold
    if threshold is not None:
        is_long = usage[:, 0] + usage[:, 2:].sum(axis=1) > threshold
        if is_long.any():
            long = np.array(list(price.rates(batch=batch, long_prompt=True).values())) / MTOK
            out[is_long] = usage[is_long] * long
    return out


def usage_cost_frame(
    frame: pd.DataFrame,
    model: str | Sequence[str] | pd.Series,
    *,
    batch: bool = True,
    prices: PriceSource = None,
) -> pd.DataFrame:
    """Vectorised :func:`usage_cost`: one row of dollars per row of usage, same index.

    Args:
        frame: usage columns named as in the API (``input_tokens``, ``output_tokens``,
            ``cache_creation_input_tokens``, ``cache_read_input_tokens``, and the TTL split as
            ``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens`` or
            ``cache_creation.ephemeral_…``), optionally prefixed ``usage.`` or ``usage_`` as
            :func:`pandas.json_normalize` leaves them, or named as in ``Job.outcomes()``
            (``cache_write_5m``, ``cache_write_1h``, ``cache_read``). Missing columns and NA count
            as 0.
        model: one model id, or one per row.

    Returns:
        Columns :data:`KINDS` plus ``total``, in dollars.
    """
    cols = {key: _usage_column(frame, names) for key, names in _USAGE_COLUMNS.items()}
    w5, w1 = cols["ephemeral_5m"], cols["ephemeral_1h"]
    w5 = w5 + np.maximum(0.0, cols["cache_creation_input_tokens"] - w5 - w1)
    counts = np.stack([cols["input_tokens"], cols["output_tokens"], w5, w1, cols["cache_read_input_tokens"]])
    table = load_prices(prices)
    out = np.zeros_like(counts)
    models = np.asarray(model, dtype=object) if not isinstance(model, str) else None
    if models is not None and len(models) != len(frame):
        raise ValueError(f"model has {len(models)} values for {len(frame)} rows")
    for name in [model] if models is None else pd.unique(models):
        sel = slice(None) if models is None else models == name
        out[:, sel] = kind_costs(counts[:, sel].T, str(name), batch=batch, prices=table).T
    result = pd.DataFrame(out.T, index=frame.index, columns=list(KINDS))
    result["total"] = out.sum(axis=0)
    return result
