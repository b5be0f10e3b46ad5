"""The truth a comparison scores against, checked before anything is sent. Pure.

``truth=`` names the column that holds the right answers (``{field: column}`` for an extraction).
A truth that could never score an answer is refused before the sample is paid for: a column that is
not in the frame, holds no value (missing or blank), or holds values that can never equal an answer
of its field's kind — a word where a number, True/False or a date is extracted, a value outside a
label set or a ``Literal`` — and, for several fields, a frame where no row has a value in every
truth column. Each refusal names the fix. How a truth value is read and compared is
:mod:`batchkit.compare.scoring`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from batchkit.core.results import SAMPLE_OUTPUT
from batchkit.core.structured import OutputSpec
from batchkit.errors import InvalidOptionError, MissingColumnError, OptionTypeError

from .scoring import as_kind, normal, present

__all__ = ["check_label_truth", "check_truth_columns", "field_kinds", "have_truth", "truth_pairs"]

Kinds = dict[str, tuple[str, tuple[Any, ...]]]
"""``{answer field: (kind of answer, its closed set of values or ())}``."""

_KIND_WORDS = {"number": "numbers", "boolean": "True or False", "date": "dates"}
_KIND_FIX = {
    "number": "pd.to_numeric(df[{c!r}], errors='coerce') makes them missing (not scored)",
    "boolean": "df[{c!r}].map({{'yes': True, 'no': False}}) maps them",
    "date": "pd.to_datetime(df[{c!r}], errors='coerce') makes them missing (not scored)",
}


def check_truth_columns(frame: pd.DataFrame, truth: Any, task: str) -> Any:
    """``truth`` itself, once it names columns of ``frame`` (one, or ``{field: column}`` for extraction)."""
    if truth is None:
        return None
    columns = [str(c) for c in frame.columns]
    names = list(truth.values()) if isinstance(truth, Mapping) else [truth]
    if isinstance(truth, Mapping) and task != "extract":
        raise OptionTypeError(
            "truth= as {field: column} is for extraction; name one column: truth='label'", option="truth"
        )
    for name in names:
        if not isinstance(name, str):
            raise OptionTypeError(f"truth must name a column of the frame (a string), not {name!r:.60}", option="truth")
        if name not in frame.columns:
            raise MissingColumnError(
                f"truth={name!r} is not a column of the frame; its columns are {columns}",
                column=name,
                available=columns,
            )
    return truth


def _not_among(distinct: pd.Series, choices: Sequence[Any]) -> list[str]:
    """The values of ``distinct`` that, read as scoring reads them (``" Positive."`` is the label
    ``positive``; a blank cell is no truth), are none of ``choices`` — sorted, as text."""
    allowed = set(normal(list(choices)).dropna())
    read = normal(distinct.to_numpy())
    return sorted({str(v) for v, n in zip(distinct, read, strict=True) if n is not pd.NA and n not in allowed})


def check_label_truth(frame: pd.DataFrame, truth: Any, labels: Sequence[str]) -> None:
    """Refuse a classification's truth column holding values that are not among ``labels``."""
    unknown = _not_among(frame[truth].dropna().drop_duplicates(), labels)
    if unknown:
        raise InvalidOptionError(
            f"the truth column {truth!r} holds values that are not labels: {unknown[:5]}; "
            f"labels are {list(labels)}. Map them first, e.g. df.assign(gold=df[{truth!r}].map({{...}}))",
            option="truth",
        )


def field_kinds(spec: OutputSpec) -> Kinds:
    """Each extracted field's kind of answer (see :data:`batchkit.compare.scoring.TRUTH_KINDS`) and,
    for a closed set (``Literal``, ``Enum``), its values: what a truth column is read as."""
    defs = spec.schema.get("$defs", {})

    def resolve(prop: Mapping[str, Any]) -> Mapping[str, Any]:
        if "$ref" in prop:
            prop = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
        branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
        return resolve(branches[0]) if len(branches) == 1 else prop  # X | None is read as X

    kinds: Kinds = {}
    for name, raw in spec.schema.get("properties", {}).items():
        prop = resolve(raw)
        if "enum" in prop:
            kinds[name] = ("enum", tuple(prop["enum"]))
        elif prop.get("type") in ("integer", "number"):
            kinds[name] = ("number", ())
        elif prop.get("type") == "boolean":
            kinds[name] = ("boolean", ())
        elif prop.get("type") == "string" and prop.get("format") in ("date", "date-time"):
            kinds[name] = ("date", ())
        else:
            kinds[name] = ("text", ())
    return kinds


def truth_pairs(frame: pd.DataFrame, truth: Any, task: str, spec: OutputSpec | None) -> dict[str, str]:
    """``{answer field: truth column}`` — after refusing a truth that could score no answer.

    Refused: a truth naming no field of the schema or one column for several fields; a column
    with no value at all (missing or blank); values that cannot be the field's kind of answer
    (a word where a number, True/False or a date is extracted, or a value outside a closed set);
    and, for several fields, no row with a value in every truth column (a row is scored on all).
    """
    if truth is None:
        return {}
    kinds, pairs = _fields_of(truth, task, spec)
    for field_name, column in pairs.items():
        _check_column(frame, field_name, column, *kinds[field_name])
    if len(pairs) > 1 and not have_truth(frame, pairs).any():
        raise InvalidOptionError(
            f"no row has a value in every truth column {list(pairs.values())}, and a row is scored on all its "
            "fields: fill them in, or score fewer fields",
            option="truth",
        )
    return pairs


def _fields_of(truth: Any, task: str, spec: OutputSpec | None) -> tuple[Kinds, dict[str, str]]:
    """The answer fields ``truth`` scores, with their kinds: the one output column, or the schema's fields."""
    if task != "extract":
        return {SAMPLE_OUTPUT: ("text", ())}, {SAMPLE_OUTPUT: truth}
    assert spec is not None
    kinds = field_kinds(spec)
    fields = list(kinds)
    if isinstance(truth, str):
        if len(fields) != 1:
            raise InvalidOptionError(
                f"truth={truth!r} names one column, but the schema has {len(fields)} fields {fields}: say which "
                f"column holds which field's right answer, e.g. truth={{{fields[0]!r}: {truth!r}}}",
                option="truth",
            )
        return kinds, {fields[0]: truth}
    if not truth:
        raise InvalidOptionError(
            f"truth={{}} names no field: give {{field: column}}, e.g. truth={{{fields[0]!r}: 'a column'}}, "
            "or leave truth= out to measure agreement",
            option="truth",
        )
    unknown = [f for f in truth if f not in kinds]
    if unknown:
        raise InvalidOptionError(
            f"truth= names {unknown}, not a field of the schema; its fields are {fields}. Key truth= by the "
            f"schema's field names, e.g. truth={{{fields[0]!r}: {next(iter(truth.values()))!r}}}",
            option="truth",
        )
    return kinds, dict(truth)


def _check_column(frame: pd.DataFrame, field_name: str, column: str, kind: str, choices: tuple[Any, ...]) -> None:
    """Refuse a truth column with no value, or with values that can never be ``field_name``'s answer."""
    values = frame[column]
    has_value = present(values)
    if not has_value.any():
        raise InvalidOptionError(
            f"the truth column {column!r} has no values (all {len(frame):,} are missing or blank), so no answer "
            "could be scored: fill it in, or leave truth= out to measure agreement with the reference model",
            option="truth",
        )
    distinct = values[has_value].drop_duplicates() if kind != "text" else values.iloc[:0]
    _, bad = as_kind(distinct, kind)
    if bad.any():
        examples = [repr(v) for v in distinct[bad].iloc[:5]]
        wrong = int(values[has_value].isin(distinct[bad]).sum())
        raise InvalidOptionError(
            f"the truth column {column!r} holds values that are not {_KIND_WORDS[kind]}, but the field "
            f"{field_name!r} is extracted as {_KIND_WORDS[kind]}, so they could never match: {', '.join(examples)} "
            f"({wrong:,} of {len(frame):,} rows). Convert the column first: " + _KIND_FIX[kind].format(c=column),
            option="truth",
        )
    outside = _not_among(distinct, choices) if kind == "enum" else []
    if outside:
        raise InvalidOptionError(
            f"the truth column {column!r} holds values that are not among the field {field_name!r}'s choices "
            f"{list(choices)}: {outside[:5]}. Map them first, e.g. df[{column!r}].map({{...}})",
            option="truth",
        )


def have_truth(rows: pd.DataFrame, pairs: Mapping[str, str]) -> np.ndarray:
    """Per row: a value in every truth column (the rows that can be scored)."""
    scorable: np.ndarray = np.logical_and.reduce([present(rows[c]) for c in pairs.values()])
    return scorable
