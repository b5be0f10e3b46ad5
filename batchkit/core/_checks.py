"""What an option's value must be: the checks :mod:`batchkit.core.options` and
:mod:`batchkit.core.params` declare their fields with. Pure: no network, no store.

A check is a function ``(name, value) -> value``: it raises :class:`~batchkit.OptionTypeError` for
a value of the wrong type and :class:`~batchkit.InvalidOptionError` for one out of range — each
naming the option and the fix — and returns the value normalised (a numpy integer becomes
``int``). :func:`option` makes a dataclass field of a default and a check, and :class:`Checked`
runs every field's check once, when the options are built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, Literal

import numpy as np

from batchkit.errors import InvalidOptionError, OptionTypeError

from .models import load_table

__all__ = [
    "MAX_DEADLINE",
    "Check",
    "Checked",
    "check_calibration_source",
    "check_client",
    "check_deadline",
    "check_dollars",
    "check_flag",
    "check_hit_rate",
    "check_prices",
    "check_seconds",
    "check_store",
    "describe",
    "is_number",
    "is_whole",
    "one_of",
    "option",
    "optional",
    "whole",
]


def describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r:.60}"
    return f"{type(value).__name__} {value!r:.60}"


def is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


Check = Callable[[str, Any], Any]
"""A check: ``(option name, value) -> the value, normalised``, raising when it does not fit."""


def whole(minimum: int, maximum: int | None = None, *, fix: str = "") -> Check:
    """A whole number in ``[minimum, maximum]`` (numpy integers accepted, bools refused)."""
    span = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"of at least {minimum:,}"

    def check(name: str, value: Any) -> int:
        if not is_whole(value):
            raise OptionTypeError(
                f"{name} must be a whole number {span}, not {describe(value)}. {fix}".strip(), option=name
            )
        if value < minimum or (maximum is not None and value > maximum):
            raise InvalidOptionError(f"{name} must be a whole number {span}, not {value!r}. {fix}".strip(), option=name)
        return int(value)

    return check


def optional(check: Check) -> Check:
    def optional(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return optional


def check_seconds(name: str, value: Any) -> float:
    if not is_number(value):
        raise OptionTypeError(
            f"{name} must be a number of seconds such as 30, not {describe(value)}. "
            f"Leave it out for the default backoff.",
            option=name,
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidOptionError(
            f"{name} must be a finite number of seconds > 0, not {value!r}. Leave it out for the default "
            f"backoff (30 s → 10 min for the API, 0.1 → 1 s for a local simulator).",
            option=name,
        )
    return float(value)


def check_dollars(name: str, value: Any) -> float:
    if not is_number(value):
        raise OptionTypeError(
            f"{name} must be a number of US dollars such as 10.0, not {describe(value)}. "
            f"Write {name}=10.0, not {name}='10'.",
            option=name,
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidOptionError(
            f"{name} must be a finite number of US dollars >= 0, not {value!r}. Leave it out for no budget limit.",
            option=name,
        )
    return float(value)


MAX_DEADLINE = dt.timedelta(days=36_500)
"""The farthest ``deadline=`` taken: a hundred years. Farther is no deadline, and past the times a
job can store (``datetime`` ends in the year 9999; ``1e300`` seconds overflows every clock)."""


def check_deadline(name: str, value: Any) -> float | dt.timedelta | dt.datetime:
    """Seconds from now (> 0), a ``timedelta`` (> 0) or a ``datetime`` in the future (naive: local
    time, made aware), at most :data:`MAX_DEADLINE` ahead. Where the clock is the simulator's, a
    datetime is checked again against it."""
    try:
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo is not None else value.astimezone()
            ahead = (value - dt.datetime.now(dt.UTC)).total_seconds()
        elif isinstance(value, dt.timedelta):
            ahead = value.total_seconds()
        elif is_number(value) and math.isfinite(value):
            value = ahead = float(value)
        else:
            raise OptionTypeError(
                f"{name} must be seconds from now (e.g. 3600), a datetime.timedelta or a datetime, not "
                f"{describe(value)}. Leave it out to wait for the batches however long they take.",
                option=name,
            )
    except (OverflowError, ValueError) as exc:  # datetime.max as local time, or an offset past year 9999
        if isinstance(exc, InvalidOptionError):
            raise
        ahead = math.inf if value.year > dt.date.today().year else -math.inf
    if ahead > MAX_DEADLINE.total_seconds():
        raise InvalidOptionError(
            f"{name}={value!r:.60} is more than {MAX_DEADLINE.days // 365} years from now, farther than "
            f"any deadline batchkit can keep (a batch ends within 24 hours). Leave {name} out to wait for the "
            f"batches however long they take, or give a time within that.",
            option=name,
        )
    if ahead <= 0:
        when = f"{ahead:,.0f} s from now" if math.isfinite(ahead) else "long ago"
        raise InvalidOptionError(
            f"{name} has passed ({when}); give a time in the future, or leave it out to wait "
            f"for the batches however long they take.",
            option=name,
        )
    checked: float | dt.timedelta | dt.datetime = value
    return checked


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OptionTypeError(f"{name} must be True or False, not {describe(value)}", option=name)
    return bool(value)


def one_of(*choices: Any, fix: str = "") -> Check:
    def check(name: str, value: Any) -> Any:
        for choice in choices:  # `is` for False, so that 0 and True are not taken for it
            if value is choice or (isinstance(choice, str) and isinstance(value, str) and value == choice):
                return choice
        shown = ", ".join(map(repr, choices))
        raise InvalidOptionError(f"{name} must be one of {shown}, not {describe(value)}. {fix}".strip(), option=name)

    return check


def check_client(name: str, value: Any) -> Any:
    if value is None:
        return None
    import anthropic

    if isinstance(value, anthropic.AsyncAnthropic):
        raise OptionTypeError(
            "client= is an AsyncAnthropic; batchkit drives the SDK from a worker thread with the sync "
            "client. Pass anthropic.Anthropic(...) with the same arguments.",
            option=name,
        )
    if not hasattr(value, "messages") or not hasattr(value, "post"):
        raise OptionTypeError(
            f"client= must be an anthropic.Anthropic client, not {describe(value)}. Build one with "
            f"anthropic.Anthropic(...), or leave it out to use the default client.",
            option=name,
        )
    return value


def check_store(name: str, value: Any) -> Any:
    """A path, or a job store object (anything with the store's ``transaction`` and ``path``: the core
    does not import :mod:`batchkit.stores`, whose :class:`~batchkit.Store` opens the path later)."""
    if value is None or (callable(getattr(value, "transaction", None)) and hasattr(value, "path")):
        return value
    if isinstance(value, (str, os.PathLike)) and str(value):
        return value
    raise OptionTypeError(
        f"store= must be the path of a job store file or a batchkit.Store, not {describe(value)}. "
        f"Leave it out for the default store.",
        option=name,
    )


def is_table(value: Any) -> bool:
    return all(callable(getattr(value, attr, None)) for attr in ("get", "__iter__", "__contains__", "with_overrides"))


def check_prices(name: str, value: Any) -> Any:
    """The call's model and price table (:func:`batchkit.core.models.load_table`: the price table's
    ``load_prices``), from a dict, the path of a JSON/TOML file, or a table."""
    if value is not None and not isinstance(value, (Mapping, str, os.PathLike)) and not is_table(value):
        raise OptionTypeError(
            f"prices= must be a dict such as {{'my-model': {{'input': 3.0, 'output': 15.0}}}}, the path of "
            f"a JSON or TOML file holding one, or a PriceTable; not {describe(value)}",
            option=name,
        )
    return load_table(value)


def check_hit_rate(name: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = (value, value) if is_number(value) else value
    if not isinstance(pair, (tuple, list, np.ndarray)) or len(pair) != 2 or not all(map(is_number, pair)):
        raise OptionTypeError(
            f"{name} must be a fraction such as 0.9 or a (low, high) pair such as (0.3, 0.98), not {describe(value)}",
            option=name,
        )
    lo, hi = float(pair[0]), float(pair[1])
    if not 0.0 <= lo <= hi <= 1.0:  # NaN fails too
        raise InvalidOptionError(
            f"{name} must be a fraction or a (low, high) pair within 0..1 with low <= high, not {value!r}", option=name
        )
    return lo, hi


def check_calibration_source(name: str, value: Any) -> Any:
    """A finished run to calibrate on: a :class:`batchkit.Job` or a :class:`batchkit.Comparison`."""
    if (
        value is None
        or callable(getattr(value, "job_for", None))
        or (hasattr(value, "outcomes") and hasattr(value, "spec"))
    ):
        return value
    raise OptionTypeError(
        f"{name}= takes a batchkit.Job or a batchkit.Comparison (a run of the same prompt whose answers "
        f"were measured), not {describe(value)}. Run the call on a sample first, e.g. "
        f"job = df.sample(100).claude.submit(...); df.claude.estimate(..., {name}=job.wait()).",
        option=name,
    )


def option(
    default: Any, check: Check, *, stored: bool | Literal["if_set"] = False, none_is_default: bool = True
) -> Any:
    """A dataclass field that is an option: its default, its check, whether a job stores it
    (``"if_set"``: only when given, so a spec without it reads as it did before the option), and
    whether ``None`` given for it means the default (else the check sees the ``None``)."""
    return field(default=default, metadata={"check": check, "stored": stored, "none_is_default": none_is_default})


class Checked:
    """Runs every field's check once, at construction (``None`` means "the default")."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            if check is None:
                continue
            value = getattr(self, f.name)
            if value is None and f.default is not None and f.metadata["none_is_default"]:
                value = f.default
            object.__setattr__(self, f.name, check(f.name, value))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
