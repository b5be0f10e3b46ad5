"""The processing queue as the progress views show it: the store's batches beside the workspace's view.

:mod:`batchkit.backends.queue` keeps, per workspace, what this process knows of the API's
processing queue (its limit, the requests in flight, the creates held for room); it may not read
the store. This module joins the two for a view: of the batches of some jobs (one job, or every
partition of a run), how many are

* **waiting** — planned and written down, not created yet (held for room, or next in line);
* **in flight** — created and not ended (their requests occupy the queue);
* **done** — ended (collected or not), refused or abandoned;

and the limit with where it came from (``setting``: ``queue_limit=``; ``learned``: from a refusal).

>>> print(snapshot(store, ["job_1"], view=job.queue).text())        # doctest: +SKIP
1 waiting (500 requests) · 1 in flight (500 requests) · 3 done; limit 1,000 requests (learned from a refusal)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchkit.backends.queue import LimitSource, QueueState, QueueView
from batchkit.core.states import SENT_UNITS, SendMode, UnitState

__all__ = ["QueueSnapshot", "queue_of", "snapshot"]

_IN_FLIGHT = frozenset(SENT_UNITS) - {UnitState.ENDED}
"""Units created and not ended: their requests occupy the queue. Every state neither this nor
``submitting`` (waiting) is done: ended, collected, refused, abandoned or lost."""


@dataclass(frozen=True)
class QueueSnapshot:
    """Some jobs' batches in the workspace's processing queue at one moment. Plain data."""

    waiting_batches: int = 0
    waiting: int = 0
    """Requests of batches planned and not created yet."""
    in_flight_batches: int = 0
    in_flight: int = 0
    """Requests of batches created and not ended."""
    done_batches: int = 0
    done: int = 0
    """Requests of batches ended (or refused, or abandoned)."""
    limit: int | None = None
    """Batch requests the workspace's queue may hold; None while unknown."""
    source: LimitSource | None = None
    """``"setting"`` (``queue_limit=``) or ``"learned"`` (from a refusal); None while unknown."""
    workspace_in_flight: int | None = None
    """Requests the workspace's view counts in flight, every job of the process included (None: no view)."""
    refused: int = 0
    """Creates the API refused for want of room, in this process (the workspace's)."""

    @property
    def batches(self) -> int:
        return self.waiting_batches + self.in_flight_batches + self.done_batches

    def limit_text(self) -> str:
        """``"200,000 requests (setting: queue_limit=)"``, ``"… (learned from a refusal)"`` or unknown."""
        return QueueState(self.limit, self.source, 0, 0, 0, 0, 0, 0.0).limit_text

    def text(self) -> str:
        """One line: waiting · in flight · done; the limit and where it came from.

        >>> print(QueueSnapshot(1, 500, 1, 500, 3, 1_500, 1_000, "learned").text())
        1 waiting (500 requests) · 1 in flight (500 requests) · 3 done; limit 1,000 requests (learned from a refusal)
        """
        parts = [
            f"{self.waiting_batches:,} waiting" + (f" ({self.waiting:,} requests)" if self.waiting_batches else ""),
            f"{self.in_flight_batches:,} in flight"
            + (f" ({self.in_flight:,} requests)" if self.in_flight_batches else ""),
            f"{self.done_batches:,} done",
        ]
        return " · ".join(parts) + f"; limit {self.limit_text()}"


def queue_of(
    batches: Iterable[Mapping[str, Any]], view: QueueView | None = None, *, setting: int | None = None
) -> QueueSnapshot:
    """The queue numbers of some batch records (rows of ``Store.batches()``), with ``view``'s limit.

    Only Message Batches count (units sent one by one, realtime, never enter the queue).
    ``setting``: a ``queue_limit=`` the jobs were given, shown while no view has one.
    """
    counts = {"waiting": [0, 0], "in_flight": [0, 0], "done": [0, 0]}
    for b in batches:
        if b.get("mode", SendMode.BATCH) != SendMode.BATCH:
            continue
        state = b["state"]
        where = "waiting" if state == UnitState.SUBMITTING else "in_flight" if state in _IN_FLIGHT else "done"
        counts[where][0] += 1
        counts[where][1] += int(b["n_requests"])
    state_of = view.state() if view is not None else None
    limit: int | None = state_of.limit if state_of is not None else None
    source: LimitSource | None = state_of.source if state_of is not None else None
    if limit is None and setting is not None:
        limit, source = int(setting), "setting"
    return QueueSnapshot(
        counts["waiting"][0],
        counts["waiting"][1],
        counts["in_flight"][0],
        counts["in_flight"][1],
        counts["done"][0],
        counts["done"][1],
        limit,
        source,
        workspace_in_flight=state_of.in_flight if state_of is not None else None,
        refused=state_of.refused if state_of is not None else 0,
    )


def snapshot(
    store: Any, job_ids: Sequence[str] | None = None, *, view: QueueView | None = None, setting: int | None = None
) -> QueueSnapshot:
    """The processing queue of ``job_ids``' batches (default: every batch in ``store``).

    Args:
        store: a :class:`batchkit.Store`.
        job_ids: the jobs to count (e.g. a run's partitions); None: all.
        view: the workspace's :class:`~batchkit.backends.queue.QueueView` (its limit, and the
            requests in flight across the process); e.g. ``job.backend.queue``.
        setting: a ``queue_limit=`` to show while the view knows none.
    """
    if job_ids is None:
        rows = store.batches()
    else:
        wanted = set(job_ids)
        rows = (
            [b for b in store.batches() if b["job_id"] in wanted]
            if len(wanted) > 1
            else (store.batches(job_id=next(iter(wanted))) if wanted else [])
        )
    return queue_of(rows, view, setting=setting)
