"""``ddf.claude``: batchkit on Dask DataFrames, one job per partition.

``import batchkit`` registers ``claude`` on :class:`dask.dataframe.DataFrame` through Dask's own
accessor API — at once if ``dask.dataframe`` is already imported, else the moment it is (a small
import hook; ``import batchkit`` never imports Dask itself). The verbs and options are those of
the pandas accessor::

    import batchkit, dask.dataframe as dd
    ddf = dd.read_parquet("tickets/")
    out = ddf.claude.batch("Summarise this ticket: {body}", output="summary", max_tokens=200)
    out.to_parquet("summaries/")                          # or: out.head(), out.compute(), …
    ddf["body"].claude.batch("Summarise: {}")             # a Dask Series: {} is the value

Where the work happens:

* **Rendering and keying run where the partitions live.** Each partition is rendered into request
  bodies and keyed on the workers (:func:`batchkit.engine.calls.prepare`: pure, no client, no store);
  only the plan (keys and request bodies) comes back, never the partition's data.
* **The client process alone talks to the API and the store.** It pulls the planned partitions a
  few at a time (bounded memory) and hands them to :func:`batchkit.engine.runs.run_partitions`, which
  runs one job per partition under one view of the workspace's rate and queue limits.
* **The result is read from the store by key.** ``batch``/``classify``/``extract`` return a lazy
  Dask DataFrame whose partitions are rendered and keyed again on the workers and whose answers
  are read from the job store (opened read-only). Computing it twice, ``head()``, or running the
  same call again after the client died sends nothing that was answered or is in flight.
* **Or straight to Parquet.** ``to_parquet="dir/"`` writes each partition (its columns and its
  answers) as soon as it is answered, and returns ``dd.read_parquet("dir/")``: the answers travel
  from the client to the workers, so the workers never need the store.

Which to use: a cluster on this machine (``LocalCluster``, the threaded scheduler) shares the disk,
so the lazy result works as is. A remote cluster's workers must reach the store's file on shared
storage (``store="/shared/jobs.sqlite3"``) to read the lazy result; without that, pass
``to_parquet=`` with a path the workers can write.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from batchkit.core.columns import Table
from batchkit.core.options import Options
from batchkit.core.states import Mode, SendMode
from batchkit.core.structured import OutputSpec
from batchkit.costs.pricing import CostEstimate
from batchkit.engine import calls
from batchkit.engine.answers import PartOutput, read_answers
from batchkit.engine.estimates import sum_estimates
from batchkit.engine.partfiles import PartWriter, check_parts_dir, ready_parts_dir
from batchkit.engine.runs import Run, run_partitions

from ..errors import InvalidOptionError
from . import dask_cascade, verbs
from .dask_parts import Tasks as _Tasks
from .dask_parts import default_ahead as _default_ahead
from .dask_parts import distributed_client as _distributed_client
from .dask_parts import meta as _meta

if TYPE_CHECKING:
    import dask.dataframe as dd
    from dask.delayed import Delayed

__all__ = ["DaskFrameAccessor", "DaskSeriesAccessor", "PartitionCall", "register"]

Prompt = str | Callable[[pd.Series], str | None]


# --------------------------------------------------------------------------- the worker side (pure)


@dataclass(frozen=True)
class PartitionCall:
    """Everything a worker needs to render, key and answer one partition. Picklable: no client,
    no store connection — only the store's path, for reading answers back.

    Attributes:
        prompt: the template or the callable ``row -> str``.
        output: the (first) output column.
        kind: ``text``, ``classify`` or ``extract``.
        options: the call's checked options, without client, store or calibration.
        output_spec: the structured output of ``classify``/``extract``.
        store: the job store's absolute path.
        positional: the column a bare ``{}`` reads (none for a frame).
    """

    prompt: Prompt
    output: str
    kind: str
    options: Options
    output_spec: OutputSpec | None
    store: str
    positional: Hashable = None

    def prepare(self, part: pd.DataFrame) -> calls.Call:
        """Render and key one partition (pure)."""
        return calls.prepare(
            part,
            self.prompt,
            output=self.output,
            options=self.options,
            kind=self.kind,
            output_spec=self.output_spec,
            positional=self.positional,
        )

    def with_answers(self, part: pd.DataFrame, answers: Sequence[str | None]) -> pd.DataFrame:
        """``part`` with the typed output column(s) built from its rows' answers, as the pandas
        accessor builds them: ``string`` for text, Categorical for ``classify``, nullable typed
        columns for ``extract``."""
        out = part.copy(deep=False)
        if self.output_spec is None:
            out[self.output] = pd.array(list(answers), dtype="string")
            return out
        for name, column in self.output_spec.frame(list(answers), part.index).items():
            out[name] = column.array
        return out


def _plan_partition(part: pd.DataFrame, call: PartitionCall) -> calls.Call:
    """On a worker: the partition's plan, without the partition's rows."""
    prepared = call.prepare(part)
    rows = prepared.table  # names and length only: the rows stay on the worker
    return dataclasses.replace(prepared, table=Table(list(rows.names), len(rows), None))


def _answer_partition(part: pd.DataFrame, call: PartitionCall) -> pd.DataFrame:
    """On a worker: the partition with its answers, read from the store by key (no API call)."""
    keys = call.prepare(part).plan.row_keys
    found = read_answers(call.store, keys, structured=call.output_spec is not None)
    return call.with_answers(part, found.answers)


def _write_partition(part: pd.DataFrame, call: PartitionCall, answers: Sequence[str | None], path: str) -> int:
    """On a worker: write the partition with the answers the client sent; returns its rows."""
    if len(part) != len(answers):
        raise RuntimeError(  # the input changed between planning and writing (not deterministic)
            f"this partition has {len(part):,} rows but was planned with {len(answers):,}; the input must "
            f"read the same rows every time it is computed"
        )
    call.with_answers(part, answers).to_parquet(path)
    return len(part)


# --------------------------------------------------------------------------- the client side


@dataclass
class _Prepared:
    """A call checked on the client, ready to run over the partitions."""

    ddf: dd.DataFrame
    call: PartitionCall
    options: Options
    """The call's options as the client process uses them (its own client, the store)."""
    source: str

    def partitions(self) -> list[Delayed]:
        return list(self.ddf.to_delayed())  # type: ignore[no-untyped-call]

    def plans(self, tasks: _Tasks) -> Iterator[calls.Call]:
        """Each partition's plan in order, made on the workers, with the client's options put in."""
        from dask.delayed import delayed

        plan = delayed(functools.partial(_plan_partition, call=self.call), pure=True)
        for prepared in tasks.ordered(plan(part) for part in self.partitions()):
            yield dataclasses.replace(prepared, options=self.options)

    def answers(self) -> dd.DataFrame:
        """The lazy result: each partition with its answers read from the store by key."""
        meta = self.call.with_answers(_meta(self.ddf), [])
        frame: Any = self.ddf  # map_partitions is untyped
        return cast(
            "dd.DataFrame",
            frame.map_partitions(
                functools.partial(_answer_partition, call=self.call),
                meta=meta,
                enforce_metadata=False,
                align_dataframes=False,
            ),
        )


def _source(ddf: dd.DataFrame, call: PartitionCall) -> str:
    """A stable identity of the input and the call (same data and call → same run)."""
    from dask.base import tokenize

    spec = call.output_spec.to_json() if call.output_spec is not None else None
    what = (call.prompt, call.output, call.kind, repr(call.options.params), spec, call.positional)
    return f"dask:{tokenize(ddf)}:{tokenize(*what)}"


def _prepare(
    ddf: dd.DataFrame, verb: verbs.Verb, *, need_client: bool = True, positional: Hashable = None
) -> _Prepared:
    """Check a call against the frame's columns (its empty meta frame), resolve the client and the
    store — everything that can be wrong is raised here, before anything is computed or sent."""
    verb.prepare(_meta(ddf), positional=positional)
    options = calls.resolve(verb.options, client=need_client)
    path = Path(options.run.store.path).absolute()
    worker_run = dataclasses.replace(options.run, client=None, store=None, calibrate=None)
    call = PartitionCall(
        verb.prompt,
        verb.output,
        verb.kind,
        dataclasses.replace(options, run=worker_run),
        verb.spec,
        str(path),
        positional,
    )
    return _Prepared(ddf, call, options, _source(ddf, call))


# --------------------------------------------------------------------------- to_parquet


def _parquet_writer(prepared: _Prepared, path: Path, tasks: _Tasks) -> PartWriter:
    """``on_output`` of a run with ``to_parquet=``: writes each answered partition on the workers."""
    from dask.delayed import delayed

    parts = prepared.partitions()

    def write(out: PartOutput, file: Path) -> Any:
        task = functools.partial(_write_partition, call=prepared.call, answers=out.answers, path=str(file))
        return tasks.submit(delayed(task, pure=False)(parts[out.part]))  # not pure: its key would hash every answer

    return PartWriter(path, write, ahead=tasks.ahead)


# --------------------------------------------------------------------------- the accessor


class DaskFrameAccessor:
    """``ddf.claude``: send every row of a Dask DataFrame to Claude, one job per partition.

    The verbs and options are those of ``df.claude`` (see :mod:`batchkit.frontends.pandas`), plus
    ``to_parquet=`` on ``batch``/``classify``/``extract``. Stateless: it keeps the frame only.

    >>> out = ddf.claude.batch("Sentiment of: {review}", output="sentiment")  # doctest: +SKIP
    """

    def __init__(self, ddf: dd.DataFrame) -> None:
        self._ddf = ddf

    def submit(self, prompt: Prompt, *, output: str = "response", **kwargs: Any) -> Run:
        """Start the run and return it at once (:class:`batchkit.engine.runs.Run`); the partitions are
        planned on the workers and sent from this process in the background.

        Takes the arguments of :meth:`batch` (but not ``to_parquet``). Running the same call on
        the same data again returns the same run with no API call for what is answered or in flight.
        """
        return _start(_prepare(self._ddf, verbs.submit(prompt, output=output, kwargs=kwargs)), wait=False)

    def batch(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        to_parquet: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dd.DataFrame:
        """Run one prompt per row as Message Batches (one job per partition) and add the answers.

        Blocks until every partition is answered, showing progress. See the pandas accessor for the
        options; ``max_cost=`` is checked against the estimate of the whole frame, before any paid call.

        Args:
            to_parquet: a folder: each partition is written there with its answers as soon as it
                is answered, and the result is ``dd.read_parquet(to_parquet)``. Without it the
                result is lazy and reads its answers from the job store by key.

        Returns:
            A Dask DataFrame: the original columns plus ``output`` (``string``; NA where a row
            has no answer).
        """
        return self._run(verbs.batch(prompt, output=output, kwargs=kwargs), to_parquet)

    def estimate(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        labels: Sequence[str] | None = None,
        schema: Any = None,
        **kwargs: Any,
    ) -> CostEstimate:
        """Tokens and dollars of :meth:`batch` (or ``classify`` with ``labels=``, ``extract`` with
        ``schema=``) over every partition — free: partitions are rendered on the workers and
        priced with offline token counts, requests already answered in the store cost 0.

        Takes the arguments of pandas' ``df.claude.estimate`` but ``sample`` (no request is
        counted with ``count_tokens``).
        """
        verb = verbs.estimate(
            prompt,
            output=output,
            typical_output_tokens=typical_output_tokens,
            hit_rate=hit_rate,
            labels=labels,
            schema=schema,
            kwargs=kwargs,
        )
        if verb.cascade is not None:
            return dask_cascade.estimate(self._ddf, verb.cascade)
        return _estimate(_prepare(self._ddf, verb, need_client=False))

    def classify(
        self,
        prompt: Prompt,
        labels: Sequence[str],
        *,
        output: str = "classification",
        multi: bool = False,
        reasoning: bool = False,
        max_invalid_retries: int = 1,
        max_tokens: int = 256,
        to_parquet: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dd.DataFrame:
        """Classify every row into ``labels``: a Categorical column that can hold nothing else.

        As ``df.claude.classify``; ``to_parquet=`` as for :meth:`batch`. ``cascade=[...]`` runs stage
        after stage over the partitions (:mod:`batchkit.frontends.dask_cascade`), without ``to_parquet=``.
        """
        verb = verbs.classify(
            prompt,
            labels,
            output=output,
            multi=multi,
            reasoning=reasoning,
            max_invalid_retries=max_invalid_retries,
            max_tokens=max_tokens,
            kwargs=kwargs,
        )
        return self._run(verb, to_parquet)

    def extract(
        self,
        prompt: Prompt,
        schema: Any,
        *,
        prefix: str = "",
        max_invalid_retries: int = 1,
        max_tokens: int = 1024,
        to_parquet: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> dd.DataFrame:
        """Extract typed fields from every row: one nullable typed column per field of ``schema``.

        As ``df.claude.extract``; ``to_parquet=`` as for :meth:`batch`.
        """
        verb = verbs.extract(
            prompt, schema, prefix=prefix, max_invalid_retries=max_invalid_retries, max_tokens=max_tokens, kwargs=kwargs
        )
        return self._run(verb, to_parquet)

    def _run(self, verb: verbs.Verb, to_parquet: str | os.PathLike[str] | None) -> dd.DataFrame:
        if verb.cascade is not None:  # stage after stage, each partition's stage planned on its worker
            return dask_cascade.run(self._ddf, verb, verb.cascade, to_parquet)
        prepared = _prepare(self._ddf, verb)
        path = check_parts_dir(to_parquet) if to_parquet is not None else None
        _check_budget(prepared)
        if path is None:
            _start(prepared, wait=True)  # with progress, as the call's progress= says
            return prepared.answers()
        import dask.dataframe as dd

        ready_parts_dir(path, self._ddf.npartitions)
        tasks = _Tasks(_default_ahead(_distributed_client()))
        writer = _parquet_writer(prepared, path, tasks)
        try:
            run_partitions(prepared.plans(tasks), source=prepared.source, on_output=writer, wait=True)
            writer.finish()
        finally:
            tasks.close()
        return cast("dd.DataFrame", dd.read_parquet(str(path)))


class DaskSeriesAccessor:
    """``series.claude`` on a Dask Series: ``{}`` in the prompt is the Series' value.

    ``output=`` names the result (and the jobs' output); by default it is the Series' own name
    (``"response"`` for an unnamed Series). The requests are those of the same prompt over a frame
    column, so answers already paid for either way are reused.

    >>> summaries = ddf["review"].claude.batch("Summarise: {}", max_tokens=100)  # doctest: +SKIP
    """

    def __init__(self, series: dd.Series) -> None:
        self._series = series

    def _output(self, output: str | None) -> str:
        return verbs.series_output(self._series.name, output)

    def _prepare(self, verb: verbs.Verb, *, need_client: bool = True) -> _Prepared:
        name = verbs.series_column(self._series.name)
        return _prepare(self._series.to_frame(name=name), verb, need_client=need_client, positional=name)

    def submit(self, prompt: str, *, output: str | None = None, **kwargs: Any) -> Run:
        """Start the run over this Series' values and return it at once; see ``ddf.claude.submit``."""
        return _start(self._prepare(verbs.submit(prompt, output=self._output(output), kwargs=kwargs)), wait=False)

    def batch(self, prompt: str, *, output: str | None = None, **kwargs: Any) -> dd.Series:
        """Run ``prompt`` (with ``{}`` for the value) over every value; blocks with progress.

        Returns:
            A lazy ``string`` Dask Series on the same index, named ``output`` when given, else like
            this Series; its answers are read from the store by key.
        """
        prepared = self._prepare(verbs.batch(prompt, output=self._output(output), kwargs=kwargs))
        _start(prepared, wait=True)
        answers = prepared.answers()[prepared.call.output]
        return cast("dd.Series", answers.rename(output if output is not None else self._series.name))

    def estimate(
        self,
        prompt: str,
        *,
        output: str | None = None,
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> CostEstimate:
        """Price ``series.claude.batch(prompt, ...)`` over every partition before running it — free.

        Takes the arguments of pandas' ``df.claude.estimate`` but ``sample``, ``labels`` and ``schema``.
        """
        verb = verbs.estimate(
            prompt,
            output=self._output(output),
            typical_output_tokens=typical_output_tokens,
            hit_rate=hit_rate,
            kwargs=kwargs,
        )
        return _estimate(self._prepare(verb, need_client=False))


def _check_budget(prepared: _Prepared) -> None:
    """``max_cost=``: the whole frame's upper bound, checked before any paid call (the partitions'
    jobs then run unguarded: each one's bound is part of the total).

    Raises:
        BudgetExceededError: the estimate's upper bound over every partition is over ``max_cost``.
    """
    run = prepared.options.run
    if run.max_cost is None:
        return
    total = _estimate(prepared)
    mode = SendMode.REALTIME if run.mode == Mode.REALTIME else SendMode.BATCH
    total.check_budget(run.max_cost, mode=calls.pricing_mode(_any_call(prepared), mode))
    prepared.options = dataclasses.replace(prepared.options, run=dataclasses.replace(run, max_cost=None))


def _start(prepared: _Prepared, *, wait: bool) -> Run:
    """Run the partitions' jobs from this process (``wait``: here, with progress; else in the background)."""
    _check_budget(prepared)
    tasks = _Tasks(_default_ahead(_distributed_client()))
    return run_partitions(_closing(prepared.plans(tasks), tasks), source=prepared.source, wait=wait)


def _closing(plans: Iterator[calls.Call], tasks: _Tasks) -> Iterator[calls.Call]:
    try:
        yield from plans
    finally:
        tasks.close()


def _any_call(prepared: _Prepared) -> calls.Call:
    """The call rendered on the frame's (empty) meta: what every partition's call shares."""
    c = prepared.call
    return calls.prepare(
        _meta(prepared.ddf),
        c.prompt,
        output=c.output,
        options=prepared.options,
        kind=c.kind,
        output_spec=c.output_spec,
        positional=c.positional,
    )


def _estimate(prepared: _Prepared) -> CostEstimate:
    if prepared.options.estimate.sample_answers is not None:  # each partition would answer its own sample
        raise InvalidOptionError(
            "sample_answers= is not taken by a Dask frame's estimate: its partitions are priced apart. Answer a "
            "sample yourself and calibrate on it: job = ddf.head(1000).claude.submit(...).wait(), then "
            "ddf.claude.estimate(..., calibrate=job).",
            option="sample_answers",
        )
    tasks = _Tasks(_default_ahead(_distributed_client()))
    store = prepared.options.run.store
    try:
        parts = [calls.estimate(call, store=store, count=False) for call in prepared.plans(tasks)]
    finally:
        tasks.close()
    if not parts:  # a frame with no partitions: the estimate of no rows
        return calls.estimate(_any_call(prepared), store=store, count=False)
    return sum_estimates(parts, len(parts))


# --------------------------------------------------------------------------- registration


_register_lock = threading.Lock()
_registered = False


def register() -> None:
    """Register ``claude`` on Dask DataFrames and Series (imports ``dask.dataframe``; idempotent)."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from dask.dataframe.extensions import register_dataframe_accessor, register_series_accessor

        register_dataframe_accessor("claude")(DaskFrameAccessor)  # type: ignore[no-untyped-call]
        register_series_accessor("claude")(DaskSeriesAccessor)  # type: ignore[no-untyped-call]
        _registered = True


register()  # imported by batchkit's import hook once dask.dataframe is (batchkit.frontends._hooks)
