"""Structured outputs: label sets and typed extraction (pure parts, then end to end)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

import pandas as pd
import pydantic
import pytest

from batchkit.core import _json
from batchkit.core.structured import classify_spec, extract_spec
from batchkit.errors import ConfigurationError


def test_classify_schema_is_an_enum_of_exactly_the_labels():
    spec = classify_spec(["neg", "neu", "pos"], output="sentiment")
    assert spec.schema["properties"]["label"] == {"type": "string", "enum": ["neg", "neu", "pos"]}
    assert spec.schema["additionalProperties"] is False
    assert spec.check('{"label": "pos"}') is None
    assert "not one of" in spec.check('{"label": "great"}')
    assert "not JSON" in spec.check('{"label": "pos"')
    assert "missing 'label'" in spec.check("{}")


def test_classify_column_is_categorical_in_the_given_order_with_na_for_invalid():
    spec = classify_spec(["positive", "negative"], output="s", reasoning=True)
    frame = spec.frame(['{"reasoning": "r1", "label": "negative"}', None], pd.Index([5, 6]))
    assert list(frame.columns) == ["s", "s_reasoning"]
    assert list(frame["s"].cat.categories) == ["positive", "negative"]
    assert frame["s"].iloc[0] == "negative" and pd.isna(frame["s"].iloc[1])
    assert frame["s_reasoning"].dtype == "string"


def test_values_give_each_output_columns_parsed_fields_without_pandas():
    spec = extract_spec({"city": str, "year": int}, prefix="llm_")
    values = spec.values(['{"city": "Oslo", "year": 1048}', None, '{"city": "Rome", "year": null}'])
    assert values == {"llm_city": ["Oslo", None, "Rome"], "llm_year": [1048, None, None]}
    labels = classify_spec(["a", "b"], output="s", reasoning=True).values(['{"reasoning": "r", "label": "b"}'])
    assert labels == {"s": ["b"], "s_reasoning": ["r"]}


def test_multi_label_gives_lists():
    spec = classify_spec(["a", "b", "c"], multi=True)
    assert spec.check('{"labels": ["a", "c"]}') is None
    assert spec.check('{"labels": ["a", "z"]}') is not None
    frame = spec.frame(['{"labels": ["a", "c"]}'], pd.RangeIndex(1))
    assert frame["label"].iloc[0] == ["a", "c"]


@pytest.mark.parametrize("labels", [[], "pos,neg", ["a", "a"], None, [1, 2], ["only"], ["a", ""]])
def test_bad_label_sets_are_refused(labels):
    with pytest.raises(ConfigurationError):
        classify_spec(labels)


def test_labels_are_never_converted_silently():
    with pytest.raises(TypeError, match=r"labels=\['1', '2'\]"):  # also a ConfigurationError
        classify_spec([1, 2])
    assert classify_spec(("b", "a")).labels == ("b", "a")  # any sequence of strings, order kept


@pytest.mark.parametrize("annotation", [complex, object, dict, list, set, bytes, dict[str, int], list[complex]])
def test_types_that_cannot_be_typed_are_refused_with_the_supported_list(annotation):
    with pytest.raises(ConfigurationError, match="Supported: str, int, float, bool"):
        extract_spec({"x": annotation})


def test_supported_types_nest():
    class Inner(pydantic.BaseModel):
        when: dt.date | None
        kind: Literal["a", "b"]

    spec = extract_spec({"inner": Inner, "tags": list[str], "size": Size | None, "n": int | None})
    assert [c for c, _ in spec.columns] == ["inner", "tags", "size", "n"]


class Size(enum.Enum):
    small = "small"
    large = "large"


class Company(pydantic.BaseModel):
    sector: str
    founded: int | None
    revenue: float
    public: bool
    listed_on: dt.date
    size: Size
    kind: Literal["b2b", "b2c"]
    tags: list[str]


def test_extract_types_every_field_with_a_nullable_dtype():
    spec = extract_spec(Company, prefix="co_")
    answers = [
        _json.dumps(
            {
                "sector": "Tech",
                "founded": 1998,
                "revenue": 2.5,
                "public": True,
                "listed_on": "2004-08-19",
                "size": "large",
                "kind": "b2c",
                "tags": ["search"],
            }
        ).decode(),
        _json.dumps(
            {
                "sector": "Energy",
                "founded": None,
                "revenue": 1,
                "public": False,
                "listed_on": "1990-01-02",
                "size": "small",
                "kind": "b2b",
                "tags": [],
            }
        ).decode(),
        None,
    ]
    for a in answers[:2]:
        assert spec.check(a) is None
    frame = spec.frame(answers, pd.RangeIndex(3))
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    assert dtypes["co_sector"] == "string"
    assert dtypes["co_founded"] == "Int64"
    assert dtypes["co_revenue"] == "Float64"
    assert dtypes["co_public"] == "boolean"
    assert dtypes["co_listed_on"].startswith("datetime64")
    assert dtypes["co_size"] == "category" and list(frame["co_size"].cat.categories) == ["small", "large"]
    assert dtypes["co_kind"] == "category"
    assert dtypes["co_tags"] == "object"
    assert frame["co_founded"].tolist()[:2] == [1998, pd.NA] or pd.isna(frame["co_founded"].iloc[1])
    assert frame.iloc[2].isna().all()


def test_extract_from_a_dict_and_strict_schema():
    spec = extract_spec({"sector": str, "city": str, "year": int})
    assert spec.schema["required"] == ["sector", "city", "year"]
    assert spec.schema["additionalProperties"] is False
    assert "should be integer" in spec.check('{"sector": "x", "city": "y", "year": "2013 (1888)"}')
    assert spec.check('{"sector": "x", "city": "y", "year": 2013}') is None
    assert "unexpected" in spec.check('{"sector": "x", "city": "y", "year": 1, "z": 0}')


class Genre(enum.Enum):  # values that are schema keywords too
    type = "type"
    title = "title"


Edition = pydantic.create_model("default", title=(str, ...), default=(int | None, None))  # $defs key "default"


class Book(pydantic.BaseModel):
    """Fields named like JSON-schema keywords, at the top level and nested."""

    title: str
    default: int = 0
    description: str = pydantic.Field(description="one sentence")
    type: Literal["title", "default", "properties"]
    properties: list[Edition]
    required: bool
    enum: Genre
    ref: str = pydantic.Field(alias="$ref")
    items: dt.date
    anyOf: Edition | None


BOOK_FIELDS = ["title", "default", "description", "type", "properties", "required", "enum", "$ref", "items", "anyOf"]


def test_fields_named_like_schema_keywords_stay_in_the_schema():
    spec = extract_spec(Book)
    assert list(spec.schema["properties"]) == BOOK_FIELDS
    assert spec.schema["required"] == BOOK_FIELDS
    assert "title" not in spec.schema and "title" not in spec.schema["properties"]["title"]  # keywords still go
    edition = spec.schema["$defs"]["default"]
    assert list(edition["properties"]) == ["title", "default"] and edition["required"] == ["title", "default"]
    assert spec.schema["properties"]["type"]["enum"] == ["title", "default", "properties"]
    assert spec.schema["properties"]["description"]["description"] == "one sentence"
    assert [c for c, _ in spec.columns] == BOOK_FIELDS
    answer = {
        "title": "Dune",
        "default": 2,
        "description": "sand",
        "type": "title",
        "properties": [{"title": "first", "default": None}],
        "required": True,
        "enum": "type",
        "$ref": "x",
        "items": "1965-08-01",
        "anyOf": None,
    }
    assert spec.check(_json.dumps(answer).decode()) is None
    assert "missing 'title'" in spec.check(_json.dumps({k: v for k, v in answer.items() if k != "title"}).decode())
    assert "missing 'default'" in spec.check(_json.dumps({**answer, "properties": [{"title": "t"}]}).decode())


def test_any_identifier_is_a_field_name_in_a_dict_schema():
    names = ["title", "default", "_private", "json", "model_config", "field_0"]
    spec = extract_spec(dict.fromkeys(names, int))  # no pydantic warning either: warnings are errors here
    assert list(spec.schema["properties"]) == names and spec.schema["required"] == names
    assert spec.check(_json.dumps(dict.fromkeys(names, 1)).decode()) is None
    frame = spec.frame([_json.dumps(dict.fromkeys(names, 7)).decode()], pd.RangeIndex(1))
    assert list(frame.columns) == names and (frame.dtypes == "Int64").all() and (frame.iloc[0] == 7).all()


def test_bad_schema_is_refused():
    with pytest.raises(ConfigurationError, match="pydantic model class or a dict"):
        extract_spec(["sector"])
    with pytest.raises(ConfigurationError, match="identifiers"):
        extract_spec({"not valid": str})


# --------------------------------------------------------------------------- end to end on the simulator

import hashlib  # noqa: E402

import batchkit  # noqa: E402
from batchkit import BatchkitWarning  # noqa: E402
from batchkit.simulator import Processing, SimConfig, Simulator, default_responder  # noqa: E402
from tests.conftest import DATA  # noqa: E402


def sim_client(responder=None):
    return Simulator(config=SimConfig(processing=Processing.instant()), responder=responder).client()


def test_classifying_tweets_gives_only_the_labels_and_accounts_for_every_row():
    tweets = pd.read_csv(DATA / "tweeteval_sentiment_val.csv")
    labels = ["negative", "neutral", "positive"]
    out = tweets.claude.classify(
        "Sentiment of this tweet: {text}", labels=labels, output="sentiment", client=sim_client(), poll_interval=0.01
    )
    assert isinstance(out["sentiment"].dtype, pd.CategoricalDtype)
    assert list(out["sentiment"].cat.categories) == labels
    assert out["sentiment"].notna().all() and set(out["sentiment"].unique()) <= set(labels)
    job = batchkit.Job.load(batchkit.jobs()["job_id"].iloc[0])
    assert job.summary().by_status == {"succeeded": len(tweets)}


def _share(params, salt):
    digest = hashlib.blake2b((salt + str(params["messages"])).encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big") / 65536


def flaky(params, attempt=1):
    """Off-schema for ~15% of rows on the first try, a long ramble that truncates for ~5%."""
    share = _share(params, "x")
    if share < 0.05:
        return {"reasoning": "because " * 400, "label": "positive"}
    if attempt == 1 and share < 0.20:
        return {"reasoning": "sure", "label": "very positive"} if share < 0.12 else "I think it is positive"
    return {"reasoning": "short", "label": "negative" if _share(params, "y") < 0.5 else "positive"}


def test_off_schema_answers_are_caught_retried_and_truncated_ones_reported():
    df = pd.DataFrame({"text": [f"tweet number {i}" for i in range(300)]})
    client = sim_client(flaky)
    with pytest.warns(BatchkitWarning, match="truncated"):
        out = df.claude.classify(
            "{text}", labels=["negative", "positive"], reasoning=True, max_tokens=60, client=client, poll_interval=0.01
        )
    job = batchkit.Job.load(batchkit.jobs()["job_id"].iloc[0], client=client)
    outcomes = job.outcomes()
    retried = outcomes["attempts"] == 2
    assert 20 < retried.sum() < 80  # the off-schema first answers, sent again once
    assert (outcomes.loc[retried, "status"] == "succeeded").all()
    truncated = outcomes["status"] == "truncated"
    assert 3 < truncated.sum() < 40
    assert (
        out["classification"][truncated.to_numpy()].isna().all()
        and out["classification"][~truncated.to_numpy()].notna().all()
    )
    job.retry(truncated=True, max_tokens=2000)
    assert (job.outcomes()["status"] == "succeeded").all()
    assert job.to_frame(df)["classification"].notna().all()


def test_invalid_answers_that_stay_invalid_end_invalid_output_with_the_reason():
    df = pd.DataFrame({"text": ["a", "b"]})
    client = sim_client(lambda params: {"label": "maybe"})
    with pytest.warns(BatchkitWarning, match="invalid_output"):
        out = df.claude.classify("{text}", labels=["yes", "no"], client=client, poll_interval=0.01)
    assert out["classification"].isna().all()
    outcomes = batchkit.Job.load(batchkit.jobs()["job_id"].iloc[0], client=client).outcomes()
    assert (outcomes["status"] == "invalid_output").all() and (outcomes["attempts"] == 2).all()
    assert outcomes["error_message"].str.contains("'maybe', not one of").all()


def test_multi_label_and_reasoning_through_the_pipeline():
    df = pd.DataFrame({"text": ["x", "y", "z"]})
    client = sim_client()
    out = df.claude.classify("{text}", labels=["a", "b", "c"], multi=True, client=client, poll_interval=0.01)
    assert all(isinstance(v, list) and set(v) <= {"a", "b", "c"} for v in out["classification"])
    out = df.claude.classify("{text}", labels=["a", "b"], reasoning=True, client=client, poll_interval=0.01)
    assert out["classification_reasoning"].dtype == "string" and out["classification"].notna().all()


def test_extracting_sp500_facts_gives_typed_columns():
    companies = pd.read_csv(DATA / "sp500_constituents.csv").head(120)
    out = companies.claude.extract(
        "Company: {Security}. Give its GICS sector, headquarters city and founding year.",
        schema={"sector": str, "hq_city": str, "founded": int},
        prefix="llm_",
        client=sim_client(),
        poll_interval=0.01,
    )
    assert str(out["llm_sector"].dtype) == "string" and str(out["llm_hq_city"].dtype) == "string"
    assert str(out["llm_founded"].dtype) == "Int64"
    assert out[["llm_sector", "llm_hq_city", "llm_founded"]].notna().all().all()
    assert list(out.columns[:8]) == list(companies.columns)
    job = batchkit.Job.of(out)
    values = job.output_values()  # what a front end other than pandas types the columns from
    assert list(values) == ["llm_sector", "llm_hq_city", "llm_founded"]
    assert values["llm_founded"] == out["llm_founded"].tolist() and all(type(v) is int for v in values["llm_founded"])
    assert set(job.statuses()) == {"succeeded"}


def test_extracting_fields_named_like_schema_keywords_gives_every_column_typed():
    sent = []

    def responder(params):
        sent.append(params["output_config"]["format"]["schema"])
        return default_responder(params)

    books = pd.DataFrame({"text": ["Dune by Frank Herbert", "Emma by Jane Austen", "Ulysses by James Joyce"]})
    client = sim_client(responder)
    out = books.claude.extract("Book: {text}", schema=Book, prefix="b_", client=client, poll_interval=0.01)
    assert len(sent) == 3  # the body is sent with sorted keys: compare the names, not their order
    assert all(sorted(schema["properties"]) == sorted(schema["required"]) == sorted(BOOK_FIELDS) for schema in sent)
    assert list(out.columns) == ["text"] + [f"b_{name}" for name in BOOK_FIELDS]
    assert set(batchkit.Job.of(out).statuses()) == {"succeeded"}
    assert out.notna().all().all()
    dtypes = {c: str(t) for c, t in out.dtypes.items()}
    assert dtypes["b_title"] == dtypes["b_description"] == dtypes["b_$ref"] == "string"
    assert dtypes["b_default"] == "Int64" and dtypes["b_required"] == "boolean"
    assert dtypes["b_items"].startswith("datetime64")
    assert list(out["b_type"].cat.categories) == ["title", "default", "properties"]
    assert list(out["b_enum"].cat.categories) == ["type", "title"]
    assert all(set(e) == {"title", "default"} for editions in out["b_properties"] for e in editions)
    assert all(set(e) == {"title", "default"} for e in out["b_anyOf"])
    dict_out = books.claude.extract(
        "Book: {text}", schema={"title": str, "default": int, "year": int}, client=client, poll_interval=0.01
    )
    assert [str(dict_out[c].dtype) for c in ("title", "default", "year")] == ["string", "Int64", "Int64"]
    assert dict_out[["title", "default", "year"]].notna().all().all()
