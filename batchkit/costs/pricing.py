"""Offline token estimates and cost arithmetic over the price table (:mod:`batchkit.costs.prices`).
Pure: no network, no disk (except a price file the caller names), no store.

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

The caching model used by every estimate here (documented once, used everywhere)::

    N requests share a cached prefix of P tokens (P >= the model's minimum, else P = 0).
    A fraction h of them read the prefix (a hit); the rest write it (a miss). At least one
    request must write it before anyone can read it, so
        writes = max(1, (1 - h) * N),   reads = N - writes
    h = 1 is therefore a *primed* cache: 1 write + (N - 1) reads. Batch requests run
    concurrently in any order, so hits are best effort: the docs quote roughly 30%-98%.

    cost = writes*P*write_rate + reads*P*read_rate + (other input)*input_rate + output*output_rate

Example:
    >>> from batchkit.costs.pricing import usage_cost
    >>> usage_cost({"input_tokens": 1_000_000, "output_tokens": 0}, "claude-haiku-4-5").total
    0.5
"""

from __future__ import annotations

import dataclasses
import html
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from batchkit.core import _json
from batchkit.core.media import block_tokens
from batchkit.errors import BudgetExceededError

from .prices import _MTOK, KINDS, PRICES_AS_OF, Price, PriceSource, PriceTable, load_prices

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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


Mode = Literal["standard", "batch", "batch+5m", "batch+1h"]
TokenSource = Literal["offline", "count_tokens", "count_tokens+offline"]
"""Where an estimate's input tokens come from; ``count_tokens+offline``: requests too large for the
``count_tokens`` endpoint (over 32 MB, though they fit a batch) were counted offline."""
MODES: tuple[str, ...] = ("standard", "batch", "batch+5m", "batch+1h")
"""The ways to run a job an estimate compares: Messages API, Batch API, Batch API + prompt cache."""
MODE_LABELS = {
    "standard": "standard",
    "batch": "batch",
    "batch+5m": "batch + 5m cache",
    "batch+1h": "batch + 1h cache",
}

# --------------------------------------------------------------------------- tokens


def estimate_tokens(text: str) -> int:
    """The offline token estimate: ``ceil(UTF-8 bytes / 4)``.

    About 4 UTF-8 bytes per token: English prose ≈ 0.25 token/char, Korean (3 bytes a
    character) ≈ 0.75 token/char. batchkit's simulator counts tokens by the same rule, so
    offline estimates and simulated usage agree; real tokenizers differ by model and language —
    use ``count_tokens`` for exact figures.

    >>> estimate_tokens("hello world"), estimate_tokens("안녕하세요")
    (3, 4)
    """
    return (len(text.encode("utf-8")) + 3) // 4


_REQUEST_OVERHEAD = 3
_MESSAGE_OVERHEAD = 4


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return estimate_tokens(block)
    if isinstance(block, Mapping) and block.get("type") == "text":
        return estimate_tokens(str(block.get("text", "")))
    if isinstance(block, Mapping) and block.get("type") in ("image", "document"):
        return block_tokens(block)  # the API's documented rules, from the image header / PDF pages
    return 0  # tool blocks: not counted offline (see estimate_request_tokens)


def _has_breakpoint(block: Any) -> bool:
    return isinstance(block, Mapping) and bool(block.get("cache_control"))


def _prompt_parts(params: Mapping[str, Any]) -> list[tuple[int, bool]]:
    """(tokens, is_cache_breakpoint) for each part of a prompt, in cache-prefix order."""
    parts = [(estimate_tokens(_json.dumps(tool).decode()), _has_breakpoint(tool)) for tool in params.get("tools") or ()]
    system = params.get("system")
    if isinstance(system, str):
        parts.append((estimate_tokens(system), False))
    elif system:
        parts.extend((_block_tokens(b), _has_breakpoint(b)) for b in system)
    for message in params.get("messages") or ():
        parts.append((_MESSAGE_OVERHEAD, False))
        content = message.get("content", "")
        blocks = [content] if isinstance(content, str) else content or ()
        parts.extend((_block_tokens(b), _has_breakpoint(b)) for b in blocks)
    return parts


def estimate_request_tokens(params: Mapping[str, Any]) -> int:
    """Offline input-token count of one request's params (the simulator's rule).

    ``3 + Σ messages (4 + Σ text blocks or string content) + system text (string or text blocks)
    + each tool definition as JSON + the ``output_config.format`` schema as JSON``, each piece
    by :func:`estimate_tokens`. Base64 images and PDFs count by the API's documented rules
    (:func:`batchkit.core.media.block_tokens`); tool-use/result blocks count 0 offline.

    >>> estimate_request_tokens({"messages": [{"role": "user", "content": "hello world"}]})
    10
    """
    total = _REQUEST_OVERHEAD + sum(tokens for tokens, _ in _prompt_parts(params))
    schema = ((params.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is not None:
        total += estimate_tokens(_json.dumps(schema).decode())
    return total


def shared_prefix_tokens(params: Mapping[str, Any]) -> int:
    """Tokens up to and including the last ``cache_control`` breakpoint (tools → system → messages).

    Counted like :func:`estimate_request_tokens`, including each message's 4-token overhead and
    excluding the 3-token request overhead; 0 when the request has no breakpoint. A top-level
    ``cache_control`` (automatic caching) puts the breakpoint on the last block — then the
    "prefix" is the whole prompt, which is only shared if the rows are identical.

    >>> shared_prefix_tokens({"system": [{"type": "text", "text": "x" * 4000,
    ...     "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": "hi"}]})
    1000
    """
    parts = _prompt_parts(params)
    marks = [i for i, (_, mark) in enumerate(parts) if mark]
    if params.get("cache_control") and parts:
        marks.append(len(parts) - 1)
    return sum(tokens for tokens, _ in parts[: max(marks) + 1]) if marks else 0


# --------------------------------------------------------------------------- actual usage


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
        parts = ", ".join(f"{k} {_usd(v)}" for k, v in dataclasses.asdict(self).items() if v)
        return f"{_usd(self.total)}" + (f" ({parts})" if parts else "")


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
                return np.nan_to_num(values.to_numpy(dtype="float64", na_value=np.nan))
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
    short = np.array(list(price.rates(batch=batch, long_prompt=False).values())) / _MTOK
    out = usage * short
    threshold = price.long_prompt_threshold
    if threshold is not None:
        is_long = usage[:, 0] + usage[:, 2:].sum(axis=1) > threshold
        if is_long.any():
            long = np.array(list(price.rates(batch=batch, long_prompt=True).values())) / _MTOK
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


# --------------------------------------------------------------------------- estimates


def _usd(value: float) -> str:
    if value != 0 and abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _run_cost(
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
    dollars = {"input": input_tokens * rates["input"] / _MTOK, "output": output_tokens * rates["output"] / _MTOK}
    if ttl is not None and prefix_tokens > 0:
        writes = min(requests, max(min_writes, (1.0 - hit_rate) * requests))
        reads = requests - writes
        write_kind = f"cache_write_{ttl}"
        dollars["input"] = (input_tokens - requests * prefix_tokens) * rates["input"] / _MTOK
        dollars[write_kind] = writes * prefix_tokens * rates[write_kind] / _MTOK
        dollars["cache_read"] = reads * prefix_tokens * rates["cache_read"] / _MTOK
    return CostBreakdown(**dollars)


def default_typical_output_tokens(max_tokens: int) -> int:
    """The guess used when the caller gives no typical output length: a quarter of
    ``max_tokens`` (rounded up), at most 1,024 — answers rarely run to the cap."""
    return max(1, min(max_tokens, 1024, math.ceil(max_tokens / 4)))


SHORTEST_ANSWER_TOKENS = 1
"""Output tokens of the shortest answer an uncalibrated free-text estimate's ``low`` assumes for
every request: nothing bounds a free answer from below but the answer itself, and an answer is at
least one token. Measured on the simulator over every dataset in ``data/`` (one-sentence
summaries, translations, bare prompts, yes/no questions; haiku and opus), the shortest answers
are 2 tokens (a bare label such as ``negative``) and 3 (``Understood.``), and a job's mean was
2–26 tokens; on the real API a one-word answer (``Yes``, ``Positive``) is one token. So a job
whose every answer is that short pays no less than ``low``, whatever the prompt asks for."""

_STRING_TYPICAL_CHARS = 24
"""A free string field's typical answer: a name or a short phrase, three or four words."""
_ARRAY_TYPICAL_ITEMS = 2
_SCALAR_CHARS = {"integer": (1, 3, 20), "number": (1, 6, 24), "boolean": (4, 4.5, 5), "null": (4, 4, 4)}
_FORMAT_CHARS = {"date": 12, "date-time": 22, "time": 10, "uuid": 38}

Chars = tuple[float, float, float | None]
"""(shortest, typical, longest) bytes of a JSON value; longest None: not bounded by the schema."""


def _json_len(value: Any) -> int:
    return len(_json.dumps(value))


def _schema_chars(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Chars:
    """(shortest, typical, longest) length in bytes of a compact JSON value valid against ``node``;
    longest is None when the schema does not bound it (a free string, an open list)."""
    if not isinstance(node, Mapping) or depth > 16:
        return 2.0, float(_STRING_TYPICAL_CHARS), None
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _schema_chars(defs.get(ref.rsplit("/", 1)[1], {}), defs, depth + 1)
    if "const" in node:
        n = float(_json_len(node["const"]))
        return n, n, n
    if node.get("enum"):
        sizes = [_json_len(v) for v in node["enum"]]
        return float(min(sizes)), sum(sizes) / len(sizes), float(max(sizes))
    for union in ("anyOf", "oneOf"):
        if node.get(union):
            options = [_schema_chars(o, defs, depth + 1) for o in node[union]]
            real = [
                o
                for o, sub in zip(options, node[union], strict=True)
                if not (isinstance(sub, Mapping) and sub.get("type") == "null")
            ] or options
            tops = [o[2] for o in options]
            top = None if None in tops else max(x for x in tops if x is not None)
            return min(o[0] for o in options), real[0][1], top
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    if kind == "object":
        props = node.get("properties") or {}
        required = set(node.get("required") or props)
        shortest = typical = 1.0 if props else 2.0  # the braces, less the last comma
        longest: float | None = typical
        for name, sub in props.items():
            lo, t, m = _schema_chars(sub, defs, depth + 1)
            key = _json_len(name) + 2  # "name": and a comma after the value
            typical += key + t
            shortest += key + lo if name in required else 0
            longest = None if longest is None or m is None else longest + key + m
        if node.get("additionalProperties") not in (None, False):
            longest = None
        return shortest, typical, longest
    if kind == "array":
        lo, t, m = _schema_chars(node.get("items", {}), defs, depth + 1)
        fewest = int(node.get("minItems", 0))
        cap = node.get("maxItems")
        items = node.get("items", {})
        if cap is None and node.get("uniqueItems") and isinstance(items, Mapping) and items.get("enum"):
            cap = len(items["enum"])
        typical_items = max(fewest, min(_ARRAY_TYPICAL_ITEMS, cap if cap is not None else _ARRAY_TYPICAL_ITEMS))
        top = None if cap is None or m is None else 2 + int(cap) * (m + 1)
        return 2 + fewest * (lo + 1), 2 + typical_items * (t + 1), top
    if kind == "string":
        fmt = node.get("format")
        if fmt in _FORMAT_CHARS:
            n = float(_FORMAT_CHARS[fmt])
            return n, n, n
        cap = node.get("maxLength")
        least = 2.0 + int(node.get("minLength", 0))
        if cap is not None:
            return least, min(float(_STRING_TYPICAL_CHARS), 2 + int(cap)), 2.0 + 4 * int(cap)  # ≤ 4 bytes a char
        return least, float(_STRING_TYPICAL_CHARS), None
    return _SCALAR_CHARS.get(str(kind), (2.0, float(_STRING_TYPICAL_CHARS), None))


def schema_output_tokens(schema: Mapping[str, Any]) -> tuple[float, float, int | None]:
    """Output tokens of an answer to a JSON schema: ``(shortest, typical, longest)`` per request.

    The longest valid answer bounds the output whenever the schema bounds every value (labels
    from an enum, numbers, booleans, dates, strings with ``maxLength``, lists with
    ``maxItems`` or unique enum items); it is None when a value is free (a free string, an
    open list), and then ``max_tokens`` is the bound. The typical answer takes every label as
    likely as the others, a free string as a short phrase (about 24 bytes) and a list as two
    items; the shortest, every value as short as the schema allows. Tokens by the offline rule
    (≈4 UTF-8 bytes a token, as the simulator counts them); calibrate on a sample for the real
    tokenizer.

    >>> schema = {"type": "object", "properties": {"label": {"enum": ["negative", "neutral"]}}}
    >>> schema_output_tokens(schema)
    (4.75, 5.0, 5)
    """
    shortest, typical, longest = _schema_chars(schema, schema.get("$defs", {}) or {})
    # a request's output tokens are ceil(bytes / 4): a quarter token over bytes / 4 on average
    top = None if longest is None else math.ceil(longest / 4)
    mean = (typical + 1.5) / 4 if top is None else min((typical + 1.5) / 4, float(top))
    return max(1.0, shortest / 4), mean, top


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

    def __getitem__(self, mode: str) -> ModeCost:
        for cost in self.modes:
            if cost.mode == mode:
                return cost
        raise KeyError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")

    def upper_bound(self, mode: str = "batch") -> float:
        """The most the run can cost in ``mode``: every answer ``max_tokens`` long, no cache hit."""
        return self[mode].upper_bound

    def check_budget(self, max_cost: float, mode: str = "batch") -> None:
        """Raise :class:`~batchkit.errors.BudgetExceededError` if the upper bound is over ``max_cost``."""
        bound = self.upper_bound(mode)
        if bound <= max_cost:
            return
        cost = self[mode]
        hits = " and no cache hit" if mode.startswith("batch+") and self.cached_prefix_tokens else ""
        raise BudgetExceededError(
            f"The {MODE_LABELS[mode]} run could cost up to {_usd(bound)}, over max_cost={_usd(max_cost)}: "
            f"{self.requests:,} requests, {self.input_tokens:,} input tokens ({self._token_note()}), "
            f"every answer {self._bound:,} tokens long{hits}. Typical estimate {_usd(cost.typical)} "
            f"(range {_usd(cost.low)}–{_usd(cost.high)}). Lower max_tokens, send fewer rows, or raise max_cost.",
            limit=max_cost,
            estimate=bound,
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
                "cached_prefix_tokens": self.cached_prefix_tokens if c.mode.startswith("batch+") else 0,
                "output_tokens_typical": self.requests * self.typical_output_tokens,
                "output_tokens_max": self.requests * self._bound,
            }
            for c in self.modes
        ]
        return pd.DataFrame(rows).set_index("mode")

    def plot(self, ax: Axes | None = None) -> Axes:
        """Bars of the typical cost per mode with the low–high range (:func:`batchkit.display.plots.plot_estimate`)."""
        from batchkit.display.plots import plot_estimate

        return plot_estimate(self, ax=ax)

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
                f"{_usd(self.sample_cost)}, paid at the standard price; the run reuses their answers"
            )
        if self.calibrated_on:
            lines.append(f"calibrated on {self.calibrated_on}")
        if self.cached_prefix_tokens:
            lo, hi = self.hit_rate
            lines.append(
                f"cached prefix {self.cached_prefix_tokens:,} tokens per request; cache hit "
                f"rate {_pct(lo)}–{_pct(hi)} (best effort in a batch)"
            )
        return lines

    def _table_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        base = self["standard"].typical
        rows = []
        for c in self.modes:
            vs = "—" if c.mode == "standard" or not base else f"−{1 - c.typical / base:.0%}"
            if base and c.typical > base:
                vs = f"+{c.typical / base - 1:.0%}"
            figures = (_usd(c.low), _usd(c.typical), _usd(c.high), _usd(c.upper_bound))
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


def _check_hit_rate(hit_rate: Any) -> tuple[float, float]:
    lo, hi = (hit_rate, hit_rate) if isinstance(hit_rate, (int, float)) else hit_rate
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"hit_rate must be a fraction or a (low, high) pair within 0..1, not {hit_rate!r}")
    return float(lo), float(hi)


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
    price = load_prices(prices).get(model)
    lo, hi = _check_hit_rate(hit_rate)
    counts = {
        "rows": rows,
        "rows_skipped": rows_skipped,
        "unique_requests": unique_requests,
        "already_answered": already_answered,
        "in_flight": in_flight,
        "input_tokens": input_tokens,
        "max_tokens": max_tokens,
        "shared_prefix_tokens": shared_prefix_tokens,
    }
    for name, value in counts.items():
        whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value)
        if not whole or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    (
        rows,
        rows_skipped,
        unique_requests,
        already_answered,
        in_flight,
        input_tokens,
        max_tokens,
        shared_prefix_tokens,
    ) = (int(v) for v in counts.values())
    if rows_skipped + unique_requests > rows or already_answered + in_flight > unique_requests:
        raise ValueError(
            f"inconsistent counts: rows={rows}, rows_skipped={rows_skipped}, "
            f"unique_requests={unique_requests}, already_answered={already_answered}, "
            f"in_flight={in_flight}"
        )
    requests = unique_requests - already_answered - in_flight
    if requests and shared_prefix_tokens * requests > input_tokens:
        raise ValueError("shared_prefix_tokens × requests is more than input_tokens (which includes the prefix)")
    assumed = typical_output_tokens is None and output_basis is None
    bound = max_tokens if output_bound is None else max(1, min(int(output_bound), max_tokens))
    typical_exact: float = (
        default_typical_output_tokens(max_tokens)
        if typical_output_tokens is None
        else min(float(typical_output_tokens), bound)
    )
    typical_out = max(1, round(typical_exact))
    out_lo, out_hi = output_range if output_range is not None else (typical_exact, bound)
    out_lo, out_hi = min(out_lo, typical_exact), min(max(out_hi, typical_exact), bound)
    mid = (lo + hi) / 2 if typical_hit_rate is None else min(hi, max(lo, typical_hit_rate))
    below_min = 0 < shared_prefix_tokens < price.min_cacheable_tokens
    prefix = 0 if below_min else shared_prefix_tokens

    in_lo, in_hi = (input_tokens, input_tokens) if input_range is None else input_range
    in_lo, in_hi = max(min(in_lo, input_tokens), prefix * requests), max(in_hi, input_tokens)

    def cost(mode: str, out_per_request: float, h: float, tokens: float = input_tokens) -> CostBreakdown:
        ttl = mode.partition("+")[2] or None
        return _run_cost(
            price,
            requests=requests,
            input_tokens=tokens,
            batch=mode != "standard",
            output_tokens=requests * out_per_request,
            ttl=ttl,
            prefix_tokens=prefix,
            hit_rate=h,
            min_writes=0.0 if cache_warm else 1.0,
        )

    modes = []
    for m in MODES:
        typical = cost(m, typical_exact, mid)
        high = cost(m, out_hi, lo, in_hi).total
        modes.append(
            ModeCost(
                mode=m,
                low=cost(m, out_lo, hi, in_lo).total,
                typical=typical.total,
                high=high,
                upper_bound=max(high, cost(m, bound, min(bound_hit_rate, lo), in_hi).total),
                breakdown=typical,
            )
        )
    notes = _estimate_notes(
        model,
        price,
        {c.mode: c for c in modes},
        shared_prefix_tokens,
        below_min,
        assumed,
        input_tokens / requests if requests else 0.0,
        lo,
    )
    if output_bound is not None and bound < max_tokens and output_basis == "measured":
        notes.append(
            f"The budget guard takes answers of {bound:,} tokens on average, from the measurement "
            f"(max_tokens is {max_tokens:,})."
        )
    elif output_bound is not None and bound < max_tokens:
        notes.append(
            f"Answers are at most {bound:,} tokens: the longest answer the output schema allows "
            f"(max_tokens is {max_tokens:,})."
        )
    if price.max_output_tokens is not None and max_tokens > price.max_output_tokens:
        worst = modes[MODES.index("batch")].upper_bound / requests if requests else 0.0
        notes.append(
            f"max_tokens={max_tokens:,} is over {model}'s standard output cap "
            f"({price.max_output_tokens:,}): batches go out with the output-300k beta. The worst "
            f"case per row is large — {max_tokens:,} output tokens, {_usd(worst)} at batch price — "
            f"and one answer that long can take over an hour."
        )
    notes = list(dict.fromkeys([*notes, *extra_notes]))
    return CostEstimate(
        model=model,
        rows=rows,
        rows_skipped=rows_skipped,
        unique_requests=unique_requests,
        already_answered=already_answered,
        in_flight=in_flight,
        requests=requests,
        input_tokens=input_tokens,
        shared_prefix_tokens=shared_prefix_tokens,
        cached_prefix_tokens=prefix,
        max_tokens=max_tokens,
        typical_output_tokens=typical_out,
        typical_output_assumed=assumed,
        token_source=token_source,
        hit_rate=(lo, hi),
        price=price,
        modes=tuple(modes),
        notes=tuple(notes),
        output_bound=bound,
        output_basis=output_basis if output_basis is not None else None if assumed else "given",
    )


def _estimate_notes(
    model: str,
    price: Price,
    modes: dict[str, ModeCost],
    prefix: int,
    below_min: bool,
    assumed: bool,
    prompt_per_request: float,
    worst_hit: float,
) -> list[str]:
    notes = []
    minimum = f"{price.min_cacheable_tokens:,} tokens" + ("" if price.min_cacheable_known else ", assumed")
    if below_min:
        notes.append(
            f"The shared prefix ({prefix:,} tokens) is under {model}'s minimum cacheable "
            f"length ({minimum}): the API will not cache it, so caching saves nothing."
        )
    elif not prefix:
        notes.append("No shared prefix is marked for caching: the caching modes cost the same as batch.")
    elif modes["batch+1h"].high > modes["batch"].high:
        notes.append(
            f"At a {_pct(worst_hit)} hit rate a 1h cache costs more than no cache: every miss "
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


# --------------------------------------------------------------------------- savings curves


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
    hit_rate = _check_hit_rate(hit_rate)[0]
    cached = prefix_tokens >= price.min_cacheable_tokens
    common: dict[str, Any] = {
        "requests": rows,
        "input_tokens": rows * (prefix_tokens + other_input_tokens),
        "output_tokens": rows * output_tokens,
        "batch": batch,
    }
    without = _run_cost(price, **common).total
    with_cache = _run_cost(
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
