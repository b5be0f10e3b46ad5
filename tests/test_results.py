"""Parsing result lines and merging them back onto rows: pure, no network."""

from __future__ import annotations

import orjson
import pandas as pd

from batchkit.results import answer_column, iter_lines, parse_result_line, summarize


def line(custom_id, result):
    return orjson.dumps({"custom_id": custom_id, "result": result})


def message(content, stop_reason="end_turn", **usage):
    return {
        "type": "succeeded",
        "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 3, **usage},
        },
    }


def test_succeeded_text_and_usage_with_cache_split():
    rec = parse_result_line(
        line("k1", message([{"type": "text", "text": "positive"}], cache_creation_input_tokens=100,
                           cache_read_input_tokens=7,
                           cache_creation={"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60}))
    )
    assert rec.key == "k1" and rec.status == "succeeded" and rec.answer == "positive"
    assert (rec.input_tokens, rec.output_tokens, rec.cache_write_5m, rec.cache_write_1h, rec.cache_read) == (10, 3, 40, 60, 7)


def test_cache_writes_without_a_split_count_as_5m():
    rec = parse_result_line(line("k", message([{"type": "text", "text": "x"}], cache_creation_input_tokens=12)))
    assert (rec.cache_write_5m, rec.cache_write_1h) == (12, 0)


def test_max_tokens_is_truncated_and_keeps_partial_text():
    rec = parse_result_line(line("k", message([{"type": "text", "text": "The answ"}], stop_reason="max_tokens")))
    assert rec.status == "truncated" and rec.answer == "The answ" and rec.stop_reason == "max_tokens"


def test_tool_use_answer_is_the_tool_input_as_json():
    rec = parse_result_line(
        line("k", message([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"label": "neg"}}], stop_reason="tool_use"))
    )
    assert orjson.loads(rec.answer) == {"label": "neg"}


def test_errored_reads_the_type_inside_the_error_envelope():
    rec = parse_result_line(
        line("k", {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}, "request_id": "req_1"}})
    )
    assert (rec.status, rec.error_type, rec.error_message, rec.answer) == ("errored", "overloaded_error", "busy", None)


def test_canceled_and_expired():
    assert parse_result_line(line("a", {"type": "canceled"})).status == "canceled"
    assert parse_result_line(line("b", {"type": "expired"})).status == "expired"


def test_iter_lines_handles_any_chunking_and_line_ending():
    payload = b'{"a":1}\r\n{"b":2}\n\n{"c":3}\r{"d":4}'
    for size in (1, 2, 3, 5, 64):
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        assert [orjson.loads(x) for x in iter_lines(chunks)] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


def test_answers_join_by_key_not_order_onto_any_index():
    records = {"k2": ("k2", "succeeded", "two"), "k1": ("k1", "succeeded", "one")}
    index = pd.MultiIndex.from_tuples([("a", 1), ("a", 1), ("b", 0), ("c", 9)])
    col = answer_column(["k1", "k1", None, "k2"], records, index, "out")
    assert col.dtype == "string"
    assert col.tolist()[:2] == ["one", "one"] and pd.isna(col.iloc[2]) and col.iloc[3] == "two"
    assert col.index.equals(index)


def test_summary_counts_statuses_and_error_types():
    records = {
        "a": ("a", "succeeded", "x", None, None),
        "b": ("b", "errored", None, None, "api_error"),
        "c": ("c", "expired", None, None, None),
    }
    s = summarize(["a", "a", "b", "c", None, "zz"], records, {4: "missing value"})
    assert s.by_status == {"succeeded": 2, "errored": 1, "expired": 1, "skipped": 1, "pending": 1}
    assert s.by_error == {"api_error": 1}
    assert s.failed == 4
    assert "api_error: 1" in str(s) and "2 succeeded" in str(s)
