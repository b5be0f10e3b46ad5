"""batchkit.frontends.verbs: each verb means the same through every front end.

The front ends keep explicit signatures (for ``help()`` and IDEs); these tests hold every one to
pandas' ``df.claude`` (keywords, order, defaults; only the documented differences allowed) and
:mod:`batchkit.frontends.verbs` to the same keywords, so a default changed in one place cannot drift from
the others. Then what the shared spec decides: which requests a verb sends, and that an estimate
prices exactly those.
"""

from __future__ import annotations

import inspect
from typing import Any

import dask.dataframe as dd
import pandas as pd
import polars as pl
import pytest

import batchkit
from batchkit import InvalidOptionError, UnknownOptionError
from batchkit.core.options import CLASSIFY_MAX_TOKENS
from batchkit.frontends import verbs
from batchkit.frontends.dask import DaskFrameAccessor, DaskSeriesAccessor
from batchkit.frontends.pandas import ClaudeFrameAccessor, ClaudeSeriesAccessor
from batchkit.frontends.polars import DEFAULT_PARTITION_ROWS, ClaudeFrame, ClaudeLazyFrame
from tests.conftest import frame

VERBS = ("batch", "submit", "estimate", "classify", "extract")
LABELS = ["negative", "positive"]
SCHEMA = {"score": int, "topic": str}
ESTIMATE_OWN = ("typical_output_tokens", "hit_rate", "sample")


def _keywords(cls: type, verb: str) -> list[tuple[str, Any, Any]]:
    """A method's parameters after ``self`` as (name, kind, default)."""
    params = list(inspect.signature(getattr(cls, verb)).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def _changed(
    reference: list[tuple[str, Any, Any]],
    *,
    drop: tuple[str, ...] = (),
    output: Any = "same",
    extra: tuple[tuple[str, Any], ...] = (),
) -> list[tuple[str, Any, Any]]:
    """The reference with a front end's documented differences: keywords it does not take, the
    Series' ``output=None`` (its own name), keywords of its own before ``**kwargs``."""
    out = [(n, k, output if n == "output" and output != "same" else d) for n, k, d in reference if n not in drop]
    own = [(n, inspect.Parameter.KEYWORD_ONLY, d) for n, d in extra]
    return out[:-1] + own + out[-1:]


LAZY = (("partition_rows", DEFAULT_PARTITION_ROWS),)
PARQUET = (("to_parquet", None),)

# Each front end's methods and how their keywords may differ from pandas' df.claude — and only so.
FRONT_ENDS: dict[str, tuple[type, dict[str, dict[str, Any]]]] = {
    "pandas Series": (
        ClaudeSeriesAccessor,
        {
            "batch": {"output": None},
            "submit": {"output": None},
            "estimate": {"output": None, "drop": ("labels", "schema")},
        },
    ),
    "polars DataFrame": (ClaudeFrame, {v: {} for v in VERBS}),
    "polars LazyFrame": (
        ClaudeLazyFrame,
        {
            "batch": {"extra": LAZY},
            "submit": {"extra": LAZY},
            "classify": {"extra": LAZY},
            "extract": {"extra": LAZY},
            "estimate": {},
        },
    ),
    "dask DataFrame": (
        DaskFrameAccessor,
        {
            "batch": {"extra": PARQUET},
            "submit": {},
            "classify": {"extra": PARQUET},
            "extract": {"extra": PARQUET},
            "estimate": {"drop": ("sample",)},
        },
    ),
    "dask Series": (
        DaskSeriesAccessor,
        {
            "batch": {"output": None},
            "submit": {"output": None},
            "estimate": {"output": None, "drop": ("sample", "labels", "schema")},
        },
    ),
}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_front_end_takes_the_keywords_and_defaults_of_df_claude(front_end):
    cls, differences = FRONT_ENDS[front_end]
    for verb, difference in differences.items():
        assert _keywords(cls, verb) == _changed(_keywords(ClaudeFrameAccessor, verb), **difference), (
            f"{front_end}.{verb}"
        )
        assert getattr(cls, verb).__doc__, f"{front_end}.{verb} has no docstring for help()"


@pytest.mark.parametrize("verb", VERBS)
def test_the_shared_verb_takes_every_keyword_of_df_claude_by_name(verb):
    shared = inspect.signature(getattr(verbs, verb)).parameters
    public = [name for name, _, _ in _keywords(ClaudeFrameAccessor, verb)]
    own = ESTIMATE_OWN if verb == "estimate" else ()
    assert [n for n in shared if n not in ("own",)] == [n for n in public if n not in own]
    assert all(p.default is inspect.Parameter.empty for p in shared.values() if p.name not in ("labels", "schema")), (
        "the defaults are the public signature's only"
    )


def test_a_front_end_verb_shows_its_keywords_to_help_not_only_kwargs():
    shown = inspect.signature(ClaudeFrame.classify)
    assert {"labels", "output", "multi", "reasoning", "max_invalid_retries", "max_tokens"} <= set(shown.parameters)
    assert shown.parameters["max_tokens"].default == CLASSIFY_MAX_TOKENS == 256


def _as_called(verb: str, *args: Any, **kw: Any) -> verbs.Verb:
    """The Verb of ``df.claude.<verb>(*args, **kw)``: the call bound to the public signature,
    its defaults applied, handed to the shared verb as the accessors hand it."""
    bound = inspect.signature(getattr(ClaudeFrameAccessor, verb)).bind(None, *args, **kw)
    bound.apply_defaults()
    given = dict(bound.arguments)
    del given["self"]
    rest = given.pop("kwargs")
    return getattr(verbs, verb)(**given, kwargs=rest)


@pytest.mark.parametrize(
    "table",
    [
        pytest.param(lambda df: df, id="pandas"),
        pytest.param(lambda df: pl.from_pandas(df), id="polars"),
        pytest.param(lambda df: {"t": df["t"].tolist()}, id="mapping"),
    ],
)
@pytest.mark.parametrize(
    ("priced", "verb", "sent"),
    [
        pytest.param({}, "batch", {}, id="batch"),
        pytest.param({"labels": LABELS}, "classify", {"labels": LABELS}, id="classify"),
        pytest.param(
            {"labels": LABELS, "output": "mood"}, "classify", {"labels": LABELS, "output": "mood"}, id="classify-output"
        ),
        pytest.param({"schema": SCHEMA}, "extract", {"schema": SCHEMA}, id="extract"),
        pytest.param(
            {"labels": LABELS, "max_tokens": 12}, "classify", {"labels": LABELS, "max_tokens": 12}, id="classify-cap"
        ),
        pytest.param({"labels": LABELS, "schema": SCHEMA}, "classify", {"labels": LABELS}, id="labels-win"),
    ],
)
def test_an_estimate_prices_exactly_the_requests_its_verb_sends(table, priced, verb, sent):
    rows = table(frame(6))
    estimate = _as_called("estimate", "Say {t}", **priced)
    call = _as_called(verb, "Say {t}", **sent)
    assert estimate.kind == call.kind
    assert estimate.prepare(rows).plan.row_keys == call.prepare(rows).plan.row_keys


def test_the_verbs_send_the_same_requests_whatever_library_holds_the_rows():
    df = frame(5)
    for verb in (
        _as_called("batch", "Say {t}", max_tokens=9),
        _as_called("classify", "Say {t}", LABELS),
        _as_called("extract", "Say {t}", SCHEMA, prefix="llm_"),
    ):
        keys = verb.prepare(df).plan.row_keys
        assert verb.prepare(pl.from_pandas(df)).plan.row_keys == keys
        assert len(set(keys)) == 5


def test_classify_and_extract_caps_and_format_are_those_of_the_spec():
    classify = _as_called("classify", "Say {t}", LABELS)
    extract = _as_called("extract", "Say {t}", SCHEMA, prefix="llm_")
    assert classify.options.params.max_tokens == CLASSIFY_MAX_TOKENS == 256
    assert extract.options.params.max_tokens == batchkit.DEFAULT_MAX_TOKENS
    assert extract.output == "llm_score"
    for verb in (classify, extract):
        assert verb.options.params.extra["output_config"]["format"]["type"] == "json_schema"
        assert verb.options.run.max_invalid_retries == 1


def test_a_format_of_the_callers_own_is_refused_by_every_structured_verb():
    own = {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
    for call in (
        lambda: _as_called("classify", "{t}", LABELS, **own),
        lambda: _as_called("extract", "{t}", SCHEMA, **own),
        lambda: _as_called("estimate", "{t}", labels=LABELS, **own),
    ):
        with pytest.raises(InvalidOptionError, match="sets output_config\\['format'\\] itself"):
            call()


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(lambda: frame(3)["t"], id="pandas"),
        pytest.param(lambda: dd.from_pandas(frame(3), npartitions=1)["t"], id="dask"),
    ],
)
def test_a_keyword_a_method_does_not_take_is_refused_by_name_not_bound(series):
    with pytest.raises(UnknownOptionError) as caught:
        series().claude.estimate("Say {}", labels=LABELS)
    assert caught.value.option == "labels"


def test_dask_estimate_still_checks_a_sample_given_among_its_options():
    ddf = dd.from_pandas(frame(3), npartitions=1)
    with pytest.raises(InvalidOptionError, match="sample must be a whole number of at least 1"):
        ddf.claude.estimate("Say {t}", sample=0)


@pytest.mark.parametrize(
    ("name", "output", "column", "named"),
    [
        ("review", None, "review", "review"),
        ("review", "summary", "review", "summary"),
        (None, None, "__value__", "response"),
        (3, None, "__value__", "3"),
    ],
)
def test_a_series_reads_its_values_and_names_its_output_by_one_rule(name, output, column, named):
    assert (verbs.series_column(name), verbs.series_output(name, output)) == (column, named)
    if isinstance(name, str):  # "{name}" reads the values as "{}" does, in pandas and in Dask
        series = pd.Series(["a", "b"], name=name)
        for s in (series, dd.from_pandas(series, npartitions=1)):
            assert s.claude.estimate(f"Say {{{name}}}").input_tokens == s.claude.estimate("Say {}").input_tokens
