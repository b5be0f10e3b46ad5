"""The bulk path (Arrow text columns rendered, serialized and keyed a column at a time) gives the
row path's request bytes and keys exactly: a changed key would make users pay again for answers
they have. Pure: no network.

The row path is the same rows held as Python objects (an ``object`` column), which the bulk path
never takes; each test first checks which path each side took, so none compares a path with itself.
"""

from __future__ import annotations

import random

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from batchkit.core import _json
from batchkit.core.bulk import ColumnLines, escape
from batchkit.core.plan import build_template, chunk_requests, plan_requests, select_lines
from batchkit.core.render import render_prompts
from batchkit.engine import calls
from batchkit.errors import RequestTooLargeError

ESCAPED = "".join(map(chr, range(0x20))) + '"\\'
"""Every character JSON escapes."""

AWKWARD = [
    'say "hi"',
    "back\\slash \\n is not a newline \\",
    "line one\nline two\r\nthree\ttab",
    ESCAPED,
    "\x7f delete, \u2028 line separator, \u2029 paragraph",
    "naïve café — 한국어 리뷰 😀 👩‍👩‍👧 e\u0301 עברית",
    "",
    "{braces} %s %d {{double}}",
    "a" * 300_000,
    "123",
    "2024-01-02",
    "NaN",
    "None",
    '"',
    "\\",
    "ends with a backslash \\",
]


def _awkward_rows(n: int = 400, seed: int = 7) -> list[str | None]:
    rng = random.Random(seed)
    alphabet = ESCAPED + "ab é한😀\u2028 "
    rows: list[str | None] = list(AWKWARD)
    while len(rows) < n:
        rows.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))))
    rows += [None, AWKWARD[0], AWKWARD[5]]  # a missing cell and repeated rows
    rng.shuffle(rows)
    return rows


def _frames(columns: dict[str, list]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same rows as Arrow text (the bulk path) and as Python objects (the row path)."""
    bulk = pd.DataFrame({k: pd.array(v, dtype="string[pyarrow]") for k, v in columns.items()})
    rows = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    return bulk, rows


def _plan(table, prompt: str, **kw):
    return calls.prepare(table, prompt, output="o_u_t", model="claude-haiku-4-5", max_tokens=5, **kw).plan


def _same_plan(bulk_plan, row_plan) -> None:
    assert isinstance(bulk_plan.lines, ColumnLines) and isinstance(row_plan.lines, dict)
    assert bulk_plan.row_keys == row_plan.row_keys
    assert bulk_plan.skipped == row_plan.skipped and list(bulk_plan.skipped) == list(row_plan.skipped)
    assert list(bulk_plan.lines) == list(row_plan.lines)  # first-seen order
    assert [bulk_plan.lines[k] for k in row_plan.lines] == list(row_plan.lines.values())
    assert list(bulk_plan.line_sizes()) == list(row_plan.line_sizes())
    biggest = max(row_plan.line_sizes(), default=0)
    for limits in ({}, {"max_requests": 7}, {"max_bytes": biggest + 20}):
        ours, theirs = chunk_requests(bulk_plan.lines, **limits), chunk_requests(row_plan.lines, **limits)
        assert [c.keys for c in ours] == [c.keys for c in theirs] and len(ours) > (1 if limits else 0)
        assert [bytes(c.body) for c in ours] == [bytes(c.body) for c in theirs]
    with pytest.raises(RequestTooLargeError) as bulk_error:  # the longest row alone cannot fit: refused alike
        chunk_requests(bulk_plan.lines, max_bytes=biggest)
    with pytest.raises(RequestTooLargeError) as row_error:
        chunk_requests(row_plan.lines, max_bytes=biggest)
    assert str(bulk_error.value) == str(row_error.value)


@pytest.mark.parametrize(
    "prompt",
    [
        "{t}",
        "Classify this review.\n\nReview: {t}",
        'Say "{t}" then \\ {{literal}} 100% {t} and {u}\t\x01 é😀',
        "{t}{u}",
        "{t}\n",
    ],
)
def test_awkward_text_gives_the_row_paths_bodies_and_keys_byte_for_byte(prompt):
    t = _awkward_rows()
    u = list(reversed(t))
    bulk, rows = _frames({"t": t, "u": u})
    _same_plan(_plan(bulk, prompt), _plan(rows, prompt))


def test_cache_breakpoints_key_like_the_row_path():
    t = _awkward_rows(120)
    bulk, rows = _frames({"t": t})
    system = "You are a careful annotator. " * 2000  # long enough for a breakpoint on the system prompt
    ours, theirs = _plan(bulk, "{t}", system=system), _plan(rows, "{t}", system=system)
    assert b"cache_control" in next(iter(ours.lines.values()))  # marked, and keyed without the marker
    _same_plan(ours, theirs)
    assert ours.row_keys == _plan(rows, "{t}", system=system, cache=False).row_keys


def test_every_arrow_holder_takes_the_bulk_path_with_the_same_keys():
    t = _awkward_rows(60)
    _, rows = _frames({"t": t})
    expected = _plan(rows, "Text: {t}")
    arrow = pa.array(t, pa.string())
    holders = {
        "pandas str": pd.DataFrame({"t": pd.Series(t, dtype="str")}),
        "pandas ArrowDtype": pd.DataFrame({"t": pd.Series(t, dtype=pd.ArrowDtype(pa.large_string()))}),
        "pyarrow string": {"t": arrow},
        "pyarrow chunked": {"t": pa.chunked_array([arrow[:10], arrow[10:]])},
        "pyarrow slice": {"t": pa.array(["x", *t], pa.string())[1:]},
        "pyarrow string_view": {"t": arrow.cast(pa.string_view())},
        "pyarrow dictionary": {"t": arrow.dictionary_encode()},
        "polars String": {"t": pl.Series(t)},
        "polars Categorical": {"t": pl.Series(t, dtype=pl.Categorical)},
        "polars DataFrame": pl.DataFrame({"t": t}),
    }
    for name, table in holders.items():
        plan = _plan(table, "Text: {t}")
        # pandas 2 reads str as objects unless future.infer_string is on: those take the row path
        objects = name == "pandas str" and not isinstance(table["t"].array, pd.arrays.ArrowStringArray)
        assert isinstance(plan.lines, dict if objects else ColumnLines), name
        assert plan.row_keys == expected.row_keys, name
        assert [plan.lines[k] for k in expected.lines] == list(expected.lines.values()), name


def test_a_bare_placeholder_of_a_series_and_the_texts_read_back():
    t = _awkward_rows(50)
    series = pd.Series(t, dtype="string[pyarrow]", name="review")
    out = render_prompts(pd.DataFrame({"review": series}), "<{}>", positional="review")
    assert out.columns is not None and out.texts == [None if v is None else f"<{v}>" for v in t]
    assert set(out.skipped) == {i for i, v in enumerate(t) if v is None}


def test_prompts_the_bulk_path_does_not_render_take_the_row_path_unchanged():
    bulk, rows = _frames({"t": ["a", "b", None]})
    bulk = bulk.assign(n=[1, 2, 3], when=pd.to_datetime(["2024-01-02", None, "2024-03-04 05:06"], format="ISO8601"))
    rows = rows.assign(n=[1, 2, 3], when=pd.to_datetime(["2024-01-02", None, "2024-03-04 05:06"], format="ISO8601"))
    for prompt in ("{t!r}", "{t:>5}", "{t} #{n} on {when}"):
        ours = render_prompts(bulk, prompt)
        assert ours.columns is None
        assert ours.texts == render_prompts(rows, prompt).texts
    assert isinstance(_plan(bulk, "{t} #{n}").lines, dict)


def test_rows_all_missing_and_no_rows_plan_nothing():
    bulk, rows = _frames({"t": [None, None]})
    ours = _plan(bulk, "x {t}")
    assert ours.row_keys == [None, None] == _plan(rows, "x {t}").row_keys and not ours.lines
    assert chunk_requests(ours.lines) == []
    empty = _plan({"t": pa.array([], pa.string())}, "x {t}")
    assert empty.row_keys == [] and chunk_requests(empty.lines) == []


def test_escape_is_msgspecs_for_every_character():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    values = ["".join(chars[i : i + 997]) for i in range(0, len(chars), 997)]
    escaped = escape(pa.array(values, pa.large_string())).to_pylist()
    assert escaped == [_json.dumps(v)[1:-1].decode() for v in values]


def test_column_lines_behave_like_the_dict_of_entries_they_stand_for():
    bulk, rows = _frames({"t": [f"row {i}" for i in range(30)]})
    lines, expected = _plan(bulk, "{t}").lines, dict(_plan(rows, "{t}").lines)
    keys = list(expected)
    assert select_lines(lines, keys[3:9]) == {k: expected[k] for k in keys[3:9]}
    assert isinstance(select_lines(lines, keys[3:9]), ColumnLines)  # taken in bulk, still chunked by slicing
    # What a job does with them: entries read back from the store set on it, sent ones dropped.
    for mapping in (lines, expected):
        mapping.update({keys[0]: b"changed", "new-key": b"new line"})
        del mapping[keys[1]]
        mapping.pop(keys[2])
    assert dict(lines) == expected and list(lines) == list(expected) and len(lines) == len(expected)
    assert keys[1] not in lines and "new-key" in lines and not lines.intact
    with pytest.raises(KeyError):
        del lines[keys[1]]
    assert [c.keys for c in chunk_requests(lines, max_requests=10)] == [
        c.keys for c in chunk_requests(expected, max_requests=10)
    ]
    lines.clear()
    assert len(lines) == 0 and list(lines) == [] and "new-key" not in lines


def test_a_template_built_here_and_the_prepare_path_agree():
    # plan_requests itself (what the polars and dask front ends reach through prepare) on a table.
    t = _awkward_rows(40)
    bulk, rows = _frames({"t": t})
    template = build_template(model="claude-haiku-4-5", max_tokens=9, temperature=0.5, stop_sequences=["\n"])
    ours = plan_requests(render_prompts(bulk, "Q: {t}"), template)
    theirs = plan_requests(render_prompts(rows, "Q: {t}"), template)
    _same_plan(ours, theirs)
    assert [template.key(f"Q: {v}") if v is not None else None for v in t] == ours.row_keys
