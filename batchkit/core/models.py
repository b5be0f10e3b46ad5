"""The model catalogue: which model ids a call may name and what each takes. Pure.

What the call's checks (:mod:`batchkit.core.options`) need to know about models, and nothing about
money: the known ids, their dated aliases (``claude-haiku-4-5-20251001`` → ``claude-haiku-4-5``),
each model's cap on ``max_tokens`` (``max_output_tokens``) and whether the
``output-300k-2026-03-24`` beta raises that cap on the Message Batches API
(``batch_output_300k``). The dollars per token are the price table's
(:mod:`batchkit.costs.prices`), which builds each built-in entry from this catalogue and its own
rates, so a model's figures are written once.

A call checks its model against the *call's* table: the built-in one, or the one its ``prices=``
builds (which may add a model, or change a cap). Building that table is the price table's work,
so the core names only its shape (:class:`ModelTable`) and the loader it is given:
:mod:`batchkit.costs.prices` registers :func:`~batchkit.costs.prices.load_prices` with
:func:`use_table_loader` when it is imported (``import batchkit`` does that before any call).
Without one, :func:`load_table` answers the catalogue alone and refuses a ``prices=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from batchkit.errors import ConfigurationError, UnknownModelError

from .states import SendMode

__all__ = [
    "ALIASES",
    "MODELS",
    "OUTPUT_300K_BETA",
    "OUTPUT_300K_TOKENS",
    "ModelInfo",
    "ModelLimits",
    "ModelTable",
    "load_table",
    "resolve_id",
    "unit_betas",
    "use_table_loader",
]

OUTPUT_300K_BETA = "output-300k-2026-03-24"
"""The beta that raises ``max_tokens`` to :data:`OUTPUT_300K_TOKENS` on the Message Batches API
only, for the models whose ``batch_output_300k`` is set."""

OUTPUT_300K_TOKENS = 300_000
"""The output cap under :data:`OUTPUT_300K_BETA`."""


@dataclass(frozen=True)
class ModelLimits:
    """What a model takes: its cap on ``max_tokens`` and whether the 300K-output beta covers it."""

    max_output_tokens: int | None
    """The model's cap on ``max_tokens`` (standard API and batches); None when unknown (not checked)."""
    batch_output_300k: bool = False
    """Whether the ``output-300k-2026-03-24`` beta raises the cap to 300,000 on the Batches API."""


def _m(cap: int, *, beta: bool = False) -> ModelLimits:
    return ModelLimits(max_output_tokens=cap, batch_output_300k=beta)


MODELS: Mapping[str, ModelLimits] = {
    # The caps are those the simulator's catalogue and /v1/models report; batch_output_300k per the
    # reference's list for the 300k-output beta.
    "claude-haiku-4-5": _m(64_000),
    "claude-sonnet-4-5": _m(64_000),
    "claude-sonnet-4-6": _m(64_000, beta=True),
    "claude-opus-4-5": _m(64_000),
    "claude-opus-4-6": _m(128_000, beta=True),
    "claude-opus-4-7": _m(128_000, beta=True),
    "claude-opus-4-8": _m(128_000, beta=True),
    "claude-opus-5": _m(128_000, beta=True),
    "claude-fable-5": _m(128_000),
    "claude-mythos-5": _m(128_000),
    "claude-fable-5-1": _m(128_000),
    "claude-mythos-5-1": _m(128_000),
    "claude-fable-5-2": _m(128_000),
    "claude-mythos-5-2": _m(128_000),
    "claude-sonnet-5": _m(128_000, beta=True),
    "claude-sonnet-5-5": _m(128_000),
    "claude-opus-5-5": _m(128_000, beta=True),
    "claude-haiku-5-5": _m(64_000),
    "claude-mythos-preview": _m(64_000),
    # Legacy and retired ids, for re-pricing old jobs.
    "claude-sonnet-4-0": _m(64_000),
    "claude-opus-4-1": _m(32_000),
    "claude-opus-4-0": _m(32_000),
    "claude-3-5-haiku-20241022": _m(8_192),
}
"""The built-in model ids and their limits."""

ALIASES: Mapping[str, str] = {
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-20250514": "claude-opus-4-0",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
"""Dated and ``-latest`` ids → the catalogue's id."""

_DATE_SUFFIX = re.compile(r"-\d{8}$")


def resolve_id(model: str, known: Mapping[str, Any], aliases: Mapping[str, str]) -> str | None:
    """The id ``model`` is known under in ``known``: itself, its alias target, or itself without a
    date suffix (``-20251001``); None when none is known."""
    for candidate in (model, aliases.get(model), _DATE_SUFFIX.sub("", model)):
        if candidate in known:
            return candidate
    return None


class ModelInfo(Protocol):
    """What the checks read of one model's entry (a :class:`ModelLimits`, or a price table's entry)."""

    @property
    def max_output_tokens(self) -> int | None: ...

    @property
    def batch_output_300k(self) -> bool: ...


class ModelTable(Protocol):
    """A table of models as the checks use it (:class:`batchkit.costs.prices.PriceTable` is one)."""

    def get(self, model: str) -> ModelInfo:
        """The entry of ``model``; raises :class:`~batchkit.errors.UnknownModelError` naming the fix."""
        ...

    def __iter__(self) -> Iterator[str]: ...

    def __contains__(self, model: object) -> bool: ...


class _Catalogue:
    """The catalogue as a :class:`ModelTable`, for a core used without the price table."""

    def get(self, model: str) -> ModelLimits:
        found = resolve_id(model, MODELS, ALIASES)
        if found is None:
            raise UnknownModelError(f"model {model!r} is not in batchkit's model catalogue", model=model)
        return MODELS[found]

    def __iter__(self) -> Iterator[str]:
        return iter(MODELS)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and resolve_id(model, MODELS, ALIASES) is not None


TableLoader = Callable[[Any], ModelTable]
_loader: list[TableLoader] = []


def use_table_loader(loader: TableLoader) -> None:
    """Have :func:`load_table` build a call's table with ``loader`` (the price table's ``load_prices``)."""
    _loader[:] = [loader]


def load_table(source: Any = None) -> Any:
    """The table a call's ``prices=`` names (None: the built-in one), built by the registered loader.

    Typed ``Any`` because the loader's table is richer than :class:`ModelTable` (the price table).

    Raises:
        ConfigurationError: a ``prices=`` given where no price table is loaded.
    """
    if _loader:
        return _loader[0](source)
    if source is not None:
        raise ConfigurationError("prices= needs batchkit's price table: import batchkit first")
    return _Catalogue()


def unit_betas(mode: SendMode | str, *, max_tokens: int, output_cap: int | None) -> tuple[str, ...]:
    """The betas a unit of ``mode`` whose requests ask for ``max_tokens`` is sent with.

    Args:
        mode: how the unit is sent; only Message Batches have the 300K-output beta.
        max_tokens: what its requests ask for (a job's requests share it).
        output_cap: the model's standard output cap, from the call's price table (None: unknown).

    Whether the beta covers the model was checked with the call (:class:`batchkit.core.options.Options`
    refuses a request over the cap of a model it does not cover), so it is not asked again here.

    >>> unit_betas("batch", max_tokens=200_000, output_cap=128_000)
    ('output-300k-2026-03-24',)
    >>> unit_betas("batch", max_tokens=64_000, output_cap=128_000)
    ()
    >>> unit_betas("realtime", max_tokens=200_000, output_cap=128_000)
    ()
    """
    if mode != SendMode.BATCH or output_cap is None or max_tokens <= output_cap:
        return ()
    return (OUTPUT_300K_BETA,)
