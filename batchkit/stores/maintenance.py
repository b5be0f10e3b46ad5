"""Removing jobs from the job store: :func:`forget` one job, :func:`prune` the old ones.

The same as ``batchkit forget JOB`` and ``batchkit prune --older-than 30d``, and as
:meth:`batchkit.Store.forget` / :meth:`batchkit.Store.prune` on an open store. What goes, what
stays for the jobs that remain, and what "in flight" means: :mod:`batchkit.stores.prune`.
"""

from __future__ import annotations

import datetime as dt
import os

from .prune import Removal
from .store import Store

__all__ = ["Removal", "forget", "prune"]


def forget(job_id: str, *, store: Store | str | os.PathLike[str] | None = None, force: bool = False) -> Removal:
    """Remove one job and what it holds from the store, then shrink the file.

    >>> print(batchkit.forget("job_1a2b3c"))   # doctest: +SKIP

    Answers another remaining job uses are kept. A job with batches still in flight is refused
    (:class:`~batchkit.errors.JobStateError`) unless ``force=True``: those batches keep running
    at the API and their answers are no longer collected. See :meth:`batchkit.Store.forget`.
    """
    return Store.resolve(store, create=False).forget(job_id, force=force)


def prune(
    *,
    older_than: str | dt.timedelta,
    store: Store | str | os.PathLike[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> Removal:
    """Remove every job created more than ``older_than`` ago (``"30d"``, ``"12h"``, ``"90m"``, a
    ``timedelta``), as :func:`forget` does one; ``dry_run=True`` only says what would go.

    >>> print(batchkit.prune(older_than="30d", dry_run=True))   # doctest: +SKIP
    """
    return Store.resolve(store, create=False).prune(older_than=older_than, force=force, dry_run=dry_run)
