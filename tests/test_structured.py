"""Structured outputs: label sets and typed extraction (pure parts, then end to end)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal, Optional

import orjson
import pandas as pd
import pydantic
import pytest

from batchkit.errors import ConfigurationError
from batchkit.structured import classify_spec, extract_spec


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


def test_multi_label_gives_lists():
    spec = classify_spec(["a", "b", "c"], multi=True)
    assert spec.check('{"labels": ["a", "c"]}') is None
    assert spec.check('{"labels": ["a", "z"]}') is not None
    frame = spec.frame(['{"labels": ["a", "c"]}'], pd.RangeIndex(1))
    assert frame["label"].iloc[0] == ["a", "c"]


@pytest.mark.parametrize("labels", [[], "pos,neg", ["a", "a"], None])
def test_bad_label_sets_are_refused(labels):
    with pytest.raises(ConfigurationError):
        classify_spec(labels)


class Size(enum.Enum):
    small = "small"
    large = "large"


class Company(pydantic.BaseModel):
    sector: str
    founded: Optional[int]
    revenue: float
    public: bool
    listed_on: dt.date
    size: Size
    kind: Literal["b2b", "b2c"]
    tags: list[str]


def test_extract_types_every_field_with_a_nullable_dtype():
    spec = extract_spec(Company, prefix="co_")
    answers = [
        orjson.dumps({"sector": "Tech", "founded": 1998, "revenue": 2.5, "public": True, "listed_on": "2004-08-19",
                      "size": "large", "kind": "b2c", "tags": ["search"]}).decode(),
        orjson.dumps({"sector": "Energy", "founded": None, "revenue": 1, "public": False, "listed_on": "1990-01-02",
                      "size": "small", "kind": "b2b", "tags": []}).decode(),
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


def test_bad_schema_is_refused():
    with pytest.raises(ConfigurationError, match="pydantic model class or a dict"):
        extract_spec(["sector"])
    with pytest.raises(ConfigurationError, match="identifiers"):
        extract_spec({"not valid": str})
