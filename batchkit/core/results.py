"""Result lines → columns → outcomes aligned to the caller's rows. Pure.

A batch's results arrive as JSONL in any order. Each line is decoded once by msgspec into a
typed struct of just the fields batchkit keeps; its few useful fields go straight into
columns (:class:`ResultColumns`) — no pydantic object and no record object per line. The
store keeps a batch's columns as a handful of blobs, and merging maps every row's request key
to its place in them, so results are joined by
``custom_id`` and never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal, NamedTuple

import msgspec
import numpy as np

from . import _json
from .states import RowStatus

__all__ = [
    "CODE_STATUS",
    "FINAL_STATUSES",
    "STATUS_CODE",
    "TRANSIENT_ERRORS",
    "USAGE_FIELDS",
    "ResultColumns",
    "Summary",
    "parse_result_stream",
    "parse_results",
    "split_lines",
]

FINAL_STATUSES: tuple[str, ...] = tuple(status.value for status in RowStatus)
"""Every status a row can end with (:class:`~batchkit.core.states.RowStatus`, as plain strings)."""

STATUS_CODE = {
    RowStatus.SUCCEEDED.value: ord("s"),
    RowStatus.TRUNCATED.value: ord("t"),
    RowStatus.ERRORED.value: ord("e"),
    RowStatus.EXPIRED.value: ord("x"),
    RowStatus.CANCELED.value: ord("c"),
    RowStatus.INVALID_OUTPUT.value: ord("i"),
}
"""One byte per result in the store (a skipped row has no result)."""
CODE_STATUS = {code: status for status, code in STATUS_CODE.items()}

_ANSWERED_STATUSES = (RowStatus.SUCCEEDED.value, RowStatus.TRUNCATED.value)
ANSWERED = frozenset(STATUS_CODE[s] for s in _ANSWERED_STATUSES)
"""Codes of results that were paid for and answered: never sent again."""

TRANSIENT_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})
"""Error types worth resubmitting: the same request may well succeed next time."""

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_write_5m", "cache_write_1h", "cache_read")
"""The token counts kept per result, in column order."""

_S, _T, _E = STATUS_CODE[RowStatus.SUCCEEDED], STATUS_CODE[RowStatus.TRUNCATED], STATUS_CODE[RowStatus.ERRORED]
_NO_USAGE = (0, 0, 0, 0, 0)


SAMPLE_OUTPUT = "_compare_answer"
"""The output name of a comparison's sample jobs: internal, so what users read says
:data:`SAMPLE_OUTPUT_LABEL` instead (see :func:`output_label`)."""
SAMPLE_OUTPUT_LABEL = "(compare sample)"


def output_label(output: str) -> str:
    """A job's output name as users read it (a comparison's sample job has no column of its own)."""
    return SAMPLE_OUTPUT_LABEL if output == SAMPLE_OUTPUT else output


@dataclass
class ResultColumns:
    """One batch's results as columns, position ``i`` being the ``i``-th result line."""

    keys: list[str]
    statuses: bytearray
    answers: list[str | None]
    stop_reasons: list[str | None]
    usage: np.ndarray
    """``(n, 5)`` int64 token counts in :data:`USAGE_FIELDS` order."""
    errors: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    """Position → (error type, message), for results that did not succeed."""
    lost: list[str] = field(default_factory=list)
    """Keys of realtime requests whose response was lost on the way back (one entry per lost
    response): the API may have answered and charged them before they were sent again. Kept
    with the unit's answers (:meth:`batchkit.stores.transaction.Transaction.add_answers`), not in the columns."""

    def __len__(self) -> int:
        return len(self.keys)

    def status(self, pos: int) -> str:
        return CODE_STATUS[self.statuses[pos]]

    def mark(self, pos: int, status: str, error_type: str, message: str) -> None:
        """Change one result's status, e.g. to ``invalid_output`` after a schema check."""
        self.statuses[pos] = STATUS_CODE[status]
        self.errors[pos] = (error_type, message)

    def to_blobs(self) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
        """(keys, statuses, answers, stop_reasons, usage, errors) as stored."""
        return (
            "\n".join(self.keys).encode(),
            bytes(self.statuses),
            _json.dumps(self.answers),
            _json.dumps(self.stop_reasons),
            np.ascontiguousarray(self.usage, dtype="<i8").tobytes(),
            _json.dumps({str(k): v for k, v in self.errors.items()}),
        )

    @classmethod
    def from_blobs(
        cls, keys: bytes, statuses: bytes, answers: bytes, stops: bytes, usage: bytes, errors: bytes
    ) -> ResultColumns:
        n = len(statuses)
        return cls(
            keys.decode().split("\n") if n else [],
            bytearray(statuses),
            _json.loads(answers),
            _json.loads(stops),
            np.frombuffer(usage, dtype="<i8").reshape(n, len(USAGE_FIELDS)),
            {int(k): tuple(v) for k, v in _json.loads(errors).items()},
        )

    @classmethod
    def failed(cls, keys: list[str], error_type: str, message: str) -> ResultColumns:
        """Columns saying every one of ``keys`` errored (e.g. its results are gone)."""
        n = len(keys)
        return cls(
            list(keys),
            bytearray([_E]) * n,
            [None] * n,
            [None] * n,
            np.zeros((n, len(USAGE_FIELDS)), dtype=np.int64),
            {i: (error_type, message) for i in range(n)},
        )


# The fields of a result line batchkit reads; msgspec skips everything else without building it.
class _CacheCreation(msgspec.Struct, gc=False):
    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: _CacheCreation | None = None


class _Block(msgspec.Struct, gc=False):
    type: str
    text: str | None = None
    input: msgspec.Raw = msgspec.Raw()


class _Message(msgspec.Struct, gc=False):
    content: Sequence[_Block] = ()
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    type: str | None = None
    message: str | None = None


class _ErrorEnvelope(msgspec.Struct, gc=False):
    error: _ErrorBody | None = None
    type: str | None = None
    message: str | None = None


class _Result(msgspec.Struct, gc=False):
    type: str
    message: _Message | None = None
    error: _ErrorEnvelope | None = None


class _Line(msgspec.Struct, gc=False):
    custom_id: str
    result: _Result


# The same lines with the values the API documents for the few closed sets a line carries: a
# value of a Literal is the one string object msgspec holds, where a ``str`` field is a new string
# per line. Every line of a results file names its result type and, when answered, its stop reason
# and its blocks' types, so this spares three strings a line (one kept, in the stop reasons), about
# 5% of reading a file. A chunk with a value not in these lists (one newer than this batchkit) is
# read again with the plain types above: the same records, a little slower.
_ResultType = Literal["succeeded", "errored", "canceled", "expired"]
_StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"
]
_BlockType = Literal[
    "text",
    "tool_use",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
]


class _KnownBlock(_Block, gc=False):
    type: _BlockType


class _KnownMessage(_Message, gc=False):
    content: Sequence[_KnownBlock] = ()
    stop_reason: _StopReason | None = None


class _KnownResult(_Result, gc=False):
    type: _ResultType
    message: _KnownMessage | None = None


class _KnownLine(_Line, gc=False):
    result: _KnownResult


_line_decoder = msgspec.json.Decoder(_Line)
_decode_line, _decode_lines = _line_decoder.decode, _line_decoder.decode_lines
_decode_known_lines = msgspec.json.Decoder(_KnownLine).decode_lines
_EMPTY_USAGE = _Usage()


def parse_results(lines: Iterable[bytes]) -> ResultColumns:
    """Parse the lines of a batch's results file into columns.

    >>> cols = parse_results([b'{"custom_id":"k","result":{"type":"expired"}}'])
    >>> cols.keys, cols.status(0)
    (['k'], 'expired')
    """
    return _columns([list(map(_decode_each, lines))])


def parse_result_stream(chunks: Iterable[bytes]) -> ResultColumns:
    """Parse a batch's results file, read in chunks of any size, into columns as it arrives.

    Each chunk's complete lines are decoded in one call (no bytes object per line; a line
    straddling two chunks is carried over), so a results file of hundreds of MB is never held
    whole. A chunk with a line the fast decoder does not take is read again line by line.

    >>> cols = parse_result_stream([b'{"custom_id":"k","res', b'ult":{"type":"expired"}}'])
    >>> cols.keys, cols.status(0)
    (['k'], 'expired')
    """
    return _columns(_records_of_chunks(chunks))


def _decode_each(line: bytes) -> _Line:
    try:
        return _decode_line(line)
    except msgspec.ValidationError:
        return _lenient(line)


def _records_of_chunks(chunks: Iterable[bytes]) -> Iterator[Sequence[_Line]]:
    """The records of each chunk's complete lines, a list per chunk.

    A line straddling two chunks is decoded on its own (the tail of one and the head of the
    next): the rest of a chunk is decoded where it lies, never copied behind the tail (about 3%
    of reading a results file).
    """
    tail = b""
    for chunk in chunks:
        start = 0
        if tail:
            start = chunk.find(b"\n") + 1
            if not start:
                tail += chunk
                continue
            yield _decode_whole(tail + chunk[:start])
        cut = chunk.rfind(b"\n") + 1
        if cut > start:
            yield _decode_whole(memoryview(chunk)[start:cut])
        tail = chunk[max(cut, start) :]
    if tail.strip():
        yield list(map(_decode_each, split_lines([tail])))


def _decode_whole(lines: bytes | memoryview) -> Sequence[_Line]:
    """The records of complete lines: in one call, with the closed sets as Literals (a value
    newer than them: with plain strings; odd types, or CR line endings: line by line)."""
    try:
        return _decode_known_lines(lines)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        return _decode_lines(lines)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return list(map(_decode_each, split_lines([bytes(lines)])))


def _columns(batches: Iterable[Sequence[_Line]]) -> ResultColumns:
    keys: list[str] = []
    codes = bytearray()
    answers: list[str | None] = []
    stops: list[str | None] = []
    usage: list[int | None] = []
    errors: dict[int, tuple[str, str | None]] = {}
    add_key, add_code, add_answer, add_stop, add_usage = (
        keys.append,
        codes.append,
        answers.append,
        stops.append,
        usage.extend,
    )
    for pos, record in enumerate(chain.from_iterable(batches)):
        result = record.result
        add_key(record.custom_id)
        kind = result.type
        message = result.message
        if kind == "succeeded" and message is not None:
            content = message.content
            if len(content) == 1 and content[0].type == "text":
                add_answer(content[0].text)
            else:
                add_answer(_answer_of(content))
            stop = message.stop_reason
            add_stop(stop)
            add_code(_T if stop == "max_tokens" else _S)
            u = message.usage or _EMPTY_USAGE
            creation = u.cache_creation
            write_1h = (creation.ephemeral_1h_input_tokens if creation else None) or 0
            write_5m = creation.ephemeral_5m_input_tokens if creation else None
            if write_5m is None:
                write_5m = (u.cache_creation_input_tokens or 0) - write_1h
            add_usage((u.input_tokens, u.output_tokens, write_5m, write_1h, u.cache_read_input_tokens))
            continue
        add_answer(None)
        add_stop(None)
        add_usage(_NO_USAGE)
        if kind in STATUS_CODE:
            add_code(STATUS_CODE[kind])
            if kind == "errored":
                envelope = result.error or _ErrorEnvelope()
                error = envelope.error or _ErrorBody(envelope.type, envelope.message)
                errors[pos] = (error.type or "unknown_error", error.message)
        else:  # a result type newer than this batchkit: keep it, as a failure that says what it was
            add_code(_E)
            errors[pos] = (f"unknown_result_{kind}", f"result type {kind!r} is not known to this batchkit")
    counts = np.array([n or 0 for n in usage] if None in usage else usage, dtype=np.int64)
    return ResultColumns(keys, codes, answers, stops, counts.reshape(len(keys), len(USAGE_FIELDS)), errors)


def _lenient(line: bytes) -> _Line:
    """Read a line whose fields do not have the types the fast decoder expects, keeping what fits."""
    record = _json.loads(line)
    result = record.get("result") or {}
    message = result.get("message") or {}
    u = message.get("usage") or {}
    c = u.get("cache_creation") or {}

    def count(value: object) -> int:
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    blocks = [
        _Block(
            str(b.get("type")),
            b.get("text") if isinstance(b.get("text"), str) else None,
            msgspec.Raw(_json.dumps(b["input"])) if "input" in b else msgspec.Raw(),
        )
        for b in message.get("content") or ()
        if isinstance(b, dict)
    ]
    usage = _Usage(
        count(u.get("input_tokens")),
        count(u.get("output_tokens")),
        count(u.get("cache_creation_input_tokens")),
        count(u.get("cache_read_input_tokens")),
        _CacheCreation(count(c.get("ephemeral_5m_input_tokens")), count(c.get("ephemeral_1h_input_tokens"))),
    )
    stop = message.get("stop_reason")
    envelope = result.get("error") or {}
    error = envelope.get("error") or envelope
    return _Line(
        str(record.get("custom_id")),
        _Result(
            str(result.get("type")),
            _Message(blocks, stop if isinstance(stop, str) else None, usage) if message else None,
            _ErrorEnvelope(_ErrorBody(str(error.get("type")), str(error.get("message")))) if error else None,
        ),
    )


def _answer_of(content: Iterable[_Block]) -> str:
    """The answer in a message's content: a forced tool call's input as JSON, else the text."""
    texts = []
    for block in content:
        if block.type == "tool_use" and block.input:
            return bytes(block.input).decode()
        if block.type == "text" and block.text is not None:
            texts.append(block.text)
    return "".join(texts)


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines (LF, CRLF or CR endings) of a byte stream read in chunks, as they come.

    Each chunk is split as it arrives (a line straddling two chunks, or a CRLF split between
    them, is carried over), so a results file of hundreds of MB is never held whole: the lines
    are parsed while the rest is still downloading.
    """
    tail = b""
    for chunk in chunks:
        data = tail + chunk if tail else chunk
        held = b""
        if b"\r" in data:
            if data.endswith(b"\r"):  # maybe the first half of a CRLF: decide with the next chunk
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        tail = lines.pop() + held
        yield from filter(None, lines)
    tail = tail.rstrip(b"\r")
    if tail:
        yield from filter(None, tail.replace(b"\r", b"\n").split(b"\n"))


class Summary(NamedTuple):
    """How the rows of a job ended."""

    rows: int
    by_status: dict[str, int]
    by_error: dict[str, int]

    @property
    def failed(self) -> int:
        """Rows with no usable answer."""
        return sum(n for s, n in self.by_status.items() if s not in _ANSWERED_STATUSES)

    def __str__(self) -> str:
        order = {s: i for i, s in enumerate(("pending", *FINAL_STATUSES))}
        counts = sorted(((s, n) for s, n in self.by_status.items() if n), key=lambda kv: order.get(kv[0], 99))
        text = f"{self.rows:,} rows: " + ", ".join(f"{n:,} {s}" for s, n in counts) if counts else f"{self.rows:,} rows"
        if self.by_error:
            text += " (" + ", ".join(f"{t}: {n:,}" for t, n in self.by_error.items()) + ")"
        return text
