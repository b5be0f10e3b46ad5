"""batchkit.verbs: each verb means the same through every front end.

The front ends keep explicit signatures (for ``help()`` and IDEs); these tests hold them to the
keywords and defaults of :mod:`batchkit.verbs`, so a default changed in one place cannot drift
from the others, and check what the shared spec decides: which requests a verb sends and which
an estimate prices.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import dask.dataframe as dd
import polars as pl
import pytest

import batchkit
from batchkit import InvalidOptionError, UnknownOptionError, verbs
from batchkit.frontends.dask import DaskFrameAccessor, DaskSeriesAccessor
from batchkit.frontends.pandas import ClaudeFrameAccessor, ClaudeSeriesAccessor
from batchkit.frontends.polars import DEFAULT_PARTITION_ROWS, ClaudeFrame, ClaudeLazyFrame
from batchkit.options import CLASSIFY_MAX_TOKENS
from tests.conftest import frame

VERBS = ("batch", "submit", "estimate", "classify", "extract")
LABELS = ["negative", "positive"]
SCHEMA = {"score": int, "topic": str}


def _spec(verb: str) -> list[tuple[str, Any, Any]]:
    """The keywords of ``verbs.<verb>`` as (name, kind, default), ``kwargs`` as ``**kwargs``."""
    out = []
    for p in inspect.signature(getattr(verbs, verb)).parameters.values():
        if p.name == "kwargs":
            out.append(("kwargs", inspect.Parameter.VAR_KEYWORD, inspect.Parameter.empty))
        else:
            out.append((p.name, p.kind, p.default))
    return out


def _method(cls: type, verb: str) -> list[tuple[str, Any, Any]]:
    params = list(inspect.signature(getattr(cls, verb)).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default) for p in params]


def _changed(spec: list[tuple[str, Any, Any]], *, drop: tuple[str, ...] = (), output: Any = "same",
             extra: tuple[tuple[str, Any], ...] = ()) -> list[tuple[str, Any, Any]]:
    """The spec with a front end's documented differences: keywords it does not take, the Series'
    ``output=None`` (its own name), keywords of its own before ``**kwargs``."""
    out = [(n, k, output if n == "output" and output != "same" else d) for n, k, d in spec if n not in drop]
    own = [(n, inspect.Parameter.KEYWORD_ONLY, d) for n, d in extra]
    return out[:-1] + own + out[-1:]


LAZY = (("partition_rows", DEFAULT_PARTITION_ROWS),)
PARQUET = (("to_parquet", None),)

# Each front end's methods and how their keywords may differ from the spec — and only so.
FRONT_ENDS: dict[str, tuple[type, dict[str, dict[str, Any]]]] = {
    "pandas DataFrame": (ClaudeFrameAccessor, {v: {} for v in VERBS}),
    "pandas Series": (ClaudeSeriesAccessor, {
        "batch": {"output": None}, "submit": {"output": None},
        "estimate": {"output": None, "drop": ("labels", "schema")}}),
    "polars DataFrame": (ClaudeFrame, {v: {} for v in VERBS}),
    "polars LazyFrame": (ClaudeLazyFrame, {
        "batch": {"extra": LAZY}, "submit": {"extra": LAZY}, "classify": {"extra": LAZY},
        "extract": {"extra": LAZY}, "estimate": {}}),
    "dask DataFrame": (DaskFrameAccessor, {
        "batch": {"extra": PARQUET}, "submit": {}, "classify": {"extra": PARQUET},
        "extract": {"extra": PARQUET}, "estimate": {"drop": ("sample",)}}),
    "dask Series": (DaskSeriesAccessor, {
        "batch": {"output": None}, "submit": {"output": None},
        "estimate": {"output": None, "drop": ("sample", "labels", "schema")}}),
}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_front_end_takes_the_keywords_and_defaults_of_the_shared_verbs(front_end):
    cls, differences = FRONT_ENDS[front_end]
    for verb, difference in differences.items():
        assert _method(cls, verb) == _changed(_spec(verb), **difference), f"{front_end}.{verb}"
        assert getattr(cls, verb).__doc__, f"{front_end}.{verb} has no docstring for help()"


def test_a_front_end_verb_shows_its_keywords_to_help_not_only_kwargs():
    shown = inspect.signature(ClaudeFrame.classify)
    assert {"labels", "output", "multi", "reasoning", "max_invalid_retries", "max_tokens"} <= set(shown.parameters)
    assert shown.parameters["max_tokens"].default == 256


@pytest.mark.parametrize("table", [
    pytest.param(lambda df: df, id="pandas"),
    pytest.param(lambda df: pl.from_pandas(df), id="polars"),
    pytest.param(lambda df: {"t": df["t"].tolist()}, id="mapping"),
])
@pytest.mark.parametrize(("priced", "sent"), [
    pytest.param({}, lambda: verbs.batch("Say {t}", kwargs={}), id="batch"),
    pytest.param({"labels": LABELS}, lambda: verbs.classify("Say {t}", LABELS, kwargs={}), id="classify"),
    pytest.param({"labels": LABELS, "output": "mood"},
                 lambda: verbs.classify("Say {t}", LABELS, output="mood", kwargs={}), id="classify-output"),
    pytest.param({"schema": SCHEMA}, lambda: verbs.extract("Say {t}", SCHEMA, kwargs={}), id="extract"),
    pytest.param({"labels": LABELS, "kwargs": {"max_tokens": 12}},
                 lambda: verbs.classify("Say {t}", LABELS, max_tokens=12, kwargs={}), id="classify-max-tokens"),
])
def test_an_estimate_prices_exactly_the_requests_its_verb_sends(table, priced, sent: Callable[[], verbs.Verb]):
    rows = table(frame(6))
    estimate = verbs.estimate("Say {t}", **{"kwargs": {}, **priced})
    verb = sent()
    assert estimate.kind == verb.kind
    assert estimate.prepare(rows).plan.row_keys == verb.prepare(rows).plan.row_keys


def test_the_verbs_send_the_same_requests_whatever_library_holds_the_rows():
    df = frame(5)
    for verb in (verbs.batch("Say {t}", kwargs={"max_tokens": 9}), verbs.classify("Say {t}", LABELS, kwargs={}),
                 verbs.extract("Say {t}", SCHEMA, prefix="llm_", kwargs={})):
        keys = verb.prepare(df).plan.row_keys
        assert verb.prepare(pl.from_pandas(df)).plan.row_keys == keys
        assert len(set(keys)) == 5


def test_classify_and_extract_caps_and_format_are_those_of_the_spec():
    classify = verbs.classify("Say {t}", LABELS, kwargs={})
    extract = verbs.extract("Say {t}", SCHEMA, prefix="llm_", kwargs={})
    assert classify.options.params.max_tokens == CLASSIFY_MAX_TOKENS == 256
    assert extract.options.params.max_tokens == batchkit.DEFAULT_MAX_TOKENS
    assert extract.output == "llm_score"
    for verb in (classify, extract):
        assert verb.options.params.extra["output_config"]["format"]["type"] == "json_schema"
        assert verb.options.run.max_invalid_retries == 1


def test_a_format_of_the_callers_own_is_refused_by_every_structured_verb():
    own = {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
    for make in (lambda: verbs.classify("{t}", LABELS, kwargs=own), lambda: verbs.extract("{t}", SCHEMA, kwargs=own),
                 lambda: verbs.estimate("{t}", labels=LABELS, kwargs=own)):
        with pytest.raises(InvalidOptionError, match="sets output_config\\['format'\\] itself"):
            make()


@pytest.mark.parametrize("series", [
    pytest.param(lambda: frame(3)["t"], id="pandas"),
    pytest.param(lambda: dd.from_pandas(frame(3), npartitions=1)["t"], id="dask"),
])
def test_a_keyword_a_method_does_not_take_is_refused_by_name_not_bound(series):
    with pytest.raises(UnknownOptionError) as caught:
        series().claude.estimate("Say {}", labels=LABELS)
    assert caught.value.option == "labels"


def test_dask_estimate_still_checks_a_sample_given_among_its_options():
    ddf = dd.from_pandas(frame(3), npartitions=1)
    with pytest.raises(InvalidOptionError, match="sample must be a whole number of at least 1"):
        ddf.claude.estimate("Say {t}", sample=0)
