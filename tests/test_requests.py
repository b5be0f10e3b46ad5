"""Rendering prompts, keying requests and chunking them: pure, no network."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from batchkit.core import _json
from batchkit.core.keys import request_key
from batchkit.core.options import Options
from batchkit.core.plan import MAX_BATCH_REQUESTS, build_template, chunk_requests, make_line, plan_requests
from batchkit.core.render import parse_prompt, render_prompts
from batchkit.engine import calls
from batchkit.errors import (
    BatchkitWarning,
    CellError,
    ColumnCollisionError,
    ColumnLengthError,
    ConfigurationError,
    MissingColumnError,
    PromptError,
    RequestTooLargeError,
)


def template(**kw):
    return build_template(model=kw.pop("model", "claude-haiku-4-5"), max_tokens=kw.pop("max_tokens", 50), **kw)


def test_columns_with_spaces_and_literal_braces_render():
    df = pd.DataFrame({"movie review": ["great", "bad"], "n": [1, 2]})
    out = render_prompts(df, "Review #{n} {{json}}: {movie review}")
    assert out.texts == ["Review #1 {json}: great", "Review #2 {json}: bad"]


def test_unknown_column_names_it_and_lists_the_available_ones():
    df = pd.DataFrame({"review": ["x"], "stars": [5]})
    with pytest.raises(MissingColumnError) as info:
        render_prompts(df, "Rate {reveiw}")
    message = str(info.value)
    assert "'reveiw'" in message and "'review'" in message and "'stars'" in message
    assert info.value.column == "reveiw"
    assert isinstance(info.value, KeyError)


def test_missing_values_skip_the_row_with_a_reason_and_empty_strings_are_sent():
    df = pd.DataFrame(
        {"t": ["a", None, "", np.nan], "d": pd.to_datetime(["2024-01-02", "2024-01-03", None, "2024-01-05"])}
    )
    out = render_prompts(df, "{t} on {d}")
    assert out.texts[0] == "a on 2024-01-02"
    assert out.texts[1] is None and "'t'" in out.skipped[1]
    assert out.texts[2] is None and "'d'" in out.skipped[2]
    assert out.texts[3] is None
    df2 = pd.DataFrame({"t": ["", "x"]})
    assert render_prompts(df2, "[{t}]").texts == ["[]", "[x]"]


def test_cells_of_any_dtype_render_sensibly():
    df = pd.DataFrame(
        {
            "i": pd.array([1, 2], dtype="Int64"),
            "f": [0.5, 2.0],
            "b": [True, False],
            "ts": pd.to_datetime(["2024-05-01 13:45", "2024-05-02 00:00"]),
            "obj": [{"a": 1}, [1, 2]],
            "cat": pd.Categorical(["x", "y"]),
        }
    )
    out = render_prompts(df, "{i}|{f}|{b}|{ts}|{obj}|{cat}|{f:.1f}")
    assert out.texts[0] == '1|0.5|True|2024-05-01T13:45:00|{"a":1}|x|0.5'
    assert out.texts[1] == "2|2.0|False|2024-05-02|[1,2]|y|2.0"


def test_percent_signs_in_the_template_are_literal():
    df = pd.DataFrame({"x": ["a"]})
    assert render_prompts(df, "100% sure: {x} %s").texts == ["100% sure: a %s"]


def test_callable_prompt_and_none_skips():
    df = pd.DataFrame({"a": [1, 2, 3]})
    out = render_prompts(df, lambda row: None if row["a"] == 2 else f"value {row['a']}")
    assert out.texts == ["value 1", None, "value 3"]
    assert 1 in out.skipped
    with pytest.raises(PromptError, match="must return a string"):
        render_prompts(df, lambda row: 5)


def test_prompt_without_placeholder_warns_that_rows_collapse_to_one_request():
    df = pd.DataFrame({"a": [1, 2, 3]})
    with pytest.warns(BatchkitWarning, match="same prompt"):
        out = render_prompts(df, "Tell me a joke")
    plan = plan_requests(out, template())
    assert len(plan.lines) == 1 and len(set(plan.row_keys)) == 1


def test_conversions_other_than_r_s_a_are_refused():
    df = pd.DataFrame({"x": ["a"]})
    assert render_prompts(df, "{x!r}").texts == ["'a'"]
    with pytest.raises(PromptError, match=r"!z.*use !r"):
        render_prompts(df, "{x!z}")


def test_a_format_that_does_not_fit_a_cell_names_the_row_column_and_format():
    df = pd.DataFrame({"price": [1.5, "n/a", 2.0]})
    with pytest.raises(CellError, match=r"row 1, column 'price'.*\{price:\.2f\}") as info:
        render_prompts(df, "{price:.2f}")
    assert (info.value.row, info.value.column) == (1, "price")


def test_a_cell_nested_too_deep_is_named_not_a_recursion_error():
    deep: object = "x"
    for _ in range(5000):
        deep = {"k": deep}
    df = pd.DataFrame({"doc": pd.Series([{"k": 1}, deep], dtype=object)})
    with pytest.raises(CellError, match=r"row 1, column 'doc'.*nested too deep"):
        render_prompts(df, "{doc}")


def test_malformed_template_is_a_prompt_error():
    with pytest.raises(PromptError, match="literal braces"):
        parse_prompt("unclosed {brace", ["brace"])


def test_keys_are_content_hashes_that_meet_the_custom_id_rule():
    df = pd.DataFrame({"t": ["same", "other", "same"]})
    plan = plan_requests(render_prompts(df, "{t}"), template())
    assert plan.row_keys[0] == plan.row_keys[2] != plan.row_keys[1]
    assert len(plan.lines) == 2
    for key in plan.lines:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key)
    # The key depends on every param, not just the text.
    other = plan_requests(render_prompts(df, "{t}"), template(max_tokens=51))
    assert set(other.lines).isdisjoint(plan.lines)
    # And is reproducible: the same params in another order hash the same.
    key = plan.row_keys[0]
    body = plan.body(key)
    assert _json.loads(plan.lines[key]) == {"custom_id": key, "params": _json.loads(body)}
    assert request_key(_json.dumps_sorted(_json.loads(body))) == plan.row_keys[0]


def test_template_body_is_the_full_request_params():
    t = template(system=[{"type": "text", "text": "Be brief"}], stop_sequences=["\n"], metadata={"user_id": "u"})
    params = t.params('say "hi"')
    assert params == {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "Be brief"}],
        "stop_sequences": ["\n"],
        "metadata": {"user_id": "u"},
        "messages": [{"role": "user", "content": 'say "hi"'}],
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": 3}, "model must be"),
        ({"model": ""}, "model must be"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"temperature": 0.2}, "temperature"),
        ({"stream": True}, "stream"),
    ],
)
def test_bad_params_are_refused_before_anything_is_sent(kwargs, match):
    # The call's options are the one check (build_template trusts them).
    with pytest.raises(ConfigurationError, match=match):
        Options.build({"model": "claude-haiku-4-5", "max_tokens": 50, **kwargs})


def test_chunks_respect_count_and_byte_limits():
    lines = {f"k{i}": make_line(f"k{i}", b'{"x":"' + b"a" * 100 + b'"}') for i in range(25)}
    by_count = chunk_requests(lines, max_requests=10)
    assert [len(c.keys) for c in by_count] == [10, 10, 5]
    by_bytes = chunk_requests(lines, max_bytes=1000)
    assert all(len(c.body) <= 1000 for c in by_bytes)
    assert sum(len(c.keys) for c in by_bytes) == 25
    body = _json.loads(by_bytes[0].body)
    assert body["requests"][0]["custom_id"] == "k0"
    assert body["requests"][0]["params"] == {"x": "a" * 100}


def test_a_request_larger_than_a_batch_is_refused():
    with pytest.raises(RequestTooLargeError, match="more than a whole batch"):
        chunk_requests({"k": make_line("k", b'"' + b"a" * 2000 + b'"')}, max_bytes=1000)
    with pytest.raises(ConfigurationError, match="100,000"):
        chunk_requests({"k": b"{}"}, max_requests=MAX_BATCH_REQUESTS + 1)


# --------------------------------------------------------------------------- plain columns (front ends)


def _keys(table, prompt, **kw):
    """The request key of every row, as the core plans it for ``table``."""
    return plan_requests(render_prompts(table, prompt, **kw), template()).row_keys


def _parquet_pair(tmp_path):
    """The same rows read from one Parquet file by pandas and by Polars."""
    import polars as pl

    path = tmp_path / "rows.parquet"
    pl.DataFrame(
        {
            "text": ["great film", None, "dull", "ok", ""],
            "n": [1, 2, 3, 4, 5],
            "score": [0.5, float("nan"), 2.25, None, 1e-7],
            "seen": [
                dt.datetime(2024, 1, 2),
                dt.datetime(2024, 1, 3, 4, 5, 6),
                None,
                dt.datetime(2024, 2, 1, 0, 0, 0, 500),
                dt.datetime(2024, 3, 1),
            ],
            "day": [dt.date(2024, 1, 2)] * 5,
            "flag": [True, False, None, True, False],
        }
    ).write_parquet(path)
    return pd.read_parquet(path), pl.read_parquet(path)


PROMPT = "Review {text} (#{n}, score {score}, seen {seen} on {day}, flag {flag})"


def test_polars_columns_key_like_the_same_rows_in_pandas_so_moving_over_pays_nothing(tmp_path):
    pdf, pldf = _parquet_pair(tmp_path)
    pandas_keys = _keys(pdf, PROMPT)
    assert pandas_keys[0] is not None and pandas_keys[1] is None  # a null text skips its row
    assert _keys({name: pldf[name] for name in pldf.columns}, PROMPT) == pandas_keys
    assert _keys(pldf, PROMPT) == pandas_keys  # a whole polars DataFrame too
    assert _keys(pldf.to_arrow(), PROMPT) == pandas_keys  # a pyarrow Table
    assert _keys({c: pldf[c].to_arrow() for c in pldf.columns}, PROMPT) == pandas_keys
    chunked = {c: pa.chunked_array([pldf[c].to_arrow()[:2], pldf[c].to_arrow()[2:]]) for c in pldf.columns}
    assert _keys(chunked, PROMPT) == pandas_keys
    assert _keys({c: pdf[c] for c in pdf.columns}, PROMPT) == pandas_keys  # pandas Series in a dict
    assert _keys({c: pdf[c].to_numpy() for c in pdf.columns}, PROMPT) == pandas_keys
    out = render_prompts(pldf, PROMPT)
    assert out.texts[0] == "Review great film (#1, score 0.5, seen 2024-01-02 on 2024-01-02, flag True)"
    assert out.texts[3] is None and out.texts[4] == (
        "Review  (#5, score 1e-07, seen 2024-03-01 on 2024-01-02, flag False)"
    )  # "" is sent as it is
    assert set(out.skipped) == {1, 2, 3} == set(render_prompts(pdf, PROMPT).skipped)


def test_plain_lists_and_numpy_arrays_render_and_key_like_a_frame_of_them():
    columns = {"t": ["a", "b", "a", "c"], "n": np.array([1, 2, 1, 3]), "x": np.array([0.5, 1.0, 0.5, 2.0])}
    keys = _keys(columns, "{t}/{n}/{x:.1f}")
    assert keys == _keys(pd.DataFrame(columns), "{t}/{n}/{x:.1f}")
    assert keys[0] == keys[2] and len(set(keys)) == 3  # a repeated row is one request
    assert render_prompts(columns, "{t}/{n}/{x:.1f}").texts == ["a/1/0.5", "b/2/1.0", "a/1/0.5", "c/3/2.0"]
    when = np.array(["2024-01-02", "NaT", "2024-01-02T03:04"], dtype="datetime64[ns]")
    out = render_prompts({"d": when}, "on {d}")
    assert out.texts == ["on 2024-01-02", None, "on 2024-01-02T03:04:00"] and set(out.skipped) == {1}


@pytest.mark.parametrize(
    "column",
    [
        ["a", None, "c", float("nan"), pd.NA, pd.NaT],
        np.array(["a", None, "c", np.nan, pd.NA, pd.NaT], dtype=object),
        pd.Series(["a", None, "c", None, None, None], dtype="string"),
        pa.array(["a", None, "c", None, None, None]),
        pa.chunked_array([["a", None], ["c", None, None, None]]),
        pl.Series(["a", None, "c", None, None, None]),
    ],
    ids=["list", "numpy", "pandas", "pyarrow", "pyarrow-chunked", "polars"],
)
def test_every_librarys_missing_values_skip_the_row_never_send_a_blank(column):
    out = render_prompts({"t": column}, "Say {t}")
    assert out.texts == ["Say a", None, "Say c", None, None, None]
    assert out.skipped == {i: "missing value in column 't'" for i in (1, 3, 4, 5)}


@pytest.mark.parametrize(
    "column",
    [
        pa.array([1.5, None, float("nan")]),
        pl.Series([1.5, None, float("nan")]),
        np.array([1.5, np.nan, np.nan]),
    ],
    ids=["pyarrow", "polars", "numpy"],
)
def test_nan_in_a_float_column_is_missing_as_in_pandas(column):
    out = render_prompts({"x": column}, "{x}")
    assert out.texts == ["1.5", None, None] and set(out.skipped) == {1, 2}


def test_cells_holding_lists_and_dicts_render_as_json_from_a_plain_list():
    out = render_prompts({"t": [[1, 2], None, {"a": "é"}, []]}, "{t}")
    assert out.texts == ["[1,2]", None, '{"a":"é"}', "[]"]


def test_a_callable_prompt_gets_each_row_as_a_mapping_with_none_for_missing_values():
    from collections.abc import Mapping

    seen = []

    def prompt(row):
        seen.append(row)
        return None if row["t"] is None else f"{row['t']} ×{row['n']}"

    out = render_prompts({"t": pl.Series(["a", None, "b"]), "n": [1, 2, 3]}, prompt)
    assert out.texts == ["a ×1", None, "b ×3"] and out.skipped == {1: "the prompt function returned None"}
    assert all(isinstance(row, Mapping) for row in seen) and list(seen[0]) == ["t", "n"]
    frame_rows = []
    render_prompts(pd.DataFrame({"t": ["a"]}), lambda row: frame_rows.append(row) or "x")
    assert isinstance(frame_rows[0], pd.Series)  # a pandas frame's rows stay Series, as before
    assert _keys({"t": ["a", "b"]}, lambda row: row["t"]) == _keys(
        pd.DataFrame({"t": ["a", "b"]}), lambda row: row["t"]
    )


def test_a_callable_prompt_that_raises_names_the_row_and_the_columns_of_a_mapping():
    with pytest.raises(PromptError, match=r"raised KeyError .* on row 0.*Columns a row has: 'text'"):
        render_prompts({"text": ["a"]}, lambda row: row["txt"])


def test_an_unknown_column_of_a_mapping_lists_the_ones_it_has():
    with pytest.raises(MissingColumnError, match=r"'reveiw'.*Available columns: 'review', 'stars'"):
        render_prompts({"review": ["x"], "stars": pl.Series([5])}, "Rate {reveiw}")


def test_prepare_takes_a_mapping_with_the_same_keys_cache_layout_and_checks_as_a_frame():
    lead = "You grade customer reviews for a retailer. " * 400  # past the model's minimum cacheable length
    texts = [f"review {i}" for i in range(50)]
    kw = {"output": "o", "model": "claude-haiku-4-5", "max_tokens": 5}
    from_pandas = calls.prepare(pd.DataFrame({"t": texts}), lead + "{t}", **kw)
    from_polars = calls.prepare({"t": pl.Series(texts)}, lead + "{t}", **kw)
    assert from_polars.cached and from_pandas.cached
    assert from_polars.plan.row_keys == from_pandas.plan.row_keys
    assert from_polars.frame is None and from_pandas.frame is not None
    assert len(from_polars.table) == 50
    with pytest.raises(ColumnCollisionError, match="output column 't' has the name of an input column"):
        calls.prepare({"t": texts}, "{t}", output="t", model="claude-haiku-4-5")
    with pytest.raises(ColumnLengthError, match="'t' has 50, 'u' has 49"):
        calls.prepare({"t": texts, "u": texts[1:]}, "{t}", **kw)
    empty = calls.prepare({"t": []}, "{t}", **kw)
    assert empty.plan.row_keys == [] and not empty.plan.lines
