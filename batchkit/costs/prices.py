"""The model and price table: per-model rates and limits, dated and sourced, and user overrides. Pure.

Every rate is in US dollars per million tokens at the standard (non-batch) price. Each model
stores its own input, output, 5-minute and 1-hour cache-write and cache-read rates (newer models
read the cache cheaper than the old 0.1× rule), its batch multiplier, its minimum cacheable prompt
length, where one exists a long-prompt tier, its cap on ``max_tokens`` (``max_output_tokens``) and
whether the ``output-300k-2026-03-24`` beta covers it on the Batches API (``batch_output_300k``).
The model ids, aliases and limits come from the model catalogue
(:mod:`batchkit.core.models`, which the call's checks read); this table adds the money. It is the
one table calls are checked against: an id it does not know is refused before sending
(unless ``check_model=False``), and ``max_tokens`` over the cap too. Users extend it with
``prices={"model-id": {"input": …, "output": …, "max_output_tokens": …}}`` (or a JSON/TOML
file). The arithmetic that uses the rates is in :mod:`batchkit.costs.pricing`.

>>> load_prices().get("claude-haiku-4-5").input
1.0
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import numbers
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from batchkit.core import _json, models
from batchkit.core.models import ALIASES, MODELS, OUTPUT_300K_BETA, OUTPUT_300K_TOKENS, resolve_id
from batchkit.errors import ConfigurationError, UnknownModelError

__all__ = [
    "KINDS",
    "OUTPUT_300K_BETA",
    "OUTPUT_300K_TOKENS",
    "PRICES_AS_OF",
    "Price",
    "PriceSource",
    "PriceTable",
    "load_prices",
    "output_betas",
]

KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
"""The kinds of tokens a request is billed for, in the order used by every breakdown."""

PRICES_AS_OF = "2026-11-26"
"""Date the built-in table was assembled (from batchkit's API reference, compiled 2026-11)."""

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
    max_output_tokens: int | None = None
    """The model's cap on ``max_tokens`` (standard API and batches); None when unknown (not checked)."""
    batch_output_300k: bool = False
    """Whether the ``output-300k-2026-03-24`` beta raises the cap to 300,000 on the Batches API."""
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
        factor = (self.batch_multiplier if batch else 1.0) * (self.long_prompt_multiplier if long_prompt else 1.0)
        return {kind: getattr(self, kind) * factor for kind in KINDS}


_DOCS = "platform.claude.com pricing page snapshots 2025-26"
_3P = "third-party price trackers citing the official page"
_MIN_CONFLICT = "minimum cacheable 4096 per Anthropic's skill docs (2026-07); some third-party sources say 1024"


def _p(rates: tuple[float, float, float, float, float], minimum: int | None, source: str = _DOCS, **kw: Any) -> Price:
    """A table entry from ``(input, 5m write, 1h write, cache read, output)`` as published."""
    if minimum is None:  # no source gives this model's minimum
        kw["min_cacheable_known"] = False
        minimum = DEFAULT_MIN_CACHEABLE_TOKENS
    input, write_5m, write_1h, read, output = rates
    return Price(
        input=input,
        output=output,
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
        cache_read=read,
        min_cacheable_tokens=minimum,
        source=source,
        **kw,
    )


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

_RATES: dict[str, Price] = {
    # (rates, minimum cacheable tokens; each model's limits are the catalogue's, batchkit.core.models)
    "claude-haiku-4-5": _p(_HAIKU_4, 4096),
    "claude-sonnet-4-5": _p(
        _SONNET_4,
        1024,
        note="end of life 2026-11-30; no longer in the SDK's model list from 2.15",
    ),
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
        _FABLE_5_2,
        None,
        source="a reseller's price list (no primary source)",
        uncertain=True,
        note="$8/$40 and the $0.20 read from a reseller only; cache writes unpublished, so the "
        "standard 1.25× / 2× of input ($10 / $16) are assumed",
    ),
    "claude-mythos-5-2": _p(
        _FABLE_5_1,
        None,
        source="none: Mythos 5.1 prices carried forward",
        uncertain=True,
        note="no published price; Mythos 5.1's are assumed, the higher of the two plausible "
        "choices (Fable 5.2 is $8/$40), so estimates and the budget guard err high",
    ),
    "claude-sonnet-5": _p(
        _SONNET_5,
        None,
        source=f"official model pages ($2/$10); cache rates from {_3P}",
        note="launched as an intro price through 2026-08-31; standard since 2026-09-01 per trackers",
    ),
    "claude-sonnet-5-5": _p(
        _SONNET_5_5,
        None,
        source=f"official lineup ($2/$10); cache rates from {_3P}",
        uncertain=True,
        note="cache read cut from $0.20 to $0.10 (0.05×) on 2026-10-07 per trackers only",
    ),
    "claude-opus-5-5": _p(
        _OPUS_5_5,
        None,
        source=f"official lineup ($4/$20); cache rates from {_3P}",
        uncertain=True,
        note="cache rates (read $0.20 = 0.05×) from trackers only",
    ),
    "claude-haiku-5-5": _p(
        _HAIKU_5_5,
        None,
        long_prompt_threshold=100_000,
        long_prompt_multiplier=5.0,
        source=f"official lineup ('from $0.10 / $0.50'); tiers from {_3P}",
        uncertain=True,
        note="×5 on every rate for the whole request when input + cache read + cache write > "
        "100,000 tokens — tier boundary from trackers only",
    ),
    "claude-mythos-preview": _p(
        _MYTHOS_PREVIEW,
        None,
        source="third-party coverage; not in the reference table",
        uncertain=True,
        note="$25/$125 from third-party coverage (Fable 5 at $10 was 'less than half' its price); "
        "cache rates by the standard multipliers; retired 2026-06-30 per the SDK",
    ),
    # Legacy and retired ids, for re-pricing old jobs.
    "claude-sonnet-4-0": _p(_SONNET_4, 1024, note="SDK lists end of life 2026-06-15"),
    "claude-opus-4-1": _p(_OPUS_4_0, 1024, note="retired 2026-08-05"),
    "claude-opus-4-0": _p(_OPUS_4_0, None, note="retired"),
    "claude-3-5-haiku-20241022": _p(_HAIKU_3_5, 2048, note="retired 2026-02-19"),
}
_BUILTIN = {
    model: dataclasses.replace(
        price, max_output_tokens=MODELS[model].max_output_tokens, batch_output_300k=MODELS[model].batch_output_300k
    )
    for model, price in _RATES.items()
}
_BUILTIN_ALIASES = dict(ALIASES)
_PRICE_FIELDS = {f.name for f in dataclasses.fields(Price)}
_CACHE_RATES = ("cache_write_5m", "cache_write_1h", "cache_read")

PriceSource = Union["PriceTable", Mapping[str, Any], str, "os.PathLike[str]", None]


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
        return resolve_id(model, self._prices, self._aliases)

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

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"<PriceTable: {len(self)} models, prices as of {self.as_of}>"

    def with_overrides(self, overrides: Mapping[str, Any]) -> PriceTable:
        """A new table with ``{model: {field: value} | Price}`` applied (see :func:`load_prices`)."""
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(
                "prices= must be a dict of model id -> price fields (e.g. "
                '{"my-model": {"input": 3.0, "output": 15.0}}), a PriceTable, or the path of a JSON or '
                f"TOML file holding that dict; not {type(overrides).__name__} {overrides!r:.80}"
            )
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
        # The example price is the nearest known model's (a Haiku-like id gets Haiku's rates), so
        # a copy-paste of the example is at least the right order of magnitude.
        like = next((self._prices.get(m) or self._prices.get(self._aliases.get(m, "")) for m in near), None)
        rates = (like.input, like.output) if like is not None else (3.00, 15.00)
        spec = f'{{"{model}": {{"input": {rates[0]:.2f}, "output": {rates[1]:.2f}}}}}'
        return (
            f"No price for model {model!r} in batchkit's price table (prices as of {self.as_of}).{hint}\n"
            f"Give its price in US dollars per million tokens with the prices= argument, e.g.\n"
            f"    df.claude.estimate(..., model={model!r}, prices={spec})\n"
            f"or build a table once: batchkit.costs.pricing.load_prices({spec}) (a JSON or TOML file "
            f"path works too). Cache rates you leave out are derived from input as 1.25× (5m write), "
            f'2× (1h write) and 0.1× (read); add "max_output_tokens" to have max_tokens checked too.\n'
            f"To send to a model whose price you do not know, pass check_model=False: it is then "
            f"sent unchecked, costs show as unknown, and max_cost= cannot be used."
        )


def _override_price(model: str, spec: Any, base: Price | None) -> Price:
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f'the price for {model!r} must be a mapping such as {{"input": 3.0, "output": 15.0}}, not {spec!r}'
        )
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
    spec = {key: _check_price_field(model, key, value) for key, value in spec.items()}
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


_TEXT_FIELDS = ("source", "note")
_FLAG_FIELDS = ("uncertain", "min_cacheable_known", "batch_output_300k")
_COUNT_FIELDS = ("min_cacheable_tokens", "long_prompt_threshold", "max_output_tokens")


def _check_price_field(model: str, key: str, value: Any) -> Any:
    """One override field, checked and normalised (numpy numbers become Python numbers)."""
    if key in _TEXT_FIELDS:
        if not isinstance(value, str):
            raise ConfigurationError(f"price field {key!r} for {model!r} must be text, not {value!r}")
        return value
    if key in _FLAG_FIELDS:
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigurationError(f"price field {key!r} for {model!r} must be True or False, not {value!r}")
        return bool(value)
    if key in _COUNT_FIELDS:
        if value is None and key != "min_cacheable_tokens":
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigurationError(
                f"price field {key!r} for {model!r} must be a whole number of tokens >= 1, not {value!r}"
            )
        return int(value)
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"price field {key!r} for {model!r} must be a number >= 0 (US dollars per million tokens), not {value!r}"
        )
    if key == "batch_multiplier" and not 0 < float(value) <= 1:
        raise ConfigurationError(
            f"price field 'batch_multiplier' for {model!r} is the fraction of the standard price a batch "
            f"pays (0.5 = 50% off), so it must be in (0, 1], not {value!r}"
        )
    return float(value)


def _read_price_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"prices= names the file {str(path)!r}, which does not exist. Pass the path of a JSON or TOML "
            'file of {"model-id": {"input": 3.0, "output": 15.0}}, or the same mapping as a dict.'
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the prices file {str(path)!r} ({exc}). Pass a readable UTF-8 JSON or TOML file, "
            "or the prices as a dict."
        ) from None
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
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"the prices file {str(path)!r} is not valid TOML ({exc}); fix it") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"the prices file {str(path)!r} is not valid JSON ({exc}); fix it, or name a .toml file"
            ) from None
    if isinstance(data, Mapping) and set(data) == {"prices"}:
        data = data["prices"]
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"the prices file {str(path)!r} must hold a table of model id -> price fields, "
            'e.g. {"my-model": {"input": 3.0, "output": 15.0}}'
        )
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
    if isinstance(overrides, (str, os.PathLike)):
        overrides = _read_price_file(Path(overrides))
    return _DEFAULT_TABLE.with_overrides(overrides)


_DEFAULT_TABLE = PriceTable(_BUILTIN, aliases=_BUILTIN_ALIASES)
models.use_table_loader(load_prices)  # a call's prices= builds its table of models here


# --------------------------------------------------------------------------- the 300K-output beta


def output_betas(body: bytes, prices: PriceSource = None) -> tuple[str, ...]:
    """The ``anthropic-beta`` values a batch body needs: ``(OUTPUT_300K_BETA,)`` when some
    request asks for more than its model's standard output cap (``max_output_tokens``).

    Whether the beta *covers* the model is not decided here but by the call's checks, against
    the call's own table (``prices=`` may mark a model covered): a request over its model's
    standard cap reaches a batch only when they found the beta allows it. A model this table
    does not know gets the header when it asks for more than the smallest cap of a covered
    model (below that, the beta raises no cap it could need).

    Finding out costs one regular-expression scan of the body (no per-request object) and,
    only when some ``max_tokens`` is above that smallest cap, one parse of the body.

    >>> line = b'{"custom_id":"k","params":{"max_tokens":%d,"model":"claude-opus-4-6"}}'
    >>> output_betas(b'{"requests":[' + line % 100_000 + b']}'), output_betas(b'{"requests":[' + line % 200_000 + b']}')
    ((), ('output-300k-2026-03-24',))
    """
    table = load_prices(prices)
    floor, pattern = _over_cap_pattern(table)
    if pattern is None or pattern.search(body) is None:
        return ()  # the usual case: one scan in C, no per-request object
    for item in _json.loads(body)["requests"]:
        params = item["params"]
        asked, model = params.get("max_tokens"), params.get("model")
        if not isinstance(asked, int) or asked <= floor or not isinstance(model, str):
            continue
        cap = table.get(model).max_output_tokens if model in table else None
        if cap is None or asked > cap:
            return (OUTPUT_300K_BETA,)
    return ()


@functools.lru_cache(maxsize=8)
def _over_cap_pattern(table: PriceTable) -> tuple[int, re.Pattern[bytes] | None]:
    """The smallest standard cap of a model the beta covers, and a pattern that finds a
    ``"max_tokens":N`` with N above it (None: the table covers no model)."""
    caps = [table.get(m).max_output_tokens for m in table if table.get(m).batch_output_300k]
    known = [c for c in caps if c is not None and c < OUTPUT_300K_TOKENS]
    if not known:
        return OUTPUT_300K_TOKENS, None
    floor = min(known)
    return floor, re.compile(rb'"max_tokens":\s*(?:' + _greater_than(floor) + rb")(?![0-9])")


def _greater_than(n: int) -> bytes:
    """A regular expression (bytes) for the decimal integers above ``n`` (no leading zeros)."""
    digits = str(n)
    width = len(digits)
    options = [b"[1-9][0-9]{%d,}" % width]  # more digits
    for i, d in enumerate(digits):
        if d != "9":
            options.append(b"%s[%d-9][0-9]{%d}" % (digits[:i].encode(), int(d) + 1, width - i - 1))
    return b"|".join(options)
