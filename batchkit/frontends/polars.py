"""``pl.DataFrame.claude`` and ``pl.LazyFrame.claude``: the Polars front end.

Registered through Polars' own namespace API the moment both Polars and batchkit are imported,
in either order (``import batchkit`` never imports Polars itself). The accessors are thin and
stateless, like the pandas one: each method turns its arguments into one checked
:class:`batchkit.frontends.verbs.Verb` (what the verb means, said once for pandas, Polars and
Dask), hands the rows to the core (:func:`batchkit.engine.calls.prepare`) and builds Polars columns from
the core's per-row answers.

On a ``DataFrame`` the verbs take the arguments of ``df.claude`` on pandas and return a new
``DataFrame`` with the answers as typed columns:

=============  ===================================================================================
``batch``      one ``String`` column (null where a row has no answer)
``classify``   ``Enum(labels)`` (``multi=True``: ``List(Enum(labels))``; ``reasoning=True`` adds a
               ``String`` column)
``extract``    one nullable column per schema field: ``str`` → ``String``, ``int`` → ``Int64``,
               ``float`` → ``Float64``, ``bool`` → ``Boolean``, ``date`` → ``Date``,
               ``datetime`` → ``Datetime("us", "UTC")``, ``Literal``/``Enum`` of strings →
               ``Enum``, ``list[X]`` → ``List``, a nested model → ``Struct``, a union of several
               types → ``Object``
``submit``     the :class:`batchkit.Job` at once; ``df.claude.result(job)`` builds the frame later
``estimate``   a :class:`batchkit.CostEstimate`, before any paid call
=============  ===================================================================================

Polars frames carry no metadata, so a returned frame cannot name its job the way a pandas frame's
``attrs`` do: keep the :class:`~batchkit.Job` from ``submit`` (or find it in ``batchkit.jobs()``,
then ``batchkit.Job.load(job_id)``) and rebuild the frame with ``df.claude.result(job)``.

On a ``LazyFrame``, ``batch``, ``classify`` and ``extract`` return a ``LazyFrame``. Nothing is read
or sent until it is collected (``collect``, ``sink_parquet``, ``collect_batches``…); then the input
streams through the engine ``partition_rows`` rows at a time (default 100,000) into one
partitioned run (:class:`batchkit.engine.pipeline.Pipeline`): each partition is rendered and sent as its
own job, a few are planned ahead to keep the processing queue full, and each is yielded with its
answers in input order, so the client holds the partitions in flight, not the plan. Every option is
checked — and the prompt's placeholders against the plan's schema — when the method is called.
The run is named by the plan, the call and ``partition_rows``, so collecting the same plan again
makes no API call (each partition's job is found in the store). ``.head(n)`` on the result sends
only ``n`` rows; a ``select`` after it reads only the columns kept and rendered. ``submit`` starts
the run in the background and returns the :class:`batchkit.engine.runs.Run`.
"""

from __future__ import annotations

import collections
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from batchkit.core import _json
from batchkit.core.render import parse_prompt
from batchkit.core.states import RowStatus
from batchkit.costs.pricing import CostEstimate
from batchkit.display.explore import Explorer
from batchkit.display.explore_sources import explore_call, explore_cascade
from batchkit.display.views import wait_with_progress
from batchkit.engine import calls, cascade_parts
from batchkit.engine.jobs import Job
from batchkit.engine.pipeline import Pipeline, submit_run
from batchkit.engine.runs import Run

from ..errors import InvalidOptionError, JobStateError, OptionTypeError, warn
from . import verbs
from .polars_columns import dtype_of, output_columns, output_schema

__all__ = ["DEFAULT_PARTITION_ROWS", "ClaudeFrame", "ClaudeLazyFrame", "dtype_of"]

DEFAULT_PARTITION_ROWS = 100_000
"""Rows per partition of a LazyFrame run (one job each): a full batch, and a bounded slice of memory."""

Prompt = str | Callable[[Mapping[str, Any]], str | None]


# --------------------------------------------------------------------------- answers


def _row_answers(job: Job) -> list[str | None]:
    """Each row's usable answer text (None: skipped, pending or failed), read from the store."""
    answers: list[str | None] = job.answers().tolist()
    return answers


# --------------------------------------------------------------------------- DataFrame


@pl.api.register_dataframe_namespace("claude")
class ClaudeFrame:
    """Send every row of a Polars DataFrame to Claude through Message Batches.

    >>> out = df.claude.batch("Sentiment of: {review}", output="sentiment")  # doctest: +SKIP
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def submit(self, prompt: Prompt, *, output: str = "response", **kwargs: Any) -> Job:
        """Start a job and return it at once; ``df.claude.result(job)`` builds the frame later.

        Takes the arguments of :meth:`batch`. Re-running the same call returns the same job.
        """
        verb = verbs.submit(prompt, output=output, kwargs=kwargs)
        return calls.submit(verb.prepare(self._frame))

    def batch(self, prompt: Prompt, *, output: str = "response", **kwargs: Any) -> pl.DataFrame:
        """Render one prompt per row, run them as Message Batches, and add the answers.

        ``prompt`` is a template with ``{column}`` placeholders or a callable ``row -> str``
        (``row`` a ``{column: value}`` dict; return None to skip the row). The other arguments are
        those of pandas' ``df.claude.batch`` (see :mod:`batchkit.frontends.pandas`).

        Returns:
            A new DataFrame: the input columns plus ``output``, a ``String`` column (null where a
            row has no answer — ``job.outcomes()`` says why; failures are also summarised in a
            :class:`batchkit.BatchkitWarning`).
        """
        return self._run(verbs.batch(prompt, output=output, kwargs=kwargs))

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
        **kwargs: Any,
    ) -> pl.DataFrame:
        """Classify every row into ``labels``: an ``Enum(labels)`` column that can hold nothing else.

        ``multi=True`` gives ``List(Enum(labels))``; ``reasoning=True`` adds a ``String`` column
        ``{output}_reasoning``. An answer outside the labels is ``invalid_output`` (null).
        """
        return self._run(
            verbs.classify(
                prompt,
                labels,
                output=output,
                multi=multi,
                reasoning=reasoning,
                max_invalid_retries=max_invalid_retries,
                max_tokens=max_tokens,
                kwargs=kwargs,
            )
        )

    def extract(
        self,
        prompt: Prompt,
        schema: Any,
        *,
        prefix: str = "",
        max_invalid_retries: int = 1,
        max_tokens: int = 1024,
        **kwargs: Any,
    ) -> pl.DataFrame:
        """Extract typed fields from every row: one nullable column per field of ``schema``
        (a pydantic model or ``{name: type}``), named ``prefix + field``; dtypes in the module
        docstring. Answers that fail the schema are ``invalid_output`` (null)."""
        return self._run(
            verbs.extract(
                prompt,
                schema,
                prefix=prefix,
                max_invalid_retries=max_invalid_retries,
                max_tokens=max_tokens,
                kwargs=kwargs,
            )
        )

    def estimate(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        sample: int = 20,
        labels: Sequence[str] | None = None,
        schema: Any = None,
        **kwargs: Any,
    ) -> CostEstimate:
        """Tokens and dollars for this call under standard, batch and batch + caching — free.

        The arguments of pandas' ``df.claude.estimate``: those of :meth:`batch`, plus
        ``typical_output_tokens``, ``hit_rate``, ``sample``, and ``labels=`` / ``schema=`` to
        price :meth:`classify` / :meth:`extract`.
        """
        verb = verbs.estimate(
            prompt,
            output=output,
            typical_output_tokens=typical_output_tokens,
            hit_rate=hit_rate,
            sample=sample,
            labels=labels,
            schema=schema,
            kwargs=kwargs,
        )
        return verbs.price(verb, self._frame)

    def explore(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        rows: int | None = None,
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        sample: int = 20,
        labels: Sequence[str] | None = None,
        schema: Any = None,
        **kwargs: Any,
    ) -> Explorer:
        """pandas' ``df.claude.explore``: the arguments of :meth:`estimate`, plus ``rows`` to price."""
        own = {"typical_output_tokens": typical_output_tokens, "hit_rate": hit_rate, "sample": sample}

        def verb_for(more: Mapping[str, Any]) -> verbs.Verb:
            return verbs.estimate(prompt, output=output, labels=labels, schema=schema, kwargs={**kwargs, **more}, **own)

        if verb_for({}).cascade is not None:  # every stage, as estimate(..., cascade=[...]) prices it
            return explore_cascade(lambda more: verb_for(more).cascade, self._frame, rows=rows)
        return explore_call(lambda more: verb_for(more).prepare(self._frame), rows=rows)

    def result(self, job: Job | str) -> pl.DataFrame:
        """This frame with ``job``'s answers as typed columns (a job of this frame, or its id).

        What ``batch`` returns once the job has ended; before that, rows not yet answered are null.

        >>> job = df.claude.submit("Sentiment of: {review}")  # doctest: +SKIP
        >>> out = df.claude.result(job.wait())                # doctest: +SKIP
        """
        if isinstance(job, str):
            job = Job.load(job)
        if len(job.row_keys) != self._frame.height:
            raise JobStateError(
                f"job {job.job_id} has {len(job.row_keys):,} rows but this frame has {self._frame.height:,}; "
                f"call result() on the frame the job was submitted from",
                job_id=job.job_id,
            )
        return self._frame.hstack(output_columns(job.output, job.output_spec, _row_answers(job)))

    def _run(self, verb: verbs.Verb) -> pl.DataFrame:
        if verb.cascade is not None:  # stage after stage (batchkit.engine.cascade): its columns, then why
            done = verbs.run_cascade(verb, self._frame)
            added = [pl.Series(name, values, dtype=pl.String) for name, values in done.explained().items()]
            return self._frame.hstack([*output_columns(verb.output, done.spec, list(done.answers())), *added])
        job = calls.submit(verb.prepare(self._frame))
        wait_with_progress(job, progress=verb.progress)
        return self._frame.hstack(output_columns(verb.output, verb.spec, _row_answers(job)))


# --------------------------------------------------------------------------- LazyFrame


def _partition_rows(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise OptionTypeError(
            f"partition_rows must be a whole number of rows such as 100_000, not {value!r:.80}", option="partition_rows"
        )
    if value < 1:
        raise InvalidOptionError(
            f"partition_rows must be at least 1, not {value}; leave it out for {DEFAULT_PARTITION_ROWS:,} rows "
            f"per partition",
            option="partition_rows",
        )
    return int(value)


def _partitions(plan: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """The plan's rows in partitions of exactly ``rows`` (the last one shorter), in order, streamed
    by the engine: at most a partition plus one engine chunk is held."""
    buffer: list[pl.DataFrame] = []
    held = 0
    for chunk in plan.collect_batches(chunk_size=rows):
        while chunk.height:
            take = min(rows - held, chunk.height)
            buffer.append(chunk.slice(0, take))
            held += take
            chunk = chunk.slice(take)
            if held == rows:
                yield pl.concat(buffer, rechunk=True) if len(buffer) > 1 else buffer[0]
                buffer, held = [], 0
    if held:
        yield pl.concat(buffer, rechunk=True) if len(buffer) > 1 else buffer[0]


def _source(plan: pl.LazyFrame, verb: verbs.Verb, empty: calls.Call, partition_rows: int) -> str:
    """A stable identity of the input plan and the call: the same plan, prompt and options give the
    same source (and run); anything that changes a request or a partition gives another."""
    digest = hashlib.sha256()
    try:
        digest.update(plan.serialize())
    except Exception:  # a plan Polars cannot serialize (a Python UDF) is simply not recognised again
        digest.update(uuid.uuid4().bytes)
    digest.update(empty.template.body(""))
    digest.update(_json.dumps([verb.kind, verb.output, empty.spec.to_json(), partition_rows]))
    return f"polars:{digest.hexdigest()[:32]}"


def _answered(verb: verbs.Verb, parts: Iterator[pl.DataFrame], source: str) -> Iterator[pl.DataFrame]:
    """Each partition with its answers as typed columns, in input order (see :class:`Pipeline`);
    then one warning for the rows without an answer."""
    pipeline = Pipeline(verb.prepare, parts, source, progress=verb.progress)
    pipeline.start()
    assert pipeline.run is not None
    counts: collections.Counter[str] = collections.Counter()
    outputs = pipeline.outputs()
    try:
        for part, out in outputs:
            counts.update(out.statuses)
            yield part.hstack(output_columns(verb.output, verb.spec, out.answers))
    finally:
        outputs.close()  # the engine stopped reading: the pipeline closes now, not when collected
    _warn_unanswered(pipeline.run.run_id, verb, counts)


def _warn_unanswered(run_id: str, verb: verbs.Verb, counts: collections.Counter[str]) -> None:
    """One warning for the whole run when rows have no answer (never silently null)."""
    answered = (RowStatus.SUCCEEDED,) if verb.spec is not None else (RowStatus.SUCCEEDED, RowStatus.TRUNCATED)
    if all(status in answered for status in counts):
        return
    rows = sum(counts.values())
    parts = ", ".join(f"{n:,} {status}" for status, n in counts.most_common())
    columns = ", ".join(repr(c) for c in output_schema(verb.output, verb.spec))
    warn(
        f"batchkit run {run_id}: {rows:,} rows: {parts}. Rows without an answer are null in {columns}; "
        f"batchkit.engine.runs.Run.load({run_id!r}).summary() counts them by error, and each partition's "
        f"batchkit.Job.load(job_id).outcomes() says why (Run.load(...).parts lists the jobs)."
    )


@pl.api.register_lazyframe_namespace("claude")
class ClaudeLazyFrame:
    """The verbs on a Polars LazyFrame: each returns a LazyFrame that streams through the engine.

    >>> lf = pl.scan_parquet("tickets/*.parquet")                               # doctest: +SKIP
    >>> out = lf.claude.classify("Topic of: {text}", labels=["bug", "billing"])  # doctest: +SKIP
    >>> out.sink_parquet("labelled.parquet")                                     # doctest: +SKIP
    """

    def __init__(self, frame: pl.LazyFrame) -> None:
        self._frame = frame

    def batch(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        **kwargs: Any,
    ) -> pl.LazyFrame:
        """:meth:`ClaudeFrame.batch` as a lazy plan: a ``String`` column ``output`` is added when
        collected, ``partition_rows`` rows (one job) at a time.

        Raises (at once, before anything is read or sent): every error of the eager call that does
        not need the data — an unknown column, a bad option, an output named like an input.
        """
        return self._lazy(verbs.batch(prompt, output=output, kwargs=kwargs), partition_rows)

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
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        **kwargs: Any,
    ) -> pl.LazyFrame:
        """:meth:`ClaudeFrame.classify` as a lazy plan (an ``Enum(labels)`` column)."""
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
        return self._lazy(verb, partition_rows)

    def extract(
        self,
        prompt: Prompt,
        schema: Any,
        *,
        prefix: str = "",
        max_invalid_retries: int = 1,
        max_tokens: int = 1024,
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        **kwargs: Any,
    ) -> pl.LazyFrame:
        """:meth:`ClaudeFrame.extract` as a lazy plan (one typed column per schema field)."""
        verb = verbs.extract(
            prompt, schema, prefix=prefix, max_invalid_retries=max_invalid_retries, max_tokens=max_tokens, kwargs=kwargs
        )
        return self._lazy(verb, partition_rows)

    def submit(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        **kwargs: Any,
    ) -> Run:
        """Start the run of :meth:`batch` in the background and return it at once.

        The plan is read and sent a partition at a time on a background thread; the answers go to
        the store. ``run.wait()`` blocks until every partition is answered, and collecting
        ``lf.claude.batch(...)`` with the same arguments — now or in a later session — then reads
        them from the store with no API call (it is the same run).

        Returns:
            A :class:`batchkit.engine.runs.Run`: ``.status``, ``.summary()``, ``.cost``, ``.parts`` (the
            partitions' job ids), ``.wait()``.
        """
        verb = verbs.submit(prompt, output=output, kwargs=kwargs)
        rows = _partition_rows(partition_rows)
        empty = verb.prepare(pl.DataFrame(schema=self._frame.collect_schema()))
        source = _source(self._frame, verb, empty, rows)
        return submit_run(verb.prepare, _partitions(self._frame, rows), source, progress=verb.progress)

    def estimate(
        self,
        prompt: Prompt,
        *,
        output: str = "response",
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        sample: int = 20,
        labels: Sequence[str] | None = None,
        schema: Any = None,
        **kwargs: Any,
    ) -> CostEstimate:
        """:meth:`ClaudeFrame.estimate` over the plan's rows (collected to price them: estimate a
        large plan on a sample, e.g. ``lf.head(100_000).claude.estimate(...)``, and scale)."""
        verb = verbs.estimate(
            prompt,
            output=output,
            typical_output_tokens=typical_output_tokens,
            hit_rate=hit_rate,
            sample=sample,
            labels=labels,
            schema=schema,
            kwargs=kwargs,
        )
        return verbs.price(verb, self._frame.collect())

    def _lazy(self, verb: verbs.Verb, partition_rows: int) -> pl.LazyFrame:
        rows = _partition_rows(partition_rows)
        if verb.cascade is not None:
            return _lazy_cascade(self._frame, verb, verb.cascade, rows)
        plan = self._frame
        schema = plan.collect_schema()
        # Every check that needs no data, now: options, placeholders against the schema, collisions.
        empty = verb.prepare(pl.DataFrame(schema=schema))
        out_schema = pl.Schema({**schema, **output_schema(verb.output, verb.spec)})
        # The columns a template reads (a callable may read any): the rest need not be read at all
        # when a projection after ``claude`` leaves them out.
        reads = set(parse_prompt(verb.prompt, schema.names()).columns) if isinstance(verb.prompt, str) else None
        outputs = ", ".join(output_schema(verb.output, verb.spec))

        def io_source(
            with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
        ) -> Iterator[pl.DataFrame]:
            del batch_size  # a partition is one job; the engine re-chunks what it is given
            head = plan if n_rows is None else plan.head(n_rows)
            if with_columns is not None and reads is not None:  # read only what is kept or rendered
                wanted = {*with_columns, *reads, *(predicate.meta.root_names() if predicate is not None else ())}
                head = head.select([name for name in schema.names() if name in wanted])
            source = _source(head, verb, empty, rows)
            for frame in _answered(verb, _partitions(head, rows), source):
                if predicate is not None:
                    frame = frame.filter(predicate)
                if with_columns is not None:
                    frame = frame.select(with_columns)
                yield frame

        return register_io_source(
            io_source,
            schema=out_schema,
            explain_name="batchkit",
            explain_detail=f"{verb.kind} → {outputs}; {rows:,} rows per partition",
        )


def _lazy_cascade(plan: pl.LazyFrame, verb: verbs.Verb, cascade: Any, rows: int) -> pl.LazyFrame:
    """A cascade over the plan's partitions, stage after stage (:mod:`batchkit.engine.cascade_parts`):
    the eager call's columns, its requests."""
    schema = plan.collect_schema()
    empty = cascade_parts.prepare_stage(cascade, pl.DataFrame(schema=schema), 0)  # the checks needing no data
    cascade_parts.check(cascade, estimate="lf.collect().claude.estimate(..., cascade=[...])", eager="collect()")
    added = {**output_schema(verb.output, cascade.spec), **dict.fromkeys(cascade.columns(), pl.String)}

    def io_source(with_columns: Any, predicate: Any, n_rows: int | None, batch_size: Any) -> Iterator[pl.DataFrame]:
        head = plan if n_rows is None else plan.head(n_rows)
        parts = cascade_parts.run(
            cascade, lambda: _partitions(head, rows), source=_source(head, verb, empty, rows), progress=verb.progress
        )
        for part, done in parts:
            why = [pl.Series(name, values, dtype=pl.String) for name, values in done.explained().items()]
            frame = part.hstack([*output_columns(verb.output, done.spec, list(done.answers())), *why])
            frame = frame.filter(predicate) if predicate is not None else frame
            yield frame.select(with_columns) if with_columns is not None else frame

    return register_io_source(io_source, schema=pl.Schema({**schema, **added}), explain_name="batchkit cascade")
