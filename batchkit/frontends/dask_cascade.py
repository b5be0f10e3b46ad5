"""``ddf.claude.classify(..., cascade=[...])``: a model cascade over a Dask frame's partitions.

As for every call of ``ddf.claude`` (:mod:`batchkit.frontends.dask`), a partition's rows stay on
its worker. Stage 1 of each partition is rendered and keyed there and only its plan comes back;
this process runs every partition's stage-1 job (:func:`batchkit.engine.cascade_parts.run_stages`),
reads from each job which of the partition's rows go on, and sends their positions to the worker,
which renders stage 2 of those rows alone; and so on, stage after stage. A partition's stages send
the requests the same cascade sends on the computed frame (pandas), so either reuses what the
other paid for.

The result is lazy: each partition's cascade is attached on its worker from its stages' jobs,
read from the job store (by path, as the rest of the Dask front end reads its answers), and turned
into the pandas cascade's columns. Computing it again sends nothing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from batchkit.core.columns import Table
from batchkit.core.options import Options
from batchkit.costs.estimate import CostEstimate
from batchkit.engine import calls, cascade_parts
from batchkit.engine.cascade import Cascade, combine_estimates, escalation_shares, prepare_stage
from batchkit.engine.estimates import sum_estimates
from batchkit.errors import InvalidOptionError

from . import verbs
from .dask_parts import Tasks, default_ahead, distributed_client, meta

if TYPE_CHECKING:
    import dask.dataframe as dd
    from dask.delayed import Delayed

__all__ = ["estimate", "run"]


def run(ddf: dd.DataFrame, verb: verbs.Verb, cascade: Cascade, to_parquet: Any) -> dd.DataFrame:
    """Run ``cascade`` over every partition of ``ddf``, stage after stage, and return the lazy result:
    ``ddf`` with the columns of the pandas cascade (the answer's, ``{output}_model``, ``{output}_why``).

    Raises:
        InvalidOptionError: ``to_parquet=`` or ``max_cost=`` (each named with its fix); any error of
            the call's checks on the frame's columns — all before anything is computed or sent.
    """
    if to_parquet is not None:
        raise InvalidOptionError(
            "to_parquet= is not taken with cascade=: a cascade's result is lazy and reads its answers from the job "
            "store; write it yourself: ddf.claude.classify(..., cascade=[...]).to_parquet('dir/')",
            option="to_parquet",
        )
    empty = meta(ddf)
    prepare_stage(cascade, empty, 0)  # every check that needs no data: placeholders, output columns
    cascade_parts.check(cascade, estimate="ddf.claude.estimate(..., cascade=[...])", eager="ddf.compute()")
    workers = _for_workers(cascade)
    parts = _partitions(ddf)

    def stage_calls(k: int, reach: cascade_parts.Reach | None) -> Iterator[calls.Call]:
        which: Sequence[tuple[int, np.ndarray | None]] = (
            [(i, None) for i in range(len(parts))] if reach is None else reach
        )
        return _plans(workers, cascade.stage_options[k], k, [(parts[i], rows) for i, rows in which])

    jobs, store = cascade_parts.run_stages(cascade, stage_calls, source=_source(ddf, cascade), progress=verb.progress)
    jobs += [[] for _ in range(len(parts) - len(jobs))]
    path = str(Path(store.path).absolute()) if store is not None else ""
    answer = functools.partial(_answer_partition, cascade=workers, jobs=jobs, store=path)
    frame: Any = ddf  # map_partitions is untyped
    return cast(
        "dd.DataFrame",
        frame.map_partitions(
            answer, meta=_columns(empty, workers, [], {}), enforce_metadata=False, align_dataframes=False
        ),
    )


def estimate(ddf: dd.DataFrame, cascade: Cascade) -> CostEstimate:
    """Every stage of ``cascade`` priced over every partition (rendered on the workers, offline token
    counts, answers already in the store at $0), later stages weighted by the share of rows that
    reach them, as :func:`batchkit.engine.cascade.estimate` weights them."""
    empty = meta(ddf)
    prepare_stage(cascade, empty, 0)
    workers = _for_workers(cascade)
    parts = _partitions(ddf)
    stages = []
    for k, options in enumerate(cascade.stage_options):
        each = [calls.estimate(c, count=False) for c in _plans(workers, options, k, [(p, None) for p in parts])]
        stages.append(
            sum_estimates(each, len(each)) if each else calls.estimate(prepare_stage(cascade, empty, k), count=False)
        )
    shares, basis = escalation_shares(cascade)
    return combine_estimates(stages, shares, cascade.models, basis)


# --------------------------------------------------------------------------- the client side


def _partitions(ddf: dd.DataFrame) -> list[Delayed]:
    return list(ddf.to_delayed())  # type: ignore[no-untyped-call]


def _for_workers(cascade: Cascade) -> Cascade:
    """``cascade`` as a worker takes it: no client, store or calibration (picklable)."""

    def bare(options: Options) -> Options:
        return dataclasses.replace(
            options, run=dataclasses.replace(options.run, client=None, store=None, calibrate=None)
        )

    return dataclasses.replace(
        cascade, stage_options=tuple(bare(o) for o in cascade.stage_options), options=bare(cascade.options)
    )


def _plans(
    workers: Cascade, options: Options, k: int, parts: Sequence[tuple[Delayed, np.ndarray | None]]
) -> Iterator[calls.Call]:
    """Stage ``k``'s plan of each partition over its rows that reach it (None: every row), made on
    the workers a few at a time, in order, with this process's ``options`` put back in."""
    from dask.delayed import delayed

    plan = delayed(functools.partial(_plan_stage, cascade=workers, k=k), pure=True)
    tasks = Tasks(default_ahead(distributed_client()))
    try:
        for call in tasks.ordered(plan(part, rows) for part, rows in parts):
            yield dataclasses.replace(call, options=options)
    finally:
        tasks.close()


def _source(ddf: dd.DataFrame, cascade: Cascade) -> str:
    """A stable identity of the input and the cascade (same data and call → the same runs)."""
    from dask.base import tokenize

    what = (cascade.prompt, cascade.output, cascade.spec.to_json(), cascade.thresholds)
    return f"dask-cascade:{tokenize(ddf)}:{tokenize(*what, *(repr(o.params) for o in cascade.stage_options))}"


# --------------------------------------------------------------------------- the worker side


def _plan_stage(part: pd.DataFrame, rows: np.ndarray | None, *, cascade: Cascade, k: int) -> calls.Call:
    """On a worker: stage ``k``'s plan of the partition's ``rows`` (None: all), without the rows."""
    prepared = prepare_stage(cascade, part if rows is None else part.iloc[rows], k)
    table = prepared.table
    return dataclasses.replace(prepared, table=Table(list(table.names), len(table), None))


def _answer_partition(
    part: pd.DataFrame, *, cascade: Cascade, jobs: list[list[str]], store: str, partition_info: Any = None
) -> pd.DataFrame:
    """On a worker: the partition with its cascade's columns, attached from its stage jobs in the store."""
    ids = jobs[partition_info["number"]] if partition_info is not None else []
    if not ids:  # a partition without rows has no job
        return _columns(part, cascade, [None] * len(part), {})
    done = cascade_parts.attach(cascade, ids, store)
    return _columns(part, cascade, list(done.answers()), done.explained())


def _columns(
    part: pd.DataFrame, cascade: Cascade, answers: list[str | None], explained: dict[str, list[str | None]]
) -> pd.DataFrame:
    """``part`` with the answer's typed columns and ``{output}_model``/``{output}_why``, as pandas builds them."""
    out = part.copy(deep=False)
    for name, column in cascade.spec.frame(answers, part.index).items():
        out[name] = column.array
    for name in cascade.columns():
        out[name] = pd.array(explained.get(name, [None] * len(part)), dtype="string")
    return out
