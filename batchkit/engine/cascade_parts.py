"""A model cascade over partitions: a lazy plan's rows, larger than memory, stage after stage.

Stage 1 is a partitioned run (:func:`batchkit.engine.runs.run_partitions`) of every partition with
the first model; stage 2 a partitioned run of each partition's escalated rows with the second
model (a partition whose rows all stayed adds no job), and so on. Each stage reads the input
again, a partition at a time, and finds which of a partition's rows reach it from that
partition's jobs of the stages before, read back from the store (:meth:`CascadeJob.attach`).
Then every partition is read a last time and handed back with its :class:`CascadeJob`, whose
answers, models and reasons the front end turns into its own columns.

A partition's stages send the requests the same cascade sends on an in-memory frame
(:func:`batchkit.engine.cascade.run`): keyed by their content, so either reuses what the other
paid for, and collecting the plan again finds every stage's jobs in the store and sends nothing.
Memory holds a few partitions and, per partition, its stages' job ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from batchkit.core.columns import as_table
from batchkit.errors import InvalidOptionError
from batchkit.stores.store import Store

from .answers import PartOutput
from .calls import Call
from .cascade import Cascade, prepare_stage, take_rows
from .cascade_job import CascadeJob
from .jobs import Job
from .runs import run_partitions

__all__ = ["check", "prepare_stage", "run"]


def check(cascade: Cascade) -> None:
    """Refuse what a cascade over partitions cannot do, before anything is read or sent.

    Raises:
        InvalidOptionError: ``max_cost=``, which needs every stage priced over every row first.
    """
    if cascade.options.run.max_cost is not None:
        raise InvalidOptionError(
            "max_cost= on a cascade over a lazy plan would need every row read and priced before stage 1; estimate "
            "it on the collected rows first (lf.collect().claude.estimate(..., cascade=[...])), then collect without "
            "max_cost=, or collect() and pass max_cost= to the eager call",
            option="max_cost",
        )


def run(
    cascade: Cascade, parts: Callable[[], Iterable[Any]], *, source: str, progress: bool | None
) -> Iterator[tuple[Any, CascadeJob]]:
    """Run ``cascade`` over the partitions ``parts()`` yields (called once per stage and once more:
    the same partitions in the same order each time), stage after stage; then yield each partition
    with its cascade. ``source`` identifies the input and the call, as for a partitioned run."""
    jobs: list[list[str]] = []
    store: Store | None = None
    for k in range(len(cascade.stage_options)):
        order: list[int] = []

        def record(out: PartOutput, order: list[int] = order) -> None:
            jobs[order[out.part]].append(out.job_id)

        done = run_partitions(
            _stage_calls(cascade, k, parts(), jobs, order, store),
            source=f"{source}:stage{k + 1}",
            on_output=record,
            wait=True,
            progress=progress,
        )
        store = done.store
        if not order:
            break
    for i, part in enumerate(parts()):
        yield part, _attach(cascade, jobs[i], store)


def _stage_calls(
    cascade: Cascade, k: int, parts: Iterable[Any], jobs: list[list[str]], order: list[int], store: Store | None
) -> Iterator[Call]:
    """Stage ``k``'s call of each partition that has rows reaching it (``order``: which partitions)."""
    for i, part in enumerate(parts):
        if k == 0:
            jobs.append([])
            order.append(i)
            yield prepare_stage(cascade, part, 0)
            continue
        if len(jobs[i]) < k:  # no row of this partition reached the stage before
            continue
        rows = _attach(cascade, jobs[i], store).stages[-1].escalated()
        if len(rows):
            order.append(i)
            yield prepare_stage(cascade, take_rows(as_table(part), rows), k)


def _attach(cascade: Cascade, job_ids: list[str], store: Store | None) -> CascadeJob:
    client = cascade.options.run.client
    return CascadeJob.attach([Job.load(j, store=store, client=client) for j in job_ids], cascade.thresholds)
