"""The Polars front end's typed output columns: each output column's
:class:`~batchkit.core.structured.ColumnType` as a Polars dtype, and the answers as typed Series.

Part of the Polars front end (:mod:`batchkit.frontends.polars`), kept apart so that module holds the
namespaces and their runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from batchkit.core.structured import ColumnType, OutputSpec

__all__ = ["dtype_of", "output_columns", "output_schema"]


# --------------------------------------------------------------------------- typed columns


def dtype_of(ctype: ColumnType) -> pl.DataType:
    """The Polars dtype of an output column's :class:`~batchkit.core.structured.ColumnType`.

    >>> dtype_of(ColumnType("enum", values=("no", "yes")))
    Enum(categories=['no', 'yes'])
    """
    kind = ctype.kind
    simple: dict[str, pl.DataType] = {
        "string": pl.String(),
        "integer": pl.Int64(),
        "number": pl.Float64(),
        "boolean": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us", "UTC"),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        values = ctype.values
        if all(isinstance(v, str) for v in values):
            return pl.Enum(list(values))
        if all(isinstance(v, bool) for v in values):
            return pl.Boolean()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return pl.Int64()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return pl.Float64()
        return pl.Object()
    if kind == "list" and ctype.item is not None:
        item = dtype_of(ctype.item)
        return pl.Object() if isinstance(item, pl.Object) else pl.List(item)
    if kind == "struct":
        fields = {name: dtype_of(sub) for name, sub in ctype.fields}
        if any(isinstance(d, pl.Object) for d in fields.values()):
            return pl.Object()
        return pl.Struct(fields)
    return pl.Object()


def _needs_conversion(ctype: ColumnType) -> bool:
    """Whether parsed JSON values must be converted before Polars takes them (dates, numbers)."""
    if ctype.kind in ("date", "datetime", "number"):
        return True
    if ctype.kind == "enum":
        return isinstance(dtype_of(ctype), pl.Float64)
    if ctype.kind == "list" and ctype.item is not None:
        return _needs_conversion(ctype.item)
    return ctype.kind == "struct" and any(_needs_conversion(sub) for _, sub in ctype.fields)


def _convert(value: Any, ctype: ColumnType) -> Any:
    """A parsed JSON value as the Python value its Polars dtype takes."""
    if value is None:
        return None
    kind = ctype.kind
    if kind == "date":
        return dt.date.fromisoformat(value[:10])
    if kind == "datetime":
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    if kind in ("number", "enum") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "list" and ctype.item is not None and isinstance(value, list):
        return [_convert(v, ctype.item) for v in value]
    if kind == "struct" and isinstance(value, dict):
        return {name: _convert(value.get(name), sub) for name, sub in ctype.fields}
    return value


def output_schema(output: str, spec: OutputSpec | None) -> dict[str, pl.DataType]:
    """The output columns' Polars dtypes, by name (free text: one String column)."""
    if spec is None:
        return {output: pl.String()}
    return {column: dtype_of(ctype) for column, ctype in spec.types().items()}


def output_columns(output: str, spec: OutputSpec | None, answers: Sequence[str | None]) -> list[pl.Series]:
    """The output columns, typed, from each row's answer (None where a row has none)."""
    if spec is None:
        return [pl.Series(output, answers, dtype=pl.String)]
    types = spec.types()
    out = []
    for column, cells in spec.values(answers).items():
        ctype = types[column]
        dtype = dtype_of(ctype)
        if _needs_conversion(ctype):
            cells = [_convert(c, ctype) for c in cells]
        out.append(pl.Series(column, cells, dtype=dtype))
    return out
