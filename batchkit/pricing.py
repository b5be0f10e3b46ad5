"""Prices, offline token estimates and cost arithmetic. Pure: no network, no disk (except a price
file the caller names), no store.

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
    >>> from batchkit.pricing import usage_cost
    >>> usage_cost({"input_tokens": 1_000_000, "output_tokens": 0}, "claude-haiku-4-5").total
    0.5
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import pandas as pd

from . import _json
from .errors import BudgetExceededError, ConfigurationError, UnknownModelError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "KINDS",
    "MODES",
    "MODE_LABELS",
    "PRICES_AS_OF",
    "CostBreakdown",
    "CostEstimate",
    "ModeCost",
    "Price",
    "PriceTable",
    "break_even_hit_rate",
    "break_even_rows",
    "caching_savings",
    "default_typical_output_tokens",
    "estimate_cost",
    "estimate_request_tokens",
    "estimate_tokens",
    "load_prices",
    "savings_vs_prefix",
    "savings_vs_rows",
    "shared_prefix_tokens",
    "usage_cost",
    "usage_cost_frame",
]

PRICES_AS_OF = "2026-11-26"
"""Date the built-in table was assembled (from batchkit's API reference, compiled 2026-11)."""

KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
"""The kinds of tokens a request is billed for, in the order used by every breakdown."""

Mode = Literal["standard", "batch", "batch+5m", "batch+1h"]
MODES: tuple[str, ...] = ("standard", "batch", "batch+5m", "batch+1h")
"""The ways to run a job an estimate compares: Messages API, Batch API, Batch API + prompt cache."""
MODE_LABELS = {
    "standard": "standard",
    "batch": "batch",
    "batch+5m": "batch + 5m cache",
    "batch+1h": "batch + 1h cache",
}

# Standard cache multipliers of input price; used when a rate is not given (user overrides).
CACHE_WRITE_5M_MULTIPLIER = 1.25
CACHE_WRITE_1H_MULTIPLIER = 2.0
CACHE_READ_MULTIPLIER = 0.1
DEFAULT_MIN_CACHEABLE_TOKENS = 1024
_MTOK = 1_000_000


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Price:
    """One model's prices in US dollars per million tokens, at the standard (non-batch) rate."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    batch_multiplier: float = 0.5
    """Fraction of every standard rate a Batch API request pays (0.5 = 50% off)."""
    min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS
    """A cached prefix shorter than this is silently not cached by the API."""
    min_cacheable_known: bool = True
    """False when no source gives this model's minimum and the default 1024 is assumed."""
    long_prompt_threshold: int | None = None
    """Prompt size (input + cache read + cache write) above which the long tier applies."""
    long_prompt_multiplier: float = 1.0
    """Multiplier of every rate, for the whole request, above ``long_prompt_threshold``."""
    uncertain: bool = False
    """True when some figure rests on weak sources; ``note`` says which."""
    source: str = ""
    note: str = ""

    @classmethod
    def from_input_output(cls, input: float, output: float, **fields: Any) -> Price:
        """A price whose cache rates follow the standard multipliers (1.25× / 2× / 0.1× input).

        >>> Price.from_input_output(3, 15).cache_write_1h
        6.0
        """
        # rounded so that 3 × 0.1 reads as the published 0.30, not 0.30000000000000004
        fields.setdefault("cache_write_5m", round(input * CACHE_WRITE_5M_MULTIPLIER, 10))
        fields.setdefault("cache_write_1h", round(input * CACHE_WRITE_1H_MULTIPLIER, 10))
        fields.setdefault("cache_read", round(input * CACHE_READ_MULTIPLIER, 10))
        return cls(input=input, output=output, **fields)

    def is_long(self, prompt_tokens: float) -> bool:
        """Whether a request with this many prompt tokens is billed at the long-prompt tier."""
        return self.long_prompt_threshold is not None and prompt_tokens > self.long_prompt_threshold

    def rates(self, *, batch: bool = True, long_prompt: bool = False) -> dict[str, float]:
        """Dollars per million tokens for each of :data:`KINDS`, with the modifiers applied.

        >>> PriceTable.default().get("claude-haiku-4-5").rates(batch=True)["cache_write_1h"]
        1.0
        """
        factor = (self.batch_multiplier if batch else 1.0) * (
            self.long_prompt_multiplier if long_prompt else 1.0
        )
        return {kind: getattr(self, kind) * factor for kind in KINDS}


_DOCS = "platform.claude.com pricing page snapshots 2025-26"
_3P = "third-party price trackers citing the official page"
_MIN_CONFLICT = ("minimum cacheable 4096 per Anthropic's skill docs (2026-07); "
                 "some third-party sources say 1024")


def _p(rates: tuple[float, float, float, float, float], minimum: int | None, source: str = _DOCS,
       **kw: Any) -> Price:
    """A table entry from ``(input, 5m write, 1h write, cache read, output)`` as published."""
    if minimum is None:  # no source gives this model's minimum
        kw["min_cacheable_known"] = False
        minimum = DEFAULT_MIN_CACHEABLE_TOKENS
    input, write_5m, write_1h, read, output = rates
    return Price(input=input, output=output, cache_write_5m=write_5m, cache_write_1h=write_1h,
                 cache_read=read, min_cacheable_tokens=minimum, source=source, **kw)


# $/MTok:      input  5m write  1h write  read   output
_HAIKU_4 = (1.00, 1.25, 2.00, 0.10, 5.00)
_SONNET_4 = (3.00, 3.75, 6.00, 0.30, 15.00)
_OPUS_4 = (5.00, 6.25, 10.00, 0.50, 25.00)
_OPUS_4_0 = (15.00, 18.75, 30.00, 1.50, 75.00)
_FABLE_5 = (10.00, 12.50, 20.00, 1.00, 50.00)
_FABLE_5_1 = (10.00, 12.50, 20.00, 0.25, 50.00)
_FABLE_5_2 = (8.00, 10.00, 16.00, 0.20, 40.00)
_SONNET_5 = (2.00, 2.50, 4.00, 0.20, 10.00)
_SONNET_5_5 = (2.00, 2.50, 4.00, 0.10, 10.00)
_OPUS_5_5 = (4.00, 5.00, 8.00, 0.20, 20.00)
_HAIKU_5_5 = (0.10, 0.125, 0.20, 0.01, 0.50)
_MYTHOS_PREVIEW = (25.00, 31.25, 50.00, 2.50, 125.00)
_HAIKU_3_5 = (0.80, 1.00, 1.60, 0.08, 4.00)

_BUILTIN: dict[str, Price] = {
    "claude-haiku-4-5": _p(_HAIKU_4, 4096),
    "claude-sonnet-4-5": _p(_SONNET_4, 1024, note="SDK lists end of life 2026-11-30"),
    "claude-sonnet-4-6": _p(_SONNET_4, 2048, note=_MIN_CONFLICT.replace("4096", "2048")),
    "claude-opus-4-5": _p(_OPUS_4, 4096),
    "claude-opus-4-6": _p(_OPUS_4, 4096, note=_MIN_CONFLICT),
    "claude-opus-4-7": _p(_OPUS_4, 4096),
    "claude-opus-4-8": _p(_OPUS_4, 4096, note=_MIN_CONFLICT),
    "claude-opus-5": _p(_OPUS_4, None),
    "claude-fable-5": _p(_FABLE_5, 2048),
    "claude-mythos-5": _p(_FABLE_5, None),
    "claude-fable-5-1": _p(_FABLE_5_1, None, note="cache read $0.25 (0.025× input)"),
    "claude-mythos-5-1": _p(_FABLE_5_1, None, note="cache read $0.25 (0.025× input)"),
    "claude-fable-5-2": _p(
        _FABLE_5_2, None, source="a reseller's price list (no primary source)", uncertain=True,
        note="$8/$40 and the $0.20 read from a reseller only; cache writes unpublished, so the "
        "standard 1.25× / 2× of input ($10 / $16) are assumed",
    ),
    "claude-mythos-5-2": _p(
        _FABLE_5_1, None, source="none: Mythos 5.1 prices carried forward", uncertain=True,
        note="no published price; Mythos 5.1's are assumed, the higher of the two plausible "
        "choices (Fable 5.2 is $8/$40), so estimates and the budget guard err high",
    ),
    "claude-sonnet-5": _p(
        _SONNET_5, None, source=f"official model pages ($2/$10); cache rates from {_3P}",
        note="launched as an intro price through 2026-08-31; standard since 2026-09-01 per trackers",
    ),
    "claude-sonnet-5-5": _p(
        _SONNET_5_5, None, source=f"official lineup ($2/$10); cache rates from {_3P}", uncertain=True,
        note="cache read cut from $0.20 to $0.10 (0.05×) on 2026-10-07 per trackers only",
    ),
    "claude-opus-5-5": _p(
        _OPUS_5_5, None, source=f"official lineup ($4/$20); cache rates from {_3P}", uncertain=True,
        note="cache rates (read $0.20 = 0.05×) from trackers only",
    ),
    "claude-haiku-5-5": _p(
        _HAIKU_5_5, None, long_prompt_threshold=100_000, long_prompt_multiplier=5.0,
        source=f"official lineup ('from $0.10 / $0.50'); tiers from {_3P}", uncertain=True,
        note="×5 on every rate for the whole request when input + cache read + cache write > "
        "100,000 tokens — tier boundary from trackers only",
    ),
    "claude-mythos-preview": _p(
        _MYTHOS_PREVIEW, None, source="third-party coverage; not in the reference table", uncertain=True,
        note="$25/$125 from third-party coverage (Fable 5 at $10 was 'less than half' its price); "
        "cache rates by the standard multipliers; retired 2026-06-30 per the SDK",
    ),
    # Legacy and retired ids, for re-pricing old jobs.
    "claude-sonnet-4-0": _p(_SONNET_4, 1024, note="SDK lists end of life 2026-06-15"),
    "claude-opus-4-1": _p(_OPUS_4_0, 1024, note="retired 2026-08-05"),
    "claude-opus-4-0": _p(_OPUS_4_0, None, note="retired"),
    "claude-3-5-haiku-20241022": _p(_HAIKU_3_5, 2048, note="retired 2026-02-19"),
}
_BUILTIN_ALIASES = {
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-20250514": "claude-opus-4-0",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
_DATE_SUFFIX = re.compile(r"-\d{8}$")
_PRICE_FIELDS = {f.name for f in dataclasses.fields(Price)}
_CACHE_RATES = ("cache_write_5m", "cache_write_1h", "cache_read")

PriceSource = Union["PriceTable", Mapping[str, Any], str, Path, None]


class PriceTable:
    """Model id → :class:`Price`, with dated aliases (``-20251001``) mapped to their base id.

    Not a ``Mapping``: :meth:`get` raises :class:`~batchkit.errors.UnknownModelError` (with
    the fix in its message) instead of returning ``None``.
    """

    def __init__(
        self,
        prices: Mapping[str, Price],
        *,
        aliases: Mapping[str, str] | None = None,
        as_of: str = PRICES_AS_OF,
    ) -> None:
        self._prices = dict(prices)
        self._aliases = dict(aliases or {})
        self.as_of = as_of

    @classmethod
    def default(cls) -> PriceTable:
        """The built-in table (shared, immutable)."""
        return _DEFAULT_TABLE

    def _lookup(self, model: str) -> str | None:
        for candidate in (model, self._aliases.get(model), _DATE_SUFFIX.sub("", model)):
            if candidate in self._prices:
                return candidate
        return None

    def resolve(self, model: str) -> str:
        """The table's id for ``model``: itself, its alias target, or its id without a date suffix."""
        found = self._lookup(model)
        if found is None:
            raise UnknownModelError(self._unknown_message(model), model=model)
        return found

    def get(self, model: str) -> Price:
        """The price of ``model``; raises ``UnknownModelError`` explaining how to add one."""
        return self._prices[self.resolve(model)]

    __getitem__ = get

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self._lookup(model) is not None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"<PriceTable: {len(self)} models, prices as of {self.as_of}>"

    def with_overrides(self, overrides: Mapping[str, Any]) -> PriceTable:
        """A new table with ``{model: {field: value} | Price}`` applied (see :func:`load_prices`)."""
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(f"price overrides must be a mapping of model id to price, not {overrides!r}")
        prices = dict(self._prices)
        for model, spec in overrides.items():
            known = self._lookup(str(model))
            base = self._prices[known] if known is not None else None
            prices[str(model)] = spec if isinstance(spec, Price) else _override_price(str(model), spec, base)
        return PriceTable(prices, aliases=self._aliases, as_of=self.as_of)

    def to_frame(self) -> pd.DataFrame:
        """One row per model: every :class:`Price` field, standard rates per MTok."""
        rows = [{"model": m, **dataclasses.asdict(p)} for m, p in self._prices.items()]
        return pd.DataFrame(rows).set_index("model")

    def _unknown_message(self, model: str) -> str:
        near = difflib.get_close_matches(model, [*self._prices, *self._aliases], n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
        spec = f'{{"{model}": {{"input": 3.00, "output": 15.00}}}}'
        return (
            f"No price for model {model!r} in batchkit's price table (prices as of {self.as_of}).{hint}\n"
            f"Give its price in US dollars per million tokens with the prices= argument, e.g.\n"
            f"    df.claude.estimate(..., model={model!r}, prices={spec})\n"
            f"or build a table once: batchkit.pricing.load_prices({spec}) (a JSON or TOML file "
            f"path works too). Cache rates you leave out are derived from input as 1.25× (5m write), "
            f"2× (1h write) and 0.1× (read)."
        )


def _override_price(model: str, spec: Any, base: Price | None) -> Price:
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"the price for {model!r} must be a mapping such as "
                                 f'{{"input": 3.0, "output": 15.0}}, not {spec!r}')
    unknown = set(spec) - _PRICE_FIELDS
    if unknown:
        raise ConfigurationError(
            f"unknown price field(s) {sorted(unknown)} for {model!r}; known: {sorted(_PRICE_FIELDS)}"
        )
    if base is None and not {"input", "output"} <= set(spec):
        raise ConfigurationError(
            f"{model!r} is not in the price table, so its price needs at least 'input' and "
            f"'output' (US dollars per million tokens), e.g. {{'input': 3.0, 'output': 15.0}}"
        )
    for key, value in spec.items():
        numeric = key not in ("uncertain", "min_cacheable_known", "source", "note", "long_prompt_threshold")
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigurationError(f"price field {key!r} for {model!r} must be a number >= 0, not {value!r}")
    fields: dict[str, Any] = {"source": "user override", "note": ""}
    if base is not None:
        fields = dataclasses.asdict(base)
        if {"input", "output", *_CACHE_RATES} & set(spec):  # the caller's rates replace uncertain ones
            fields.update(source="user override", note="", uncertain=False)
        else:
            fields.update(source=f"{base.source}; user override")
        if "input" in spec:  # a new input price re-derives the cache rates the caller left out
            for rate in _CACHE_RATES:
                fields.pop(rate)
    fields.update(spec)
    return Price.from_input_output(**fields)


def _read_price_file(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError:
                raise ConfigurationError(
                    f"reading {path} needs Python 3.11+ or `pip install tomli`; or use a JSON file"
                ) from None
        data: Any = tomllib.loads(text)
    else:
        data = json.loads(text)
    if isinstance(data, Mapping) and set(data) == {"prices"}:
        data = data["prices"]
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{path} must hold a table of model id -> price fields")
    return data


def load_prices(overrides: PriceSource = None) -> PriceTable:
    """The built-in price table with the caller's prices applied.

    Args:
        overrides: ``None`` (built-in table), a :class:`PriceTable` (returned as is), a mapping
            ``{model_id: {"input": 1.0, "output": 5.0, ...}}`` in US dollars per million tokens,
            or the path of a JSON or TOML file holding that mapping (optionally under a
            top-level ``prices`` key). For a model not in the table ``input`` and ``output`` are
            required. Fields left out keep the table's value, except that cache rates left out
            next to a new ``input`` are derived from it by the standard multipliers:
            1.25× (5 min write), 2× (1 h write), 0.1× (read). Any :class:`Price` field may be
            given (``min_cacheable_tokens``, ``batch_multiplier``, ``long_prompt_threshold``...).

    >>> load_prices({"my-model": {"input": 1, "output": 5}}).get("my-model").cache_read
    0.1
    """
    if overrides is None:
        return _DEFAULT_TABLE
    if isinstance(overrides, PriceTable):
        return overrides
    if isinstance(overrides, (str, Path)):
        overrides = _read_price_file(Path(overrides))
    return _DEFAULT_TABLE.with_overrides(overrides)


_DEFAULT_TABLE = PriceTable(_BUILTIN, aliases=_BUILTIN_ALIASES)


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
    return 0  # images, documents, tool blocks: not counted offline (see estimate_request_tokens)


def _has_breakpoint(block: Any) -> bool:
    return isinstance(block, Mapping) and bool(block.get("cache_control"))


def _prompt_parts(params: Mapping[str, Any]) -> list[tuple[int, bool]]:
    """(tokens, is_cache_breakpoint) for each part of a prompt, in cache-prefix order."""
    parts = [(estimate_tokens(_json.dumps(tool).decode()), _has_breakpoint(tool))
             for tool in params.get("tools") or ()]
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
    by :func:`estimate_tokens`. Images, documents and tool-use/result blocks count 0 offline.

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
    return (num(usage, "input_tokens"), num(usage, "output_tokens"), w5, w1,
            num(usage, "cache_read_input_tokens"))


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
    price = load_prices(prices).get(model)
    counts = _usage_counts(usage)
    prompt = counts[0] + counts[2] + counts[3] + counts[4]  # input + cache writes + cache reads
    rates = price.rates(batch=batch, long_prompt=price.is_long(prompt))
    return CostBreakdown(*(n * rates[kind] / _MTOK for n, kind in zip(counts, KINDS)))


_USAGE_COLUMNS = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cache_creation_input_tokens": ("cache_creation_input_tokens",),
    "cache_read_input_tokens": ("cache_read_input_tokens", "cache_read"),
    "ephemeral_5m": ("ephemeral_5m_input_tokens", "cache_creation.ephemeral_5m_input_tokens",
                     "cache_creation_ephemeral_5m_input_tokens", "cache_write_5m"),
    "ephemeral_1h": ("ephemeral_1h_input_tokens", "cache_creation.ephemeral_1h_input_tokens",
                     "cache_creation_ephemeral_1h_input_tokens", "cache_write_1h"),
}


def _usage_column(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    for prefix in ("", "usage.", "usage_"):
        for name in names:
            if prefix + name in frame.columns:
                values = pd.to_numeric(frame[prefix + name], errors="coerce")
                return np.nan_to_num(values.to_numpy(dtype="float64", na_value=np.nan))
    return np.zeros(len(frame))


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
    prompt = counts[0] + counts[2] + counts[3] + counts[4]
    table = load_prices(prices)
    out = np.zeros_like(counts)
    models = np.asarray(model, dtype=object) if not isinstance(model, str) else None
    if models is not None and len(models) != len(frame):
        raise ValueError(f"model has {len(models)} values for {len(frame)} rows")
    for name in [model] if models is None else pd.unique(models):
        price = table.get(name)
        sel = np.ones(len(frame), dtype=bool) if models is None else models == name
        short, long = (np.array(list(price.rates(batch=batch, long_prompt=tier).values()))[:, None]
                       for tier in (False, True))
        threshold = price.long_prompt_threshold
        is_long = prompt[sel] > (threshold if threshold is not None else np.inf)
        out[:, sel] = counts[:, sel] * np.where(is_long, long, short) / _MTOK
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
) -> CostBreakdown:
    """Cost of ``requests`` requests under the caching model in the module docstring.

    ``input_tokens`` and ``output_tokens`` are totals over all requests; ``input_tokens``
    includes the prefix. ``prefix_tokens`` is per request and already checked against the minimum.
    """
    if requests <= 0:
        return CostBreakdown()
    long_prompt = price.is_long(input_tokens / requests)
    rates = price.rates(batch=batch, long_prompt=long_prompt)
    dollars = {"input": input_tokens * rates["input"] / _MTOK,
               "output": output_tokens * rates["output"] / _MTOK}
    if ttl is not None and prefix_tokens > 0:
        writes = min(requests, max(1.0, (1.0 - hit_rate) * requests))
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


@dataclass(frozen=True)
class ModeCost:
    """Dollars for one way of running the job."""

    mode: str
    low: float
    """Typical output, best hit rate of the range."""
    typical: float
    """Typical output, middle of the hit-rate range."""
    high: float
    """Every answer at ``max_tokens``, worst hit rate of the range."""
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
    prices_as_of: str = PRICES_AS_OF

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
            f"every answer {self.max_tokens:,} tokens long{hits}. Typical estimate {_usd(cost.typical)} "
            f"(range {_usd(cost.low)}–{_usd(cost.high)}). Lower max_tokens, send fewer rows, or raise max_cost.",
            limit=max_cost,
            estimate=bound,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per mode: dollars (low, typical, high, upper_bound) and tokens."""
        rows = [
            {
                "mode": c.mode, "low": c.low, "typical": c.typical, "high": c.high,
                "upper_bound": c.upper_bound, "requests": self.requests,
                "input_tokens": self.input_tokens,
                "cached_prefix_tokens": self.cached_prefix_tokens if c.mode.startswith("batch+") else 0,
                "output_tokens_typical": self.requests * self.typical_output_tokens,
                "output_tokens_max": self.requests * self.max_tokens,
            }
            for c in self.modes
        ]
        return pd.DataFrame(rows).set_index("mode")

    def plot(self, ax: Axes | None = None) -> Axes:
        """Bars of the typical cost per mode with the low–high range (:func:`batchkit.plots.plot_estimate`)."""
        from .plots import plot_estimate

        return plot_estimate(self, ax=ax)

    # -- display

    def _token_note(self) -> str:
        if self.token_source == "count_tokens":
            return "counted by the API"
        return "offline estimate, ≈4 UTF-8 bytes per token"

    def _summary(self) -> list[str]:
        dupes = self.rows - self.rows_skipped - self.unique_requests
        guess = ", a guess" if self.typical_output_assumed else ""
        typical = f"{self.typical_output_tokens:,}{guess}"
        lines = [
            (f"{self.model}: {self.requests:,} requests to send ({self.rows:,} rows: "
             f"{self.rows_skipped:,} skipped, {dupes:,} duplicates, "
             f"{self.already_answered:,} already answered)"),
            (f"input {self.input_tokens:,} tokens ({self._token_note()}); output up to "
             f"{self.max_tokens:,} tokens per request (typical {typical})"),
        ]
        if self.cached_prefix_tokens:
            lo, hi = self.hit_rate
            lines.append(f"cached prefix {self.cached_prefix_tokens:,} tokens per request; cache hit "
                         f"rate {_pct(lo)}–{_pct(hi)} (best effort in a batch)")
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
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
            for r in rows
        ]
        notes = [f"- {n}" for n in self.notes]
        return "\n".join(["CostEstimate", *self._summary(), "", *table, *(["", *notes] if notes else [])])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = 'style="padding:2px 8px;text-align:{}"'
        head = "".join(f"<th {cell.format('left' if i == 0 else 'right')}>{esc(h)}</th>"
                       for i, h in enumerate(("mode", "low", "typical", "high", "upper bound", "vs standard")))
        body = "".join(
            "<tr>" + "".join(f"<td {cell.format('left' if i == 0 else 'right')}>{esc(v)}</td>"
                             for i, v in enumerate(row)) + "</tr>"
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
    shared_prefix_tokens: int = 0,
    typical_output_tokens: int | None = None,
    token_source: Literal["offline", "count_tokens"] = "offline",
    hit_rate: float | tuple[float, float] = (0.3, 0.98),
    prices: PriceSource = None,
) -> CostEstimate:
    """Dollars under standard, batch, batch + 5 min cache and batch + 1 h cache.

    Args:
        rows: rows in the frame; ``rows_skipped`` of them are not sent (missing values).
        unique_requests: distinct requests among the rows that are sent;
            ``already_answered`` of them are in the store and cost nothing.
        input_tokens: total input tokens of the requests to be sent (unique, not answered),
            including the shared prefix.
        shared_prefix_tokens: tokens of the cacheable prefix every request shares. A prefix
            under the model's minimum cacheable length is not cached (and a note says so).
        typical_output_tokens: expected answer length; default
            :func:`default_typical_output_tokens` (flagged as a guess).
        hit_rate: (worst, best) fraction of requests that read the cache; the caching modes'
            ``low`` uses the best, ``typical`` the midpoint, ``high`` the worst, and
            ``upper_bound`` assumes no hit at all. See the module docstring for the model.

    >>> e = estimate_cost(model="claude-sonnet-4-5", rows=100_000, unique_requests=100_000,
    ...                   input_tokens=50_000_000, max_tokens=200, typical_output_tokens=200)
    >>> e["standard"].typical, e["batch"].typical
    (450.0, 225.0)
    """
    price = load_prices(prices).get(model)
    lo, hi = _check_hit_rate(hit_rate)
    counts = {"rows": rows, "rows_skipped": rows_skipped, "unique_requests": unique_requests,
              "already_answered": already_answered, "input_tokens": input_tokens,
              "max_tokens": max_tokens, "shared_prefix_tokens": shared_prefix_tokens}
    for name, value in counts.items():
        whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value)
        if not whole or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    (rows, rows_skipped, unique_requests, already_answered, input_tokens, max_tokens,
     shared_prefix_tokens) = (int(v) for v in counts.values())
    if rows_skipped + unique_requests > rows or already_answered > unique_requests:
        raise ValueError(f"inconsistent counts: rows={rows}, rows_skipped={rows_skipped}, "
                         f"unique_requests={unique_requests}, already_answered={already_answered}")
    requests = unique_requests - already_answered
    if requests and shared_prefix_tokens * requests > input_tokens:
        raise ValueError("shared_prefix_tokens × requests is more than input_tokens "
                         "(which includes the prefix)")
    assumed = typical_output_tokens is None
    typical_out = (default_typical_output_tokens(max_tokens) if typical_output_tokens is None
                   else min(int(typical_output_tokens), max_tokens))
    below_min = 0 < shared_prefix_tokens < price.min_cacheable_tokens
    prefix = 0 if below_min else shared_prefix_tokens

    def cost(mode: str, out_per_request: int, h: float) -> CostBreakdown:
        ttl = mode.partition("+")[2] or None
        return _run_cost(price, requests=requests, input_tokens=input_tokens, batch=mode != "standard",
                         output_tokens=requests * out_per_request, ttl=ttl, prefix_tokens=prefix, hit_rate=h)

    modes = []
    for m in MODES:
        typical = cost(m, typical_out, (lo + hi) / 2)
        modes.append(ModeCost(mode=m, low=cost(m, typical_out, hi).total, typical=typical.total,
                              high=cost(m, max_tokens, lo).total, upper_bound=cost(m, max_tokens, 0.0).total,
                              breakdown=typical))
    notes = _estimate_notes(model, price, {c.mode: c for c in modes}, shared_prefix_tokens,
                            below_min, assumed, input_tokens / requests if requests else 0.0, lo)
    return CostEstimate(
        model=model, rows=rows, rows_skipped=rows_skipped, unique_requests=unique_requests,
        already_answered=already_answered, requests=requests, input_tokens=input_tokens,
        shared_prefix_tokens=shared_prefix_tokens, cached_prefix_tokens=prefix, max_tokens=max_tokens,
        typical_output_tokens=typical_out, typical_output_assumed=assumed, token_source=token_source,
        hit_rate=(lo, hi), price=price, modes=tuple(modes), notes=tuple(notes),
    )


def _estimate_notes(
    model: str, price: Price, modes: dict[str, ModeCost], prefix: int, below_min: bool,
    assumed: bool, prompt_per_request: float, worst_hit: float,
) -> list[str]:
    notes = []
    minimum = f"{price.min_cacheable_tokens:,} tokens" + ("" if price.min_cacheable_known else ", assumed")
    if below_min:
        notes.append(f"The shared prefix ({prefix:,} tokens) is under {model}'s minimum cacheable "
                     f"length ({minimum}): the API will not cache it, so caching saves nothing.")
    elif not prefix:
        notes.append("No shared prefix is marked for caching: the caching modes cost the same as batch.")
    elif modes["batch+1h"].high > modes["batch"].high:
        notes.append(f"At a {_pct(worst_hit)} hit rate a 1h cache costs more than no cache: every miss "
                     f"writes the prefix at {price.cache_write_1h / price.input:g}× the input price.")
    if assumed:
        notes.append("Typical output length is a guess (a quarter of max_tokens, at most 1,024); "
                     "pass typical_output_tokens for a better figure.")
    if price.is_long(prompt_per_request):
        notes.append(f"Prompts average over {price.long_prompt_threshold:,} tokens: {model}'s "
                     f"long-prompt rates (×{price.long_prompt_multiplier:g}) apply.")
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


def break_even_rows(
    model: str, *, hit_rate: float = 1.0, ttl: str = "1h", prices: PriceSource = None
) -> int | None:
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
    common = {"requests": rows, "input_tokens": rows * (prefix_tokens + other_input_tokens),
              "output_tokens": rows * output_tokens, "batch": batch}
    without = _run_cost(price, **common).total
    with_cache = _run_cost(price, **common, ttl=ttl, prefix_tokens=prefix_tokens if cached else 0,
                           hit_rate=hit_rate).total
    writes = min(rows, max(1.0, (1.0 - hit_rate) * rows)) if cached and rows else 0.0
    return {
        "model": model, "rows": rows, "ttl": ttl, "batch": batch, "hit_rate": hit_rate,
        "without_cache": without, "with_cache": with_cache, "saving": without - with_cache,
        "saving_pct": (without - with_cache) / without if without else 0.0,
        "cached": cached, "cache_writes": writes, "cache_reads": (rows - writes) if cached else 0.0,
        "min_cacheable_tokens": price.min_cacheable_tokens,
        "break_even_hit_rate": break_even_hit_rate(model, ttl=ttl, prices=prices),
        "break_even_rows": break_even_rows(model, hit_rate=hit_rate, ttl=ttl, prices=prices),
    }


_CURVE_COLUMNS = ["without_cache", "with_cache", "saving", "saving_pct"]


def savings_vs_prefix(
    model: str, *, rows: int, other_input_tokens: int, output_tokens: int, hit_rate: float,
    prefix_range: Sequence[int] | None = None, ttl: Literal["5m", "1h"] = "1h", batch: bool = True,
    prices: PriceSource = None,
) -> pd.DataFrame:
    """:func:`caching_savings` for each shared-prefix length (default: 0 to 4× the model's
    minimum, at least 8,192, with the minimum itself included). Indexed by ``prefix_tokens``.

    The per-token saving does not depend on the prefix length, so the only threshold along this
    axis is the model's minimum cacheable length.
    """
    minimum = load_prices(prices).get(model).min_cacheable_tokens
    if prefix_range is None:
        grid = np.linspace(0, max(4 * minimum, 8192), 129).round().astype(int)
        prefix_range = np.unique(np.concatenate([grid, [minimum - 1, minimum]]))
    kw = {"other_input_tokens": other_input_tokens, "output_tokens": output_tokens,
          "hit_rate": hit_rate, "ttl": ttl, "batch": batch, "prices": prices}
    data = [caching_savings(model, rows=rows, prefix_tokens=int(p), **kw) for p in prefix_range]
    index = pd.Index([int(p) for p in prefix_range], name="prefix_tokens")
    return pd.DataFrame(data, index=index)[_CURVE_COLUMNS]


def savings_vs_rows(
    model: str, *, prefix_tokens: int, other_input_tokens: int, output_tokens: int, hit_rate: float,
    rows_range: Sequence[int] | None = None, ttl: Literal["5m", "1h"] = "1h", batch: bool = True,
    prices: PriceSource = None,
) -> pd.DataFrame:
    """:func:`caching_savings` for each row count (default 1 to 100,000, log-spaced).
    Indexed by ``rows``; :func:`break_even_rows` gives the crossing point."""
    if rows_range is None:
        rows_range = np.unique(np.geomspace(1, 100_000, 121).round().astype(int))
    kw = {"prefix_tokens": prefix_tokens, "other_input_tokens": other_input_tokens,
          "output_tokens": output_tokens, "hit_rate": hit_rate, "ttl": ttl, "batch": batch,
          "prices": prices}
    data = [caching_savings(model, rows=int(n), **kw) for n in rows_range]
    index = pd.Index([int(n) for n in rows_range], name="rows")
    return pd.DataFrame(data, index=index)[_CURVE_COLUMNS]
