"""The pandas front end: ``df.claude`` and ``series.claude``, thin, stateless accessors.

pandas 3 builds a new accessor object on every attribute access, so nothing is kept on it:
``__init__`` stores the frame and each method turns its arguments into one checked verb
(:mod:`batchkit.frontends.verbs`, shared with Polars and Dask: every check in one place, before
anything is rendered or sent) and delegates to :mod:`batchkit.engine.calls`. Every method returns a new
object and never mutates the caller's.

``batch``, ``submit``, ``estimate``, ``classify`` and ``extract`` share their arguments: the
``prompt`` (a template with ``{column}`` placeholders, ``{{``/``}}`` for literal braces, or a
callable ``row -> str`` returning None to skip a row), ``output`` (the new column's name; never
the name of an input column, ``ColumnCollisionError``) and the call options — ``model``,
``max_tokens``, ``mode``, ``deadline``, ``max_cost``, ``cache``, ``store``, … and other Messages API
params. The options are defined, checked and documented once, one docstring per field, in
:mod:`batchkit.core.options`; the docs' options reference (``docs/reference/options.md``) is generated
from there, so this docstring does not copy them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.core.options import DEFAULT_MAX_TOKENS, DEFAULT_MODEL
from batchkit.costs.pricing import CostEstimate
from batchkit.display.explore import Explorer
from batchkit.display.explore_sources import explore_call, explore_cascade
from batchkit.display.views import wait_with_progress
from batchkit.engine import calls
from batchkit.engine.jobs import Job

from . import verbs

if TYPE_CHECKING:
    from batchkit.compare.comparison import Comparison

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "ClaudeFrameAccessor", "ClaudeSeriesAccessor"]

Prompt = str | Callable[[pd.Series], str | None]


@pd.api.extensions.register_dataframe_accessor("claude")
class ClaudeFrameAccessor:
    """Send every row of a DataFrame to Claude through Message Batches.

    >>> out = df.claude.batch("Sentiment of: {review}", output="sentiment")  # doctest: +SKIP
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def submit(self, prompt: Prompt, *, output: str = "response", **kwargs: Any) -> Job:
        """Start a job and return it at once; a background worker keeps it current.

        Takes the same arguments as :meth:`batch`. Re-running the same call returns the same
        job — still running, or finished with its stored answers and no API call.
        """
        return calls.submit(verbs.submit(prompt, output=output, kwargs=kwargs).prepare(self._frame))

    def batch(self, prompt: Prompt, *, output: str = "response", **kwargs: Any) -> pd.DataFrame:
        """Render one prompt per row, run them as Message Batches, and add the answers.

        See the module docstring for every argument.

        Returns:
            A new DataFrame: the original columns plus ``output`` (a ``string`` column; NA where a
            row has no answer — ``job.outcomes()`` says why). Failed rows are also summarised in a
            :class:`batchkit.BatchkitWarning`.
        """
        return self._run(verbs.batch(prompt, output=output, kwargs=kwargs))

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

        Takes the same arguments as :meth:`batch`, plus ``typical_output_tokens`` (the answer
        length you expect; ``max_tokens`` is the upper bound), ``hit_rate`` (the best-effort cache
        hit range) and ``sample`` (requests counted with ``count_tokens`` when a client is
        available). Requests already answered in the store cost 0. ``labels=`` prices
        :meth:`classify`, ``schema=`` prices :meth:`extract`: their answers' length comes from
        the label set or schema. ``calibrate=`` (a finished :class:`batchkit.Job` or
        :class:`batchkit.Comparison` of the same prompt) measures it instead, and so does
        ``sample_answers=N``: N rows answered now in realtime (paid at the standard price, shown in
        the estimate; the run reuses their answers).
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
        """An interactive explorer of this call's cost: the arguments of :meth:`estimate`, plus
        ``rows`` (the row count to price, default this frame's; a sample's figures scale to tens
        of millions). In a notebook a panel of controls — model, mode, caching, rows, output
        length, hit rate, deadline — over the cost and time per mode; elsewhere ``print`` it.
        ``.set(rows=..., mode=..., ...)`` moves it in code and ``.table`` reads its figures: the
        figures :meth:`estimate` gives for the same settings. With ``cascade=[...]`` (and
        ``labels=`` or a ``schema=`` with a label field) it explores the cascade: every stage, as
        :meth:`estimate` prices it, each priced again at the explorer's settings.

        >>> df.claude.explore("Sentiment of: {review}", rows=10_000_000)  # doctest: +SKIP
        """

        def verb_for(overrides: Mapping[str, Any]) -> verbs.Verb:
            return verbs.estimate(
                prompt,
                output=output,
                typical_output_tokens=typical_output_tokens,
                hit_rate=hit_rate,
                sample=sample,
                labels=labels,
                schema=schema,
                kwargs={**kwargs, **overrides},
            )

        if verb_for({}).cascade is not None:  # every stage, as estimate(..., cascade=[...]) prices it
            return explore_cascade(lambda more: verb_for(more).cascade, self._frame, rows=rows)
        return explore_call(lambda more: verb_for(more).prepare(self._frame), rows=rows)

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
    ) -> pd.DataFrame:
        """Classify every row into ``labels``: a Categorical column that can hold nothing else.

        The label set is enforced by the API (a JSON-schema enum in ``output_config.format``) and
        checked again on the way back; an answer outside it is ``invalid_output`` (NA), retried
        ``max_invalid_retries`` times. ``multi=True`` gives a list of labels per row;
        ``reasoning=True`` adds a short ``{output}_reasoning`` column, kept out of the labels.
        ``cascade=[cheap, strong]`` runs a model cascade: the first model answers every row with
        its confidence, rows under ``threshold=`` (0.8) go to the next; ``{output}_model``,
        ``{output}_why`` and ``{output}_confidence`` say which model's answer was kept and why
        (:meth:`batchkit.CascadeJob.of` gives the stages and the cost by stage).
        Other arguments are those of :meth:`batch`.
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
    ) -> pd.DataFrame:
        """Extract typed fields from every row: one column per field of ``schema``.

        ``schema`` is a pydantic model or ``{name: type}`` (``str`` → ``string``, ``int`` →
        ``Int64``, ``float`` → ``Float64``, ``bool`` → ``boolean``, dates → ``datetime64``,
        ``Literal``/``Enum`` → ``Categorical``, lists and nested models → object). Columns are
        named ``prefix + field``. Answers that fail the schema are ``invalid_output`` (NA).
        With a label field (``Literal``/``Enum``), ``cascade=[...]`` runs a model cascade as
        :meth:`classify` does, its columns named after the first field.
        """
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

    def compare(
        self,
        prompt: Prompt,
        *,
        models: Sequence[str],
        prompts: Sequence[Prompt] | Mapping[str, Prompt] | None = None,
        sample: float = 200,
        truth: str | Mapping[str, str] | None = None,
        task: str = "batch",
        labels: Sequence[str] | None = None,
        schema: Any = None,
        target: float | None = None,
        reference: str | None = None,
        seed: int = 0,
        output: str | None = None,
        cascade: bool = False,
        **kwargs: Any,
    ) -> Comparison:
        """Which model and prompt are good enough, and what the whole frame will cost.

        Runs a sample of the rows under every model × prompt variant (all at once) and compares
        their quality and cost; see :mod:`batchkit.compare`.

        Args:
            prompt: the prompt template, as for :meth:`batch`.
            models: the models to compare, e.g. ``["claude-haiku-4-5", "claude-sonnet-4-6"]``.
            prompts: other prompts to try: a list (named ``p2``, ``p3``, …; ``prompt`` is ``p1``)
                or ``{name: prompt}``.
            sample: rows in the sample (default 200), or a fraction of the frame such as 0.1.
            truth: the column holding the right answer (the sample is then stratified by it):
                quality is accuracy. For ``extract``, ``{field: column}``. Without it, quality is
                agreement with ``reference`` — labelled as such, never as accuracy.
            task: ``"batch"`` (free text), ``"classify"`` (needs ``labels``) or ``"extract"``
                (needs ``schema``).
            labels, schema: as for :meth:`classify` and :meth:`extract`.
            target: the quality you need (e.g. 0.8): the recommendation is the cheapest variant
                whose 95% lower bound meets it. Without it: the cheapest variant on the
                cost–quality front that cannot be told apart from the best.
            reference: the model the others are compared with when there is no truth
                (default: the most expensive of ``models``).
            seed: the sample's random seed.
            output: the output column of :meth:`Comparison.run` (``classify``/``batch``).
            cascade: also evaluate model cascades (``classify``, or ``extract`` with a label
                field; two or more ``models``): every model but the most expensive is asked for
                its confidence, and each pair of models, the cheaper first, is scored at thresholds
                from the sample's own confidences — from the answers already paid, no row paid
                twice. Single models are priced as run alone, without the confidence field. ``run()`` of a
                cascade runs ``classify(..., cascade=[...], threshold=...)`` on the rest.
            **kwargs: every other argument of :meth:`batch` (``system``, ``max_tokens``,
                ``cache``, ``store``, ``client``, …), passed to every variant's run as given.

        Returns:
            A :class:`batchkit.Comparison`: ``print`` or display it, ``.to_frame()``,
            ``.plot()``, ``.recommended`` and ``.reason``, and ``.run()`` to run the choice on
            the whole frame — the sample's rows are not sent again.

        >>> cmp = df.claude.compare("Sentiment of: {text}", task="classify", truth="gold",  # doctest: +SKIP
        ...                         labels=["negative", "neutral", "positive"],
        ...                         models=["claude-haiku-4-5", "claude-sonnet-4-6"])
        >>> out = cmp.run()                                                               # doctest: +SKIP
        """
        from batchkit.compare.runner import compare

        return compare(
            self._frame,
            prompt,
            models=models,
            prompts=prompts,
            sample=sample,
            truth=truth,
            task=task,
            labels=labels,
            schema=schema,
            target=target,
            reference=reference,
            seed=seed,
            output=output,
            cascade=cascade,
            **kwargs,
        )

    def _run(self, verb: verbs.Verb) -> pd.DataFrame:
        if verb.cascade is not None:  # stage after stage (batchkit.engine.cascade)
            return verbs.run_cascade(verb, self._frame).to_frame(self._frame)
        job = calls.submit(verb.prepare(self._frame))
        wait_with_progress(job, progress=verb.progress)
        return job.to_frame(self._frame)


@pd.api.extensions.register_series_accessor("claude")
class ClaudeSeriesAccessor:
    """The same for one column: ``{}`` in the prompt is the Series' value.

    ``output=`` names the result (and the job's output); by default it is the Series' own name
    (``"response"`` for an unnamed Series).
    """

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def _frame(self) -> tuple[pd.DataFrame, str]:
        name = verbs.series_column(self._series.name)
        return pd.DataFrame({name: self._series.array}, index=self._series.index), name

    def _output(self, output: str | None) -> str:
        return verbs.series_output(self._series.name, output)

    def _prepare(self, verb: verbs.Verb) -> calls.Call:
        frame, name = self._frame()
        return verb.prepare(frame, positional=name)

    def submit(self, prompt: str, *, output: str | None = None, **kwargs: Any) -> Job:
        """Start a job over this Series' values; see ``DataFrame.claude.submit``."""
        return calls.submit(self._prepare(verbs.submit(prompt, output=self._output(output), kwargs=kwargs)))

    def batch(self, prompt: str, *, output: str | None = None, **kwargs: Any) -> pd.Series:
        """Run ``prompt`` (with ``{}`` for the value) over every value; returns the answers.

        The result is a ``string`` Series on the same index, named ``output`` when given, else
        like this Series.
        """
        verb = verbs.batch(prompt, output=self._output(output), kwargs=kwargs)
        job = calls.submit(self._prepare(verb))
        wait_with_progress(job, progress=verb.progress)
        frame, _ = self._frame()
        out = job.to_frame(frame)[job.output]
        out.name = output if output is not None else self._series.name
        return out

    def estimate(
        self,
        prompt: str,
        *,
        output: str | None = None,
        typical_output_tokens: int | None = None,
        hit_rate: float | tuple[float, float] | None = None,
        sample: int = 20,
        **kwargs: Any,
    ) -> CostEstimate:
        """Price ``series.claude.batch(prompt, ...)`` before running it; takes the same arguments,
        plus those of ``DataFrame.claude.estimate``."""
        verb = verbs.estimate(
            prompt,
            output=self._output(output),
            typical_output_tokens=typical_output_tokens,
            hit_rate=hit_rate,
            sample=sample,
            kwargs=kwargs,
        )
        return calls.estimate(self._prepare(verb))
