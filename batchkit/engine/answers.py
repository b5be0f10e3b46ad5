"""A partition's answers, read back by request key: no API call, bounded memory.

What every recomputation of a partitioned run reads (a Dask worker, a second ``collect()`` of a
lazy plan, ``batchkit results`` of a run): each row's answer text and status, looked up in the
store's on-disk index by the row's request key and taken from the stored result columns a
results table at a time — one fancy index per table, never a Python loop per row.
:func:`per_row` is the same step for a job the run has just waited for (its outcomes already in
memory); :func:`read_answers` opens the store read-only when it is not open in this process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from batchkit.core.results import ANSWERED, CODE_STATUS, STATUS_CODE
from batchkit.core.states import RowStatus
from batchkit.errors import StoreNotFoundError
from batchkit.stores.results import unpack
from batchkit.stores.store import Store

__all__ = ["PartAnswers", "PartOutput", "per_row", "read_answers"]

_SUCCEEDED = STATUS_CODE[RowStatus.SUCCEEDED]
_ANSWERED_CODES = tuple(sorted(ANSWERED))
# Status of each code as an array, so a partition's statuses are one fancy index, not a loop.
_STATUS_OF = np.full(256, "pending", dtype=object)
for _code, _status in CODE_STATUS.items():
    _STATUS_OF[_code] = _status


@dataclass(frozen=True)
class PartAnswers:
    """Answers looked up by request key (:func:`read_answers`), one entry per row."""

    answers: list[str | None]
    """The usable answer text (None: no usable answer)."""
    statuses: list[str]
    """``succeeded``/``truncated``/``errored``/``expired``/``canceled``/``skipped``/``invalid_output``,
    or ``pending`` for a request with no result stored yet."""


@dataclass(frozen=True)
class PartOutput:
    """One partition's outcome, handed to ``on_output`` in partition order."""

    part: int
    """0-based, input order."""
    job_id: str
    """The partition's job."""
    n_rows: int
    answers: list[str | None]
    """Per row: the usable answer text (None: no usable answer)."""
    statuses: list[str]
    """Per row: succeeded/truncated/errored/expired/canceled/skipped/invalid_output."""


# --------------------------------------------------------------------------- reading answers by key


def _values(store: Store, row_keys: Sequence[str | None], *, structured: bool, canceled: bool = False) -> PartAnswers:
    """Per-row answers and statuses of ``row_keys`` from the store's on-disk index."""
    positions_of_rows, uniques = pd.factorize(np.array(row_keys, dtype=object))  # None → -1
    row_pos = positions_of_rows.astype(np.int64, copy=False)
    keys: list[str] = uniques.tolist()
    if "" in keys:  # an empty key is a skipped row too
        row_pos[row_pos == keys.index("")] = -1
    codes, positions, results_ids, _ = unpack(store.lookup(keys))
    return per_row(store, row_pos, codes, positions, results_ids, structured=structured, canceled=canceled)


def per_row(
    store: Store,
    row_pos: np.ndarray,
    codes: np.ndarray,
    positions: np.ndarray,
    results_ids: np.ndarray,
    *,
    structured: bool,
    canceled: bool,
) -> PartAnswers:
    """Per-row answers and statuses from the outcomes of the distinct keys (-1 in ``row_pos``: skipped)."""
    usable = np.isin(codes, (_SUCCEEDED,) if structured else _ANSWERED_CODES)
    answers = np.full(len(codes) + 1, None, dtype=object)  # the last: skipped rows (-1)
    for results_id in np.unique(results_ids[usable]):
        rows = np.flatnonzero(usable & (results_ids == results_id))
        cols = store.columns(int(results_id))
        values = np.empty(len(cols), dtype=object)
        values[:] = cols.answers
        answers[rows] = values[positions[rows]]
    statuses = np.append(_STATUS_OF[codes], RowStatus.SKIPPED.value)  # plain strings in the rows
    if canceled:
        statuses[:-1][codes == 0] = RowStatus.CANCELED.value
    return PartAnswers(answers[row_pos].tolist(), statuses[row_pos].tolist())


_READERS: dict[str, Store] = {}
_READERS_LOCK = threading.Lock()


def _reader(store: Store | str | os.PathLike[str]) -> Store:
    """The store to read answers from: the given one, this process's open one for the path, else one
    opened read-only (kept for the next partition)."""
    if isinstance(store, Store):
        return store
    path = Path(store).expanduser()
    if not path.exists():
        raise StoreNotFoundError(
            f"no job store at {path}: read_answers reads a store a run wrote and never creates one. "
            "Pass the store= the run used (run.store.path).",
            path=path,
        )
    found = Store.opened(path)
    if found is not None:
        return found
    key = str(path.resolve())
    with _READERS_LOCK:
        found = _READERS.get(key)
        if found is None:
            found = _READERS[key] = Store(path, create=False, readonly=True)
        return found


def read_answers(
    store: Store | str | os.PathLike[str], row_keys: Sequence[str | None], *, structured: bool
) -> PartAnswers:
    """Each row's answer and status, looked up by its request key: no API call, bounded memory.

    Opens the store read-only (never creates it); what Dask workers and any recomputed result read.

    Args:
        store: the run's store (a :class:`~batchkit.stores.store.Store` or its path).
        row_keys: each row's request key (None for a row that was skipped).
        structured: the call was ``classify``/``extract``: only ``succeeded`` answers are usable
            (an answer that failed the schema is ``invalid_output``).

    Raises:
        StoreNotFoundError: no store at that path.

    >>> read_answers(run.store.path, keys, structured=False).answers[:2]   # doctest: +SKIP
    ['positive', None]
    """
    return _values(_reader(store), row_keys, structured=structured)
