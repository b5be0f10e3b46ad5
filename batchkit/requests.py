"""Rows → request params → content keys → batch chunks. Pure: no network, no disk.

The hot path never builds a dict per row. Every request of a call shares the same params but
for the user's text, so the params are serialized once (canonical JSON, sorted keys) around a
sentinel and split into a prefix and a suffix; a row's request body is then
``prefix + json(text) + suffix`` — one ``_json.dumps`` of a string per row.

The **request key** is a content hash of that canonical body: the same params give the same
key in any process, on any day. It is the batch ``custom_id`` (32 hex digits, well inside the
API's 64 characters of ``[A-Za-z0-9_-]``), it deduplicates identical rows, and it is how the
job store knows a request is already paid for.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import string
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from . import _json
from .errors import (
    BatchkitWarning,
    CellError,
    ConfigurationError,
    MissingColumnError,
    PromptError,
    RequestTooLargeError,
)

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "Chunk",
    "Rendered",
    "RequestTemplate",
    "build_template",
    "chunk_requests",
    "parse_prompt",
    "render_prompts",
]

MAX_BATCH_REQUESTS = 100_000
"""The API's limit on requests in one batch."""

MAX_BATCH_BYTES = 256_000_000
"""The API's 256 MB limit on a batch body, read as decimal megabytes (the stricter reading)."""

_ENVELOPE_BYTES = len(b'{"requests":[]}')
_SENTINEL = "\x00batchkit-text\x00"
_SENTINEL_JSON = _json.dumps(_SENTINEL)
_SAMPLING_PARAMS = ("temperature", "top_p", "top_k")


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class _Field:
    column: Hashable
    spec: str
    conversion: str | None


@dataclass(frozen=True)
class ParsedPrompt:
    """A ``str.format``-style prompt split into literals and the columns it reads."""

    literals: tuple[str, ...]
    fields: tuple[_Field, ...]

    @property
    def columns(self) -> list[Hashable]:
        seen: dict[Hashable, None] = {}
        for f in self.fields:
            seen.setdefault(f.column, None)
        return list(seen)


def parse_prompt(prompt: str, columns: Sequence[Hashable], *, positional: Hashable = None) -> ParsedPrompt:
    """Parse ``prompt`` and check every ``{column}`` against ``columns``.

    ``{{`` and ``}}`` are literal braces; ``{col:spec}`` and ``{col!r}`` work as in ``str.format``.
    A bare ``{}`` reads ``positional`` (the Series accessor's own values).

    Raises:
        MissingColumnError: a placeholder names no column; the message lists the available ones.
        PromptError: the template itself is malformed.
    """
    if not isinstance(prompt, str):
        raise PromptError(f"prompt must be a string or a callable row -> str, not {type(prompt).__name__}")
    by_name = {str(c): c for c in columns}
    by_name.update({c: c for c in columns if isinstance(c, str)})
    literals: list[str] = []
    fields: list[_Field] = []
    pending = ""
    try:
        parsed = list(string.Formatter().parse(prompt))
    except ValueError as exc:
        raise PromptError(
            f"prompt is not a valid template ({exc}). Write literal braces as {{{{ and }}}}."
        ) from None
    for literal, name, spec, conversion in parsed:
        pending += literal
        if name is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise PromptError(
                f"prompt placeholder {{{name}!{conversion}}} uses !{conversion}, which is not a conversion: "
                "use !r (repr), !s (str) or !a (ascii), or none. Write a literal '!' outside the braces."
            )
        if name == "":
            if positional is None:
                raise PromptError(
                    "prompt has an empty placeholder {} — name a column, e.g. {review}. "
                    f"Available columns: {_list_columns(columns)}"
                )
            column = positional
        elif name in by_name:
            column = by_name[name]
        else:
            raise MissingColumnError(
                f"prompt refers to column {name!r}, which this DataFrame does not have. "
                f"Available columns: {_list_columns(columns)}. "
                "Write literal braces as {{ and }}.",
                column=name,
                available=[str(c) for c in columns],
            )
        literals.append(pending)
        pending = ""
        fields.append(_Field(column, spec or "", conversion))
    literals.append(pending)
    return ParsedPrompt(tuple(literals), tuple(fields))


def _list_columns(columns: Sequence[Hashable]) -> str:
    shown = ", ".join(repr(str(c)) for c in list(columns)[:30])
    more = len(columns) - 30
    return shown + (f" … and {more} more" if more > 0 else "") if shown else "(none)"


@dataclass
class Rendered:
    """The prompt text of every row, or why a row is not sent."""

    texts: list[str | None]
    """One entry per row, in row order; None where the row is skipped."""
    skipped: dict[int, str] = field(default_factory=dict)
    """Row position → the reason it is not sent."""


def render_prompts(
    frame: pd.DataFrame,
    prompt: str | Callable[[pd.Series], str | None],
    *,
    positional: Hashable = None,
) -> Rendered:
    """Render one prompt text per row of ``frame``.

    A row whose referenced value is missing (None, NaN, NaT, pd.NA) is skipped with that reason,
    never sent with a blank. Empty strings are sent as they are.
    """
    n = len(frame)
    if callable(prompt):
        return _render_callable(frame, prompt)
    parsed = parse_prompt(prompt, list(frame.columns), positional=positional)
    if not parsed.fields:
        if n > 1:
            warnings.warn(
                f"the prompt has no {{column}} placeholder, so all {n:,} rows get the same prompt and "
                "one request is sent for them all. Add a placeholder such as {review} to send each row's value.",
                BatchkitWarning,
                stacklevel=4,
            )
        return Rendered([parsed.literals[0]] * n)
    skipped: dict[int, str] = {}
    rendered_columns: dict[tuple[Hashable, str, str | None], list[str | None]] = {}
    for f in parsed.fields:
        key = (f.column, f.spec, f.conversion)
        if key in rendered_columns:
            continue
        values = frame[f.column]
        if isinstance(values, pd.DataFrame):
            raise PromptError(
                f"column {str(f.column)!r} appears more than once in the DataFrame; "
                "rename the duplicates so the prompt is unambiguous"
            )
        strs, missing = _cells_to_str(values, f.spec, f.conversion, column=f.column)
        for pos in missing:
            skipped.setdefault(int(pos), f"missing value in column {str(f.column)!r}")
        rendered_columns[key] = strs
    columns = [rendered_columns[(f.column, f.spec, f.conversion)] for f in parsed.fields]
    if len(columns) == 1:  # the common case; concatenation is about twice as fast as formatting
        head, tail = parsed.literals
        cells = columns[0]  # str, or None exactly where the row is skipped
        if skipped:  # a row is skipped exactly where its one cell is missing
            return Rendered([None if c is None else head + c + tail for c in cells], skipped)
        present = cast(list[str], cells)
        return Rendered([head + c + tail for c in present] if tail else [head + c for c in present], skipped)
    pattern = parsed.literals[0].replace("%", "%%") + "".join(
        "%s" + lit.replace("%", "%%") for lit in parsed.literals[1:]
    )
    if skipped:
        texts: list[str | None] = [
            None if i in skipped else pattern % parts for i, parts in enumerate(zip(*columns, strict=True))
        ]
    else:
        texts = [pattern % parts for parts in zip(*columns, strict=True)]
    return Rendered(texts, skipped)


def _render_callable(frame: pd.DataFrame, fn: Callable[[pd.Series], str | None]) -> Rendered:
    texts: list[str | None] = []
    skipped: dict[int, str] = {}
    for pos, (_, row) in enumerate(frame.iterrows()):
        try:
            text = fn(row)
        except Exception as exc:  # the caller's own code: say which row, keep its traceback
            raise PromptError(
                f"the prompt function raised {type(exc).__name__} ({exc}) on row {pos}. Fix the function, "
                f"or have it return None for rows it cannot render (they are then skipped). "
                f"Columns a row has: {_list_columns(list(frame.columns))}"
            ) from exc
        if text is None:
            skipped[pos] = "the prompt function returned None"
        elif not isinstance(text, str):
            raise PromptError(
                f"the prompt function must return a string (or None to skip the row); "
                f"for row {pos} it returned {type(text).__name__}"
            )
        texts.append(text)
    return Rendered(texts, skipped)


def _cells_to_str(
    values: pd.Series, spec: str, conversion: str | None, *, column: Hashable = None
) -> tuple[list[Any], Iterable[int]]:
    """A column's cells as strings (None where missing) and the positions that are missing.

    Raises:
        CellError: a cell the format spec does not fit, or one nested too deep to render;
            the message names the row, the column and the placeholder.
    """
    missing_mask = values.isna().to_numpy()
    missing = missing_mask.nonzero()[0]
    cells = values.tolist()
    if not spec and conversion is None and not len(missing):
        if isinstance(values.dtype, pd.StringDtype):  # every cell present is a str
            return cells, missing
        if pd.api.types.is_string_dtype(values.dtype) and all(type(c) is str for c in cells):
            return cells, missing
    out: list[Any] = []
    try:
        for cell, absent in zip(cells, missing_mask, strict=True):
            if absent:
                out.append(None)
                continue
            if conversion == "r":
                cell = repr(cell)
            elif conversion == "s":
                cell = str(cell)
            elif conversion == "a":
                cell = ascii(cell)
            out.append(format(cell, spec) if spec else _cell_text(cell))
    except (ValueError, TypeError, RecursionError) as exc:  # only on failure: no per-row cost
        _raise_cell_error(exc, len(out), cells[len(out)], column, spec, conversion)
    return out, missing


def _raise_cell_error(
    exc: BaseException, row: int, cell: Any, column: Hashable, spec: str, conversion: str | None
) -> None:
    field_text = "{" + str(column) + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    if isinstance(exc, RecursionError):
        raise CellError(
            f"row {row}, column {str(column)!r}: the value is nested too deep to render as text (lists or dicts "
            f"thousands of levels deep). Flatten that cell, or skip the row (set it to None).",
            column=str(column), row=row,
        ) from None
    raise CellError(
        f"row {row}, column {str(column)!r}: the placeholder {field_text} cannot format "
        f"{type(cell).__name__} {cell!r:.40} ({exc}). Use a format that fits the column's values "
        f"(e.g. {{{column}}} with no spec for text), or convert the column first (df[{str(column)!r}].astype(float)).",
        column=str(column), row=row,
    ) from None


def _cell_text(cell: Any) -> str:
    """How a cell value reads inside a prompt."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, (pd.Timestamp, _dt.datetime)):
        ts = pd.Timestamp(cell)
        if ts.tz is None and ts == ts.normalize():
            return ts.date().isoformat()
        return ts.isoformat()
    if isinstance(cell, (dict, list, tuple)):
        return _json.dumps(cell).decode()
    if isinstance(cell, bytes):
        return cell.decode("utf-8", "replace")
    return str(cell)


# --------------------------------------------------------------------------- params and keys


@dataclass(frozen=True)
class RequestTemplate:
    """The canonical JSON of a call's params, split where each row's text goes."""

    prefix: bytes
    suffix: bytes
    model: str

    def body(self, text: str) -> bytes:
        """The canonical params JSON of one request."""
        return self.prefix + _json.dumps(text) + self.suffix

    def params(self, text: str) -> dict[str, Any]:
        """The params of one request as a dict (for display and tests; not the hot path)."""
        return _json.loads(self.body(text))


def build_template(
    *,
    model: str,
    max_tokens: int,
    system: str | Sequence[Mapping[str, Any]] | None = None,
    stop_sequences: Sequence[str] | None = None,
    content: Callable[[str], Any] | None = None,
    **params: Any,
) -> RequestTemplate:
    """Check a call's params and serialize them once around a sentinel for the row text.

    ``content`` maps the row text to the user message content (default: the text itself);
    structured outputs and prompt caching use it to wrap the text in blocks.

    Raises:
        ConfigurationError: a param the API would reject for every row.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(
            f"model must be a model id string such as 'claude-haiku-4-5', not {model!r}"
        )
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigurationError(f"max_tokens must be a whole number of at least 1, not {max_tokens!r}")
    for name in _SAMPLING_PARAMS:
        if name in params:
            raise ConfigurationError(
                f"{name}= is rejected by the Anthropic API version this SDK speaks (2026-10-21): every "
                f"request would come back errored. Remove {name}=; use output_config={{'effort': ...}} "
                "or a clearer prompt instead."
            )
    if params.get("stream"):
        raise ConfigurationError("stream=True is not allowed inside Message Batches; remove it")
    if "messages" in params:
        raise ConfigurationError(
            "messages= is built from the prompt; pass the row template as prompt= and shared "
            "instructions as system="
        )
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if system is not None:
        if isinstance(system, str):
            body["system"] = system
        else:
            body["system"] = [dict(block) for block in system]
    if stop_sequences:
        if isinstance(stop_sequences, str):
            stop_sequences = [stop_sequences]
        body["stop_sequences"] = list(stop_sequences)
    body.update({k: v for k, v in params.items() if v is not None})
    user_content = content(_SENTINEL) if content else _SENTINEL
    body["messages"] = [{"role": "user", "content": user_content}]
    try:
        blob = _json.dumps_sorted(body)
    except TypeError as exc:
        raise ConfigurationError(f"request params must be JSON-serializable: {exc}") from None
    except RecursionError:
        raise ConfigurationError(
            "the request params are nested too deep to send as JSON (thousands of levels); flatten the "
            "system blocks or params that hold such a value"
        ) from None
    if blob.count(_SENTINEL_JSON) != 1:
        raise ConfigurationError("the row text must appear exactly once in the request")
    prefix, suffix = blob.split(_SENTINEL_JSON)
    return RequestTemplate(prefix, suffix, model)


def request_key(body: bytes) -> str:
    """The content key of a request body: the 32 hex digits of its 128-bit BLAKE2b digest."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass
class Plan:
    """What a call sends: a key per row and one batch entry per distinct key."""

    row_keys: list[str | None]
    """Row position → request key (None for skipped rows)."""
    lines: dict[str, bytes]
    """Request key → its ``{"custom_id": …, "params": …}`` entry of a batch body, first-seen order."""
    skipped: dict[int, str]

    def body(self, key: str) -> bytes:
        """The canonical params JSON of one request."""
        return line_body(self.lines[key])


def make_line(key: str, body: bytes) -> bytes:
    """One entry of a batch create body."""
    return b'{"custom_id":"%s","params":%s}' % (key.encode(), body)


def line_body(line: bytes) -> bytes:
    """The params JSON inside a batch entry made by :func:`make_line`."""
    return line[line.index(b'","params":') + 11 : -1]


def plan_requests(rendered: Rendered, template: RequestTemplate) -> Plan:
    """Key every row's request and keep one batch entry per distinct key."""
    prefix, suffix = template.prefix, template.suffix
    dumps = _json.dumps
    blake = hashlib.blake2b
    lines: dict[str, bytes] = {}
    row_keys: list[str | None] = []
    append = row_keys.append
    for text in rendered.texts:
        if text is None:
            append(None)
            continue
        body = b"%s%s%s" % (prefix, dumps(text), suffix)
        key = blake(body, digest_size=16).hexdigest()
        # A repeated row lands on the same key: sent once.
        lines[key] = b'{"custom_id":"%s","params":%s}' % (key.encode(), body)
        append(key)
    return Plan(row_keys, lines, dict(rendered.skipped))


# --------------------------------------------------------------------------- chunks


@dataclass
class Chunk:
    """One batch's worth of requests."""

    keys: list[str]
    body: bytes
    """The whole ``{"requests": [...]}`` create body, ready to send."""


def chunk_requests(
    lines: Mapping[str, bytes],
    *,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[Chunk]:
    """Split batch entries (key → :func:`make_line`) into batches within the API's limits.

    At most ``max_requests`` requests and ``max_bytes`` bytes of serialized body per batch.

    Raises:
        RequestTooLargeError: one request alone would not fit in a batch.
    """
    if max_requests < 1:
        raise ConfigurationError(f"chunk_size must be at least 1, not {max_requests}")
    if max_requests > MAX_BATCH_REQUESTS:
        raise ConfigurationError(
            f"chunk_size {max_requests:,} is over the API's {MAX_BATCH_REQUESTS:,} requests per batch"
        )
    keys = list(lines)
    values = list(lines.values())
    chunks: list[Chunk] = []
    if len(values) <= max_requests and _ENVELOPE_BYTES + sum(map(len, values)) + len(values) <= max_bytes:
        return [_chunk(keys, values)] if values else []
    start, size = 0, _ENVELOPE_BYTES
    for i, value in enumerate(values):
        cost = len(value) + 1  # the entry and its comma
        if _ENVELOPE_BYTES + cost > max_bytes:
            raise RequestTooLargeError(
                f"one request is {cost - 1:,} bytes, more than a whole batch may be "
                f"({max_bytes:,} bytes). Shorten that row's text (request key {keys[i]}).",
                size=cost - 1,
            )
        if i > start and (i - start >= max_requests or size + cost > max_bytes):
            chunks.append(_chunk(keys[start:i], values[start:i]))
            start, size = i, _ENVELOPE_BYTES
        size += cost
    if start < len(keys):
        chunks.append(_chunk(keys[start:], values[start:]))
    return chunks


def _chunk(keys: list[str], values: list[bytes]) -> Chunk:
    # One join, the envelope riding on the first and last entries: a body of hundreds of MB
    # is copied once, not once more for each piece added around it.
    parts = list(values)
    parts[0] = b'{"requests":[' + parts[0]
    parts[-1] = parts[-1] + b"]}"
    return Chunk(keys, b",".join(parts))
