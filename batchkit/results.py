"""Result lines → outcome records → columns aligned to the caller's rows. Pure.

A batch's results arrive as JSONL in any order. Each line is parsed once with orjson into a
flat record (a tuple in :data:`RESULT_FIELDS` order) — no pydantic object per line — and the
store keeps those records. Merging maps every row's request key to its record, so results are
joined by ``custom_id`` and never by position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson
import pandas as pd

__all__ = [
    "FINAL_STATUSES",
    "RESULT_FIELDS",
    "Outcome",
    "Summary",
    "parse_result_line",
    "summarize",
]

RESULT_FIELDS = (
    "key",
    "status",
    "answer",
    "stop_reason",
    "error_type",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
)
"""The fields of a result record, in order."""

FINAL_STATUSES = ("succeeded", "truncated", "errored", "expired", "canceled", "skipped", "invalid_output")
"""Every status a row can end with."""

TRANSIENT_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})
"""Error types worth resubmitting: the same request may well succeed next time."""


class Outcome(NamedTuple):
    """What came back for one request."""

    key: str
    status: str
    answer: str | None
    stop_reason: str | None
    error_type: str | None
    error_message: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int


def parse_result_line(line: bytes | str) -> Outcome:
    """Parse one line of a batch's results file.

    >>> parse_result_line(b'{"custom_id":"k","result":{"type":"expired"}}').status
    'expired'
    """
    record = orjson.loads(line)
    result = record["result"]
    kind = result["type"]
    if kind == "succeeded":
        message = result["message"]
        texts = []
        tool_input = None
        for block in message.get("content") or ():
            block_type = block.get("type")
            if block_type == "text":
                texts.append(block["text"])
            elif block_type == "tool_use" and tool_input is None:
                tool_input = block.get("input")
        answer = orjson.dumps(tool_input).decode() if tool_input is not None else "".join(texts)
        stop_reason = message.get("stop_reason")
        usage = message.get("usage") or {}
        creation = usage.get("cache_creation") or {}
        written = usage.get("cache_creation_input_tokens") or 0
        write_1h = creation.get("ephemeral_1h_input_tokens") or 0
        write_5m = creation.get("ephemeral_5m_input_tokens")
        if write_5m is None:
            write_5m = written - write_1h
        return Outcome(
            record["custom_id"],
            "truncated" if stop_reason == "max_tokens" else "succeeded",
            answer,
            stop_reason,
            None,
            None,
            usage.get("input_tokens") or 0,
            usage.get("output_tokens") or 0,
            write_5m,
            write_1h,
            usage.get("cache_read_input_tokens") or 0,
        )
    if kind == "errored":
        envelope = result.get("error") or {}
        error = envelope.get("error") or envelope
        return Outcome(
            record["custom_id"], "errored", None, None,
            error.get("type") or "unknown_error", error.get("message"), 0, 0, 0, 0, 0,
        )
    # canceled, expired — and any type a newer API adds, kept by name rather than dropped.
    return Outcome(record["custom_id"], kind, None, None, None, None, 0, 0, 0, 0, 0)


def iter_lines(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Split a byte stream into its non-empty lines (LF, CRLF or CR endings)."""
    tail = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = tail + chunk
        parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        tail = parts.pop()
        if data.endswith(b"\r"):  # a CRLF may straddle two chunks
            tail = b""
        for part in parts:
            if part:
                yield part
    if tail.strip():
        yield tail


# --------------------------------------------------------------------------- merging


class Summary(NamedTuple):
    """How the rows of a job ended."""

    rows: int
    by_status: dict[str, int]
    by_error: dict[str, int]

    @property
    def failed(self) -> int:
        """Rows with no usable answer."""
        return sum(n for s, n in self.by_status.items() if s not in ("succeeded", "truncated"))

    def __str__(self) -> str:
        parts = [f"{n:,} {status}" for status, n in _ordered(self.by_status)]
        text = f"{self.rows:,} rows: " + ", ".join(parts) if parts else f"{self.rows:,} rows"
        if self.by_error:
            text += " (" + ", ".join(f"{t}: {n:,}" for t, n in self.by_error.items()) + ")"
        return text


def _ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    order = {s: i for i, s in enumerate(("pending",) + FINAL_STATUSES)}
    return sorted(((s, n) for s, n in counts.items() if n), key=lambda kv: order.get(kv[0], 99))


def row_outcomes(
    row_keys: Sequence[str | None],
    records: Mapping[str, Sequence[Any]],
    skipped: Mapping[int, str],
) -> list[Sequence[Any] | None]:
    """Each row's record (None for a skipped row or one with no result yet)."""
    get = records.get
    return [None if key is None else get(key) for key in row_keys]


def summarize(
    row_keys: Sequence[str | None],
    records: Mapping[str, Sequence[Any]],
    skipped: Mapping[int, str],
) -> Summary:
    """Count rows by final status and failed rows by error type."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    get = records.get
    for key in row_keys:
        if key is None:
            continue
        record = get(key)
        if record is None:
            statuses["pending"] += 1
            continue
        statuses[record[1]] += 1
        if record[4]:
            errors[record[4]] += 1
    if skipped:
        statuses["skipped"] += len(skipped)
    return Summary(len(row_keys), dict(statuses), dict(errors.most_common()))


def answer_column(
    row_keys: Sequence[str | None],
    records: Mapping[str, Sequence[Any]],
    index: pd.Index,
    name: str,
) -> pd.Series:
    """The text answers as a ``string`` Series on ``index``; NA where a row has no answer.

    A ``truncated`` answer keeps its partial text (its status says it was cut at max_tokens).
    """
    answers: list[str | None] = []
    append = answers.append
    get = records.get
    for key in row_keys:
        record = None if key is None else get(key)
        append(record[2] if record is not None else None)
    return pd.Series(pd.array(answers, dtype="string"), index=index, name=name)
