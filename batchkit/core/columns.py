"""A table the core reads: column names, a length, and each column's cells. Pure.

The core renders and keys rows from columns, never from a DataFrame library's own row objects,
so every front end hands it the same thing: a :class:`Table`, made by :func:`as_table` from

* a pandas DataFrame (the pandas front end's source: columns read exactly as before), or
* any mapping of column name → sequence, all of one length: a list or tuple, a numpy array,
  a pandas Series, a pyarrow Array or ChunkedArray, a polars Series (what the polars and dask
  front ends pass, a partition at a time); also a pyarrow Table or a polars DataFrame. Rows
  are matched by position (a pandas Series' index is not read).

A column is read only when a prompt names it, and then once, as a :class:`Cells`: the Python
value of each cell (what ``tolist``/``to_pylist``/``to_list`` give) and a mask of the missing
ones — None, NaN, NaT, ``pd.NA`` and the nulls of pyarrow and polars all count as missing, so a
row is skipped the same way whichever library holds it. The same values give the same prompt
text, hence the same request key: moving a job from pandas to Polars does not pay for it again.

>>> t = as_table({"review": ["great", None]})
>>> t.names, len(t), t.cells("review").missing.tolist()
(['review'], 2, [False, True])
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from batchkit.errors import ColumnLengthError, NotAFrameError, PromptError

__all__ = ["ACCEPTED", "Cells", "Table", "as_table"]

ACCEPTED = (
    "a pandas DataFrame, or a mapping of column name -> values (a list, numpy array, pandas Series, "
    "pyarrow Array/ChunkedArray or polars Series), all of one length; also a pyarrow Table or a polars DataFrame"
)
"""What :func:`as_table` takes, as error messages name it."""


@dataclass(frozen=True)
class Cells:
    """One column as the core reads it."""

    values: list[Any]
    """Each cell's Python value, in row order (missing cells as their library gives them)."""
    missing: np.ndarray
    """Boolean mask: True where the cell is missing (the row is skipped)."""
    strings: bool | None
    """True: every present cell is a ``str`` (known from the dtype); None: may be, check;
    False: not a string column."""


class Table:
    """Column names, a row count, and a column's :class:`Cells` by name.

    Build one with :func:`as_table`. ``frame`` is the pandas DataFrame it reads, if it reads one
    (the pandas front end merges its results back into it).
    """

    __slots__ = ("_columns", "_length", "frame", "names")

    def __init__(
        self,
        names: list[Hashable],
        length: int,
        columns: Mapping[Hashable, Any] | None,
        frame: pd.DataFrame | None = None,
    ) -> None:
        self.names = names
        self._length = length
        self._columns = columns
        self.frame = frame

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"<Table {self._length:,} rows × {len(self.names)} columns>"

    def cells(self, name: Hashable) -> Cells:
        """The cells of column ``name`` (a name from :attr:`names`).

        Raises:
            PromptError: a pandas frame holds two columns of that name.
        """
        if self.frame is not None:
            values = self.frame[name]
            if isinstance(values, pd.DataFrame):
                raise PromptError(
                    f"column {str(name)!r} appears more than once in the DataFrame; "
                    "rename the duplicates so the prompt is unambiguous"
                )
            return _series_cells(values)
        assert self._columns is not None
        return _cells(self._columns[name])

    def arrow_text(self, name: Hashable) -> Any:
        """Column ``name`` as one pyarrow ``large_string`` array (null where a cell is missing)
        when it already is text held by Arrow — a pandas ``str``/``string[pyarrow]`` column, a
        pyarrow string array, a polars String or Categorical Series — read without a Python
        object per cell; else None (the column is read as :meth:`cells`). The bulk path of
        :mod:`batchkit.core.bulk` renders from it."""
        if self.frame is not None:
            values = self.frame[name]
            return None if isinstance(values, pd.DataFrame) else _arrow_text(values)
        assert self._columns is not None
        return _arrow_text(self._columns[name])

    def rows(self) -> Iterator[Mapping[Any, Any]]:
        """Each row as a mapping of column name → value (for a callable prompt): a ``pd.Series``
        for a pandas frame, as ``DataFrame.iterrows`` gives it, else a dict."""
        if self.frame is not None:
            for _, row in self.frame.iterrows():
                yield row
            return
        names = self.names
        if not names:
            yield from ({} for _ in range(self._length))
            return
        columns = [self.cells(name).values for name in names]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


def as_table(source: Any) -> Table:
    """The :class:`Table` of a pandas DataFrame or of a mapping of name → column (see the module).

    Nothing is copied or converted here: a column is read when the prompt names it.

    Raises:
        NotAFrameError: ``source`` is no table, or one of its columns is not a sequence of values.
        ColumnLengthError: the columns are not all of one length.
    """
    if isinstance(source, Table):
        return source
    if isinstance(source, pd.DataFrame):
        return Table(list(source.columns), len(source), None, source)
    kind = _library(source)
    if kind == "pyarrow" and hasattr(source, "column_names") and hasattr(source, "columns"):
        source = dict(zip(source.column_names, source.columns, strict=True))  # a pyarrow Table
    elif kind == "polars" and hasattr(source, "get_columns"):
        source = {s.name: s for s in source.get_columns()}  # a polars DataFrame
    if not isinstance(source, Mapping):
        raise NotAFrameError(f"expected {ACCEPTED}; got {type(source).__name__}.")
    lengths: dict[Hashable, int] = {}
    for name, column in source.items():
        if (
            isinstance(column, (str, bytes, Mapping, set, frozenset))  # no row order, or one value
            or not hasattr(column, "__len__")
            or getattr(column, "ndim", 1) != 1
        ):
            raise NotAFrameError(
                f"column {str(name)!r} is {_describe(column)}, not a sequence of values (one per row). Pass {ACCEPTED}."
            )
        lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        raise ColumnLengthError(
            "the columns are not all of one length: "
            + ", ".join(f"{str(n)!r} has {k:,}" for n, k in lengths.items())
            + ". Give every column one value per row (None where a row has none).",
            lengths={str(n): k for n, k in lengths.items()},
        )
    return Table(list(source), next(iter(lengths.values()), 0), source)


def _describe(value: Any) -> str:
    ndim = getattr(value, "ndim", None)
    if ndim is not None and ndim != 1:
        return f"a {ndim}-dimensional {type(value).__name__}"
    return f"{type(value).__name__} {value!r:.40}"


def _library(value: Any) -> Literal["pyarrow", "polars"] | None:
    """Which columnar library ``value`` comes from (read from its type: neither is imported)."""
    module = type(value).__module__
    if module.startswith("pyarrow"):
        return "pyarrow"
    if module.startswith("polars"):
        return "polars"
    return None


def _series_cells(values: pd.Series) -> Cells:
    """A pandas column's cells: missing where ``isna``; Python values as ``tolist`` gives them."""
    dtype = values.dtype
    strings: bool | None = (
        True if isinstance(dtype, pd.StringDtype) else None if pd.api.types.is_string_dtype(dtype) else False
    )
    return Cells(values.tolist(), values.isna().to_numpy(), strings)


def _cells(column: Any) -> Cells:
    """The cells of one column of a mapping, read the way its own library reads it."""
    if isinstance(column, pd.Series):
        return _series_cells(column)
    if isinstance(column, (pd.Index, pd.api.extensions.ExtensionArray, np.ndarray)):
        # As a DataFrame built from it reads it: datetime64 as Timestamps, NaN/NaT missing.
        return _series_cells(pd.Series(column, copy=False))
    kind = _library(column)
    if kind == "pyarrow":
        return _arrow_cells(column)
    if kind == "polars":
        return _polars_cells(column)
    # A plain sequence: the user's own Python values, as given (no dtype inference; a cell may
    # itself be a list or a dict).
    values = list(column)
    missing = pd.Series(values, dtype=object).isna().to_numpy()
    return Cells(values, missing, None)


def _arrow_cells(column: Any) -> Cells:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    missing = pc.is_null(column, nan_is_null=True)
    strings = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    if pa.types.is_dictionary(kind):
        value_type = kind.value_type
        strings = pa.types.is_string(value_type) or pa.types.is_large_string(value_type)
    return Cells(column.to_pylist(), missing.to_numpy(zero_copy_only=False).astype(bool, copy=False), bool(strings))


def _arrow_text(column: Any) -> Any:
    """A column already held as Arrow text, as one ``large_string`` array; None for any other."""
    if isinstance(column, pd.Series):
        dtype = column.dtype
        if not (
            (isinstance(dtype, pd.StringDtype) and dtype.storage in ("pyarrow", "pyarrow_numpy"))
            or (isinstance(dtype, pd.ArrowDtype) and str(dtype.pyarrow_dtype) in ("string", "large_string"))
        ):
            return None
        column = column.array
    elif _library(column) == "polars":
        import polars as pl

        if not (column.dtype == pl.String or isinstance(column.dtype, (pl.Categorical, pl.Enum))):
            return None
        column = column.to_arrow()
    elif _library(column) != "pyarrow":
        return None
    import pyarrow as pa

    try:
        array = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        kind = array.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
            return None
        return array.cast(pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):  # not plain text after all: read it cell by cell
        return None


def _polars_cells(column: Any) -> Cells:
    import polars as pl

    dtype = column.dtype
    missing = column.is_null()
    if dtype.is_float():
        missing = missing | column.is_nan()
    strings = dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))
    return Cells(column.to_list(), missing.to_numpy(), bool(strings))
