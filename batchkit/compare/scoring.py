"""How an answer is scored on a comparison's sample: against the truth, or the reference's answer. Pure.

Answers and truths are brought to one form before they are compared (:func:`normal`): text
stripped, case-folded and without an end dot; numbers as numbers (``5.0`` is ``5``); dates as ISO
dates; missing and blank values as NA, which is never scored. A truth column is first read as the
kind of answer its field holds (:data:`TRUTH_KINDS`, :func:`as_kind`), so ``"1"`` matches the
number 1 and ``"yes"`` matches nothing a boolean field answers. A variant's quality is the share of
scored rows it got right, with a Wilson 95% interval (:func:`wilson_interval`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "TRUTH_KINDS",
    "Z95",
    "as_kind",
    "normal",
    "present",
    "score",
    "truth_values",
    "wilson_interval",
]

Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); ``(nan, nan)`` when ``n == 0``.

    Better than the normal approximation near 0 and 1 and for small samples.

    >>> [round(x, 3) for x in wilson_interval(160, 200)]
    [0.739, 0.85]
    """
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval always holds the point estimate. In exact arithmetic it does; in floating point
    # n/n's upper bound comes out as 0.9999999999999999 for hundreds of n (and 0/n's lower bound
    # a hair above 0), and a best variant whose own interval missed its quality broke the choice.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def _normal_value(v: Any) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None  # missing (None, NaN, pandas' NA and NaT alike): nothing to compare
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):  # 5.0 and 5 are one number: an int field against a float column
        return str(int(v)) if math.isfinite(v) and float(v).is_integer() else repr(float(v))
    if isinstance(v, np.datetime64) and np.isnat(v):
        return None
    if isinstance(v, (dt.datetime, np.datetime64)):
        stamp = pd.Timestamp(v)
        iso: str = stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
        return iso
    if isinstance(v, dt.date):
        return v.isoformat()
    text = str(v).strip().casefold().rstrip(".")
    return text or None  # a blank cell holds no answer and no truth


def normal(values: Any) -> pd.Series:
    """Answers and truths in one form for comparing: strings, stripped, case-folded, no end dot;
    numbers as numbers (``5.0`` is ``5``), dates as ISO dates; missing and blank values as NA."""
    return pd.Series([_normal_value(v) for v in np.asarray(values, dtype=object)], dtype="string")


TRUTH_KINDS = ("text", "number", "boolean", "date", "enum")
"""How a truth value is read before it is compared with an answer: by the kind of the answer's field."""
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False}


def _read_number(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return None  # True is no number
    if isinstance(v, (int, float, np.integer, np.floating)):
        return v
    if isinstance(v, str) and "_" not in v:  # Python reads "1_000"; a truth column means no such number
        for read in (int, float):
            try:
                return read(v.strip())
            except ValueError:
                pass
    return None


def _read_boolean(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return _BOOLEAN_WORDS.get(_normal_value(v) or "")


def _read_date(v: Any) -> Any:
    if not isinstance(v, (str, dt.date, np.datetime64)):
        return None  # a number is no date (pandas would read 2020 as nanoseconds after 1970)
    try:
        stamp = pd.Timestamp(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        return None
    return None if stamp is pd.NaT else stamp


_READERS: dict[str, Callable[[Any], Any]] = {"number": _read_number, "boolean": _read_boolean, "date": _read_date}


def as_kind(values: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """``values`` read as ``kind`` (an object Series), and where a present value could not be read."""
    values = values.astype(object)
    reader = _READERS.get(kind)
    if reader is None:  # text and enum values are compared as text
        return values, pd.Series(False, index=values.index)
    read = values.map(reader, na_action="ignore").astype(object)
    return read, values.notna() & read.isna()


def present(values: pd.Series) -> np.ndarray:
    """Per row: a value to compare with (not missing, not blank). Each distinct value is looked
    at once, so a frame of millions of rows with a few labels is checked at once."""
    found: np.ndarray
    try:
        codes, uniques = pd.factorize(values.astype(object))
    except TypeError:  # unhashable cells (lists): one by one
        found = normal(values.to_numpy()).notna().to_numpy()
        return found
    known = normal(np.asarray(uniques, dtype=object)).notna().to_numpy()
    found = (codes >= 0) & known[np.maximum(codes, 0)] if len(known) else np.zeros(len(values), dtype=bool)
    return found


def truth_values(sample: pd.DataFrame, column: str, task: str, kind: str = "text") -> pd.Series:
    """The truth column's values on the sample, read as the answers' ``kind`` and normalised."""
    read, _ = as_kind(sample[column].reset_index(drop=True), kind)
    return normal(read.to_numpy())


def score(answers: pd.Series, expected: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(correct, scored) per row: scored where there is something to compare with."""
    a, e = normal(answers.to_numpy()).reset_index(drop=True), expected.reset_index(drop=True)
    scored = e.notna().to_numpy()
    correct = (a == e).fillna(False).to_numpy(dtype=bool) & scored
    return correct, scored
