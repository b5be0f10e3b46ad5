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

:func:`run_stages` is the stage loop alone, for a front end that prepares a partition's stage
elsewhere (Dask renders each on the worker that holds the partition, given the rows that reach
the stage); :func:`run` is that loop over partitions this process reads (a Polars LazyFrame).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from batchkit.core.columns import as_table
from batchkit.errors import InvalidOptionError
from batchkit.stores.store import Store

from .answers import PartOutput
from .calls import Call
from .cascade import Cascade, prepare_stage, take_rows
from .cascade_job import CascadeJob
from .jobs import Job
from .runs import run_partitions

__all__ = ["Reach", "attach", "check", "prepare_stage", "run", "run_stages"]

Reach = list[tuple[int, np.ndarray]]
"""The partitions a stage asks (0-based, in order), each with its rows (positions within it) that reach
the stage."""


def check(cascade: Cascade, *, estimate: str, eager: str) -> None:
    """Refuse what a cascade over partitions cannot do, before anything is read or sent. ``estimate``
    and ``eager`` name the front end's fixes: its estimate of every stage, and its eager call.

    Raises:
        InvalidOptionError: ``max_cost=``, which needs every stage priced over every row first.
    """
    if cascade.options.run.max_cost is not None:
        raise InvalidOptionError(
            f"max_cost= on a cascade over partitions would need every row read and priced before stage 1; estimate "
            f"it first ({estimate}), then run without max_cost=, or {eager} and pass max_cost= to the eager call",
            option="max_cost",
        )


def run(
    cascade: Cascade, parts: Callable[[], Iterable[Any]], *, source: str, progress: bool | None
) -> Iterator[tuple[Any, CascadeJob]]:
    """Run ``cascade`` over the partitions ``parts()`` yields (called once per stage and once more:
    the same partitions in the same order each time), stage after stage; then yield each partition
    with its cascade. ``source`` identifies the input and the call, as for a partitioned run."""

    def stage_calls(k: int, reach: Reach | None) -> Iterator[Call]:
        if reach is None:
            return (prepare_stage(cascade, part, 0) for part in parts())
        rows = dict(reach)
        return (
            prepare_stage(cascade, take_rows(as_table(part), rows[i]), k) for i, part in enumerate(parts()) if i in rows
        )

    jobs, store = run_stages(cascade, stage_calls, source=source, progress=progress)
    for i, part in enumerate(parts()):
        yield part, attach(cascade, jobs[i], store)


def run_stages(
    cascade: Cascade,
    stage_calls: Callable[[int, Reach | None], Iterable[Call]],
    *,
    source: str,
    progress: bool | None,
) -> tuple[list[list[str]], Store | None]:
    """Run ``cascade``'s stages one after another, each a partitioned run of ``stage_calls(k, reach)``:
    stage ``k``'s calls (0-based), in partition order, of the partitions ``reach`` names, each over
    the rows of it that reach the stage (``reach`` is None for stage 1: every partition, every row).

    Returns:
        Each partition's stage jobs (ids, in stage order), and the store they are in (None when
        there was no partition).
    """
    jobs: list[list[str]] = []
    store: Store | None = None
    reach: Reach | None = None
    for k in range(len(cascade.stage_options)):
        order = None if reach is None else [i for i, _ in reach]

        def record(out: PartOutput, order: list[int] | None = order) -> None:
            i = out.part if order is None else order[out.part]
            jobs.extend([] for _ in range(i + 1 - len(jobs)))
            jobs[i].append(out.job_id)

        done = run_partitions(
            stage_calls(k, reach), source=f"{source}:stage{k + 1}", on_output=record, wait=True, progress=progress
        )
        store = done.store
        if k == len(cascade.stage_options) - 1:
            break  # the last model sends nothing on
        reach = [
            (i, rows)
            for i, ids in enumerate(jobs)
            if len(ids) == k + 1 and len(rows := attach(cascade, ids, store).stages[-1].escalated())
        ]
        if not reach:
            break
    return jobs, store


def attach(cascade: Cascade, job_ids: list[str], store: Store | str | os.PathLike[str] | None) -> CascadeJob:
    """One partition's cascade, from its stage jobs (ids, in stage order, at least stage 1's) in ``store``."""
    client = cascade.options.run.client
    return CascadeJob.attach([Job.load(j, store=store, client=client) for j in job_ids], cascade.thresholds)
