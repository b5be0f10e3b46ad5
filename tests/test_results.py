"""Parsing result lines into columns: pure, no network."""

from __future__ import annotations

from batchkit.core import _json
from batchkit.core.results import (
    ResultColumns,
    Summary,
    parse_result_stream,
    parse_results,
    split_lines,
)


def line(custom_id, result):
    return _json.dumps({"custom_id": custom_id, "result": result})


def message(content, stop_reason="end_turn", **usage):
    return {
        "type": "succeeded",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 3, **usage},
        },
    }


def test_succeeded_text_and_usage_with_cache_split():
    cols = parse_results(
        [
            line(
                "k1",
                message(
                    [{"type": "text", "text": "positive"}],
                    cache_creation_input_tokens=100,
                    cache_read_input_tokens=7,
                    cache_creation={"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60},
                ),
            )
        ]
    )
    assert cols.keys == ["k1"] and cols.status(0) == "succeeded" and cols.answers == ["positive"]
    assert cols.usage.tolist() == [[10, 3, 40, 60, 7]]


def test_cache_writes_without_a_split_count_as_5m():
    cols = parse_results([line("k", message([{"type": "text", "text": "x"}], cache_creation_input_tokens=12))])
    assert cols.usage[0, 2:4].tolist() == [12, 0]


def test_max_tokens_is_truncated_and_keeps_partial_text():
    cols = parse_results([line("k", message([{"type": "text", "text": "The answ"}], stop_reason="max_tokens"))])
    assert cols.status(0) == "truncated" and cols.answers == ["The answ"] and cols.stop_reasons == ["max_tokens"]


def test_tool_use_answer_is_the_tool_input_as_json():
    cols = parse_results(
        [
            line(
                "k",
                message(
                    [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"label": "neg"}}],
                    stop_reason="tool_use",
                ),
            )
        ]
    )
    assert _json.loads(cols.answers[0]) == {"label": "neg"}


def test_errored_reads_the_type_inside_the_error_envelope():
    cols = parse_results(
        [
            line(
                "k",
                {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "busy"},
                        "request_id": "req_1",
                    },
                },
            )
        ]
    )
    assert cols.status(0) == "errored" and cols.errors == {0: ("overloaded_error", "busy")} and cols.answers == [None]


def test_canceled_expired_and_unknown_types_are_kept():
    cols = parse_results(
        [line("a", {"type": "canceled"}), line("b", {"type": "expired"}), line("c", {"type": "paused"})]
    )
    assert [cols.status(i) for i in range(3)] == ["canceled", "expired", "errored"]
    assert cols.errors[2][0] == "unknown_result_paused"


def test_columns_round_trip_through_blobs_and_marks():
    cols = parse_results(
        [
            line("a", message([{"type": "text", "text": "é"}])),
            line("b", {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "x"}}}),
        ]
    )
    cols.mark(0, "invalid_output", "invalid_output", "not JSON")
    back = ResultColumns.from_blobs(*cols.to_blobs())
    assert back.keys == ["a", "b"] and back.answers == ["é", None]
    assert [back.status(0), back.status(1)] == ["invalid_output", "errored"]
    assert back.errors == {0: ("invalid_output", "not JSON"), 1: ("api_error", "x")}
    assert back.usage.tolist() == cols.usage.tolist()


def test_split_lines_handles_any_chunking_and_line_ending():
    payload = b'{"a":1}\r\n{"b":2}\n\n{"c":3}\r{"d":4}'
    for size in (1, 2, 3, 5, 64):
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        assert [_json.loads(x) for x in split_lines(chunks)] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


def test_a_results_stream_in_chunks_of_any_size_reads_like_its_lines():
    lines = [
        line("a", message([{"type": "text", "text": "한국어 \\n ok"}], cache_read_input_tokens=5)),
        line("b", {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "x"}}}),
        line("c", message([{"type": "text", "text": "odd"}], output_tokens=2.0, cache_read_input_tokens="n/a")),
        line("d", {"type": "expired"}),
        line("e", {"type": "paused"}),
    ]
    expected = parse_results(lines)
    for ending in (b"\n", b"\r\n", b"\n\n"):
        payload = ending.join(lines) + ending
        for size in (1, 2, 7, 64, 100, len(payload)):
            chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
            got = parse_result_stream(chunks)
            assert got.keys == expected.keys == ["a", "b", "c", "d", "e"]
            assert (got.statuses, got.answers, got.errors) == (expected.statuses, expected.answers, expected.errors)
            assert got.usage.tolist() == expected.usage.tolist()
    assert parse_result_stream([lines[0]]).answers == expected.answers[:1]  # no final newline
    assert len(parse_result_stream([])) == 0


def test_summary_reads_well():
    s = Summary(6, {"succeeded": 2, "errored": 1, "pending": 1, "skipped": 1}, {"api_error": 1})
    assert s.failed == 3
    assert str(s) == "6 rows: 1 pending, 2 succeeded, 1 errored, 1 skipped (api_error: 1)"


def test_a_line_with_unexpected_field_types_is_still_read():
    odd = line("k", message([{"type": "text", "text": "ok"}], output_tokens=2.0, cache_read_input_tokens="n/a"))
    cols = parse_results([odd])
    assert cols.answers == ["ok"] and cols.usage[0, 1] == 2 and cols.usage[0, 4] == 0


def test_values_newer_than_this_batchkit_read_alike_in_a_stream():
    """A stop reason, a block type or a result type the API added later is read, not dropped."""
    lines = [
        line("a", message([{"type": "text", "text": "yes"}])),
        line("b", message([{"type": "text", "text": "cut"}], stop_reason="compaction")),
        line("c", message([{"type": "citations_note", "note": "x"}, {"type": "text", "text": "hi"}])),
        line("d", {"type": "paused"}),
        line("e", message([{"type": "text", "text": "no"}], stop_reason="max_tokens")),
    ]
    expected = parse_results(lines)
    got = parse_result_stream([b"\n".join(lines) + b"\n"])
    assert got.keys == expected.keys == ["a", "b", "c", "d", "e"]
    assert got.answers == expected.answers == ["yes", "cut", "hi", None, "no"]
    assert got.stop_reasons == expected.stop_reasons == ["end_turn", "compaction", "end_turn", None, "max_tokens"]
    assert [got.status(i) for i in range(5)] == ["succeeded", "succeeded", "succeeded", "errored", "truncated"]
    assert got.errors == expected.errors and got.usage.tolist() == expected.usage.tolist()
