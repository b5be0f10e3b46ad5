"""The Dask front end's work on a frame's partitions: its empty meta, and computing tasks on the
partitions a bounded number at a time, on the user's ``distributed`` client or Dask's default
scheduler. Shared by ``ddf.claude``'s calls (:mod:`batchkit.frontends.dask`) and its cascades
(:mod:`batchkit.frontends.dask_cascade`); moved out of ``dask.py`` unchanged."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

if TYPE_CHECKING:
    import dask.dataframe as dd
    from dask.delayed import Delayed

__all__ = ["Tasks", "default_ahead", "distributed_client", "meta"]


def meta(ddf: dd.DataFrame) -> pd.DataFrame:
    """The frame's empty pandas meta (its columns, dtypes and index type), through Dask's public API."""
    from dask.dataframe.dispatch import make_meta

    return cast(pd.DataFrame, make_meta(ddf))  # type: ignore[no-untyped-call]


def distributed_client() -> Any:
    """The current ``distributed.Client``, if the user made one (never imports distributed)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        return None


class Tasks:
    """Computes Dask tasks a bounded number at a time, on the user's distributed client if there
    is one, else on Dask's default scheduler (from a small thread pool)."""

    def __init__(self, ahead: int) -> None:
        self.client = distributed_client()
        self.ahead = max(1, ahead)
        self._pool: Any = None

    def submit(self, task: Delayed) -> Any:
        if self.client is not None:
            return self.client.compute(task)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(
                max_workers=min(self.ahead, os.cpu_count() or 1), thread_name_prefix="batchkit-dask"
            )
        from dask.base import compute

        return self._pool.submit(lambda: compute(task)[0])  # type: ignore[no-untyped-call]

    def ordered(self, tasks: Iterator[Delayed]) -> Iterator[Any]:
        """The tasks' results in order, with at most :attr:`ahead` computing or held at once."""
        pending: deque[Any] = deque()
        try:
            for task in tasks:
                pending.append(self.submit(task))
                if len(pending) >= self.ahead:
                    yield self._take(pending.popleft())
            while pending:
                yield self._take(pending.popleft())
        finally:
            for future in pending:
                future.cancel()

    @staticmethod
    def _take(future: Any) -> Any:
        result = future.result()
        if hasattr(future, "release"):
            future.release()  # a distributed future: let the worker drop its copy
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def default_ahead(client: Any) -> int:
    """Partitions planned ahead of the run: one per worker thread (at least 2)."""
    if client is not None:
        with contextlib.suppress(Exception):
            return max(2, int(sum(client.nthreads().values())))
    return max(2, os.cpu_count() or 1)
