"""What each verb of the front ends means, said once: how its arguments become checked options,
its output spec, and what its estimate prices.

pandas (``df.claude``), Polars (``pl.DataFrame.claude``, ``pl.LazyFrame.claude``) and Dask
(``ddf.claude``) offer the same verbs. Each front end's method keeps its own explicit signature
and docstring — what ``help()`` and an IDE show — and turns its arguments into one :class:`Verb`
with the function of the same name here; the front end only adapts the rows going in (a whole
frame, a partition, a Dask frame's empty ``_meta``) and builds its own typed columns from the
answers. The defaults are the public signatures' (pandas' ``df.claude`` is the reference):
these functions take every keyword explicitly, and ``tests/test_verbs.py`` holds each front
end's signatures to the reference, so none can drift. This is core, not a front end: it knows
no DataFrame library.

=====================  ==========================================================================
:func:`batch`          one free-text answer per row, in the column ``output``
:func:`submit`         the same, started without waiting
:func:`classify`       a label set the API enforces (``output_config.format``), checked on the
                       way back
:func:`extract`        the typed fields of a schema, one column each, named ``prefix + field``
:func:`estimate`       the call of ``batch`` — or of ``classify`` with ``labels=``, of ``extract``
                       with ``schema=``, at their default ``max_tokens`` — plus estimate's own
                       options
:func:`series_column`  a Series' verbs: the column its values are read from, and its output's
:func:`series_output`  name
=====================  ==========================================================================

``kwargs`` is always the rest of the call's keyword arguments (batchkit options and Messages
params), checked together by :meth:`batchkit.core.options.Options.build`. It is a plain dict, not
``**kwargs``, so a keyword a front end's method does not take (``labels=`` on a Series'
estimate) is refused by name there rather than bound here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchkit.core.options import CLASSIFY_MAX_TOKENS, DEFAULT_MAX_TOKENS, Options
from batchkit.core.structured import OutputSpec, classify_spec, extract_spec
from batchkit.costs.estimate import CostEstimate
from batchkit.display.views import wait_with_progress
from batchkit.engine import calls
from batchkit.engine import cascade as cascades
from batchkit.errors import InvalidOptionError

__all__ = [
    "Verb",
    "batch",
    "classify",
    "estimate",
    "extract",
    "price",
    "run_cascade",
    "series_column",
    "series_output",
    "submit",
]

Prompt = str | Callable[[Any], str | None]
"""A template with ``{column}`` placeholders, or a callable ``row -> str`` (None skips the row)."""


@dataclass(frozen=True)
class Verb:
    """One checked call, to be prepared over a whole table or over each of its partitions.

    Attributes:
        prompt: the template or the callable ``row -> str``.
        output: the (first) output column.
        options: the call's checked options, the output format set for ``classify``/``extract``.
        spec: the structured output of ``classify``/``extract``; None for free text.
    """

    prompt: Prompt
    output: str
    options: Options
    spec: OutputSpec | None = None
    cascade: cascades.Cascade | None = None
    """With ``cascade=[...]``: the checked cascade (every stage's model checked), run stage after
    stage by :func:`batchkit.engine.cascade.run` instead of :meth:`prepare`."""

    @property
    def kind(self) -> str:
        """``text``, ``classify`` or ``extract``."""
        return self.spec.kind if self.spec is not None else "text"

    @property
    def progress(self) -> bool:
        """Whether a blocking call shows live progress (``progress=``)."""
        return self.options.run.progress

    def prepare(self, table: Any, *, positional: Hashable = None) -> calls.Call:
        """Check, render and key the rows of ``table`` (pure: no network, no store); see
        :func:`batchkit.engine.calls.prepare`. ``positional`` is the column a bare ``{}`` reads.

        Raises:
            InvalidOptionError: the call has ``cascade=``, which runs stage after stage
                (:func:`batchkit.engine.cascade.run` over a frame in memory,
                :mod:`batchkit.engine.cascade_parts` over a Polars LazyFrame's or a Dask frame's
                partitions), not as one call: a verb of a front end that runs no cascade (a Series').
        """
        if self.cascade is not None:
            raise InvalidOptionError(
                "cascade= runs stage after stage (each stage's rows chosen from the one before) on a frame's "
                "classify/extract: call it on a DataFrame (df.claude.classify(..., cascade=[...])), or pass one model=",
                option="cascade",
            )
        return calls.prepare(
            table,
            self.prompt,
            output=self.output,
            options=self.options,
            kind=self.kind,
            output_spec=self.spec,
            positional=positional,
        )


def batch(prompt: Prompt, *, output: str, kwargs: Mapping[str, Any]) -> Verb:
    """``batch``: one free-text answer per row, in the column ``output``."""
    return Verb(prompt, output, Options.build(kwargs, verb="batch"))


def submit(prompt: Prompt, *, output: str, kwargs: Mapping[str, Any]) -> Verb:
    """``submit``: the call of :func:`batch`, started without waiting."""
    return Verb(prompt, output, Options.build(kwargs, verb="submit"))


def classify(
    prompt: Prompt,
    labels: Sequence[str],
    *,
    output: str,
    multi: bool,
    reasoning: bool,
    max_invalid_retries: int,
    max_tokens: int,
    kwargs: Mapping[str, Any],
) -> Verb:
    """``classify``: each row into ``labels``, enforced by the API and checked on the way back;
    ``multi`` gives a list of labels, ``reasoning`` a ``{output}_reasoning`` column.

    Raises:
        InvalidOptionError: ``labels`` is no list of two or more distinct, non-blank strings, or
            ``output_config=`` sets its own ``format``; any error of :meth:`Options.build`.
    """
    spec = classify_spec(labels, output=output, multi=multi, reasoning=reasoning)
    options = Options.build(
        {**kwargs, "max_tokens": max_tokens, "max_invalid_retries": max_invalid_retries}, verb="classify"
    )
    return _verb(prompt, output, options.with_output_spec(spec), spec)


def extract(
    prompt: Prompt, schema: Any, *, prefix: str, max_invalid_retries: int, max_tokens: int, kwargs: Mapping[str, Any]
) -> Verb:
    """``extract``: the fields of ``schema`` (a pydantic model or ``{name: type}``), one column
    each, named ``prefix + field``.

    Raises:
        ConfigurationError: ``schema`` is no model or field mapping batchkit can type.
        InvalidOptionError: ``output_config=`` sets its own ``format``; any error of
            :meth:`Options.build`.
    """
    spec = extract_spec(schema, prefix=prefix)
    options = Options.build(
        {**kwargs, "max_tokens": max_tokens, "max_invalid_retries": max_invalid_retries}, verb="extract"
    )
    return _verb(prompt, spec.columns[0][0], options.with_output_spec(spec), spec)


def estimate(
    prompt: Prompt,
    *,
    output: str,
    labels: Sequence[str] | None = None,
    schema: Any = None,
    kwargs: Mapping[str, Any],
    **own: Any,
) -> Verb:
    """``estimate``: the call of :func:`batch`; with ``labels=`` that of :func:`classify`, with
    ``schema=`` that of :func:`extract` (``labels=`` wins when both are given), each at its own
    default ``max_tokens`` (:data:`~batchkit.core.options.CLASSIFY_MAX_TOKENS`,
    :data:`~batchkit.core.options.DEFAULT_MAX_TOKENS`) unless ``kwargs`` sets one.

    ``own`` are the estimate-only options the front end's method takes as parameters
    (``typical_output_tokens``, ``hit_rate``, ``sample``: Dask takes no ``sample``, which then
    comes in ``kwargs`` if given), checked with the rest by :meth:`Options.build`.
    """
    if labels is None and schema is None:
        return _verb(prompt, output, Options.build({**kwargs, **own}, verb="estimate"), None)
    if labels is not None:
        spec, max_tokens = classify_spec(labels, output=output), CLASSIFY_MAX_TOKENS
    else:
        spec, max_tokens = extract_spec(schema), DEFAULT_MAX_TOKENS
    options = Options.build({"max_tokens": max_tokens, **kwargs, **own}, verb="estimate")
    return _verb(prompt, spec.columns[0][0], options.with_output_spec(spec), spec)


def _verb(prompt: Prompt, output: str, options: Options, spec: OutputSpec | None) -> Verb:
    """The verb, its cascade checked and planned when the call has ``cascade=`` (before anything is sent)."""
    if options.run.cascade is None:
        return Verb(prompt, output, options, spec)
    return Verb(prompt, output, options, spec, cascades.plan(prompt, output=output, options=options, spec=spec))


# --------------------------------------------------------------------------- running and pricing a verb


def run_cascade(verb: Verb, table: Any) -> cascades.CascadeJob:
    """Run ``verb``'s cascade (``cascade=[...]``) over a whole in-memory table — a pandas or Polars
    frame — stage after stage, each stage's job waited for with its progress view."""
    assert verb.cascade is not None
    return cascades.run(verb.cascade, table, wait=lambda job: wait_with_progress(job, progress=verb.progress))


def price(verb: Verb, table: Any) -> CostEstimate:
    """``estimate``'s answer for ``verb`` over ``table``: every stage of a cascade, or the one call."""
    if verb.cascade is not None:
        return cascades.estimate(verb.cascade, table)
    return calls.estimate(verb.prepare(table))


# --------------------------------------------------------------------------- a Series' names


def series_column(name: Hashable) -> str:
    """The column a Series' values are read from in its verbs: named like the Series, so
    ``{review}`` works as well as ``{}`` (``__value__`` for a Series whose name is no string)."""
    return name if isinstance(name, str) else "__value__"


def series_output(name: Hashable, output: str | None) -> str:
    """A Series verb's output column: ``output=`` when given, else the Series' own name, else
    ``"response"``."""
    if output is not None:
        return output
    return str(name) if name is not None else "response"
