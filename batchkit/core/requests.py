"""Rows → request params → content keys → batch chunks. Pure: no network, no store (image and
PDF files named in a prompt are read, see below).

The hot path never builds a dict per row. Every request of a call shares the same params but
for the user's text, so the params are serialized once (canonical JSON, sorted keys) around a
sentinel and split into a prefix and a suffix; a row's request body is then
``prefix + json(text) + suffix`` — one ``_json.dumps`` of a string per row.

The **request key** is a content hash of that canonical body: the same params give the same
key in any process, on any day. It is the batch ``custom_id`` (32 hex digits, well inside the
API's 64 characters of ``[A-Za-z0-9_-]``), it deduplicates identical rows, and it is how the
job store knows a request is already paid for.

The key leaves out what cannot change an answer: **cache breakpoints and their TTL**. A request
carrying ``cache_control`` markers is keyed by its params without them (:func:`unmarked_params`:
markers dropped, batchkit's own layout undone — the marked lead block merged back into the row's
text, a marked lone system block back to a string), so the same question asked with
``cache=False``, ``cache_ttl="5m"`` or ``"1h"`` is one key and is paid once. A template with
markers carries a second prefix/suffix pair serialized that way (:attr:`RequestTemplate.key_prefix`);
a template without keeps today's key, byte for byte, at today's cost. The store's migration 4
moved the keys of stores written before this (:mod:`batchkit.stores.store`).

**Images and PDFs.** ``{col:image}``, ``{col:pdf}`` and ``{col:media}`` placeholders (or a prompt
function returning a list of blocks) make a row's user content a list of content blocks. Such a
row keeps a recipe — its text parts and a :class:`~batchkit.core.media.MediaRef` per file — and is
keyed by its params with each file's bytes standing in by their digest. :class:`MediaLines`
builds the base64 entry of a request only when it is read, from sizes known up front, so
:func:`chunk_requests` cuts batches by bytes before any body exists and the store writes each
body entry by entry (:meth:`Chunk.stored`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import string
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from batchkit.errors import (
    CellError,
    ConfigurationError,
    MediaError,
    MissingColumnError,
    PromptError,
    RequestTooLargeError,
    warn,
)

from . import _json, media
from .columns import Cells, Table, as_table

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "MEDIA_SPECS",
    "Chunk",
    "MediaLines",
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
_SENTINEL_OPEN = _SENTINEL_JSON[1:]
"""The sentinel's JSON without its opening quote: where the row text goes in a key template,
whose string may open earlier (the lead text merged back in front of it)."""
_SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
MEDIA_SPECS = ("image", "pdf", "media")
"""Placeholder specs that make a column's cells content blocks: ``{photo:image}``,
``{scan:pdf}``, ``{file:media}`` (an image or a PDF, by what the bytes are)."""


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
    A bare ``{}`` reads ``positional`` (the Series accessor's own values). The specs in
    :data:`MEDIA_SPECS` (``{photo:image}``, ``{scan:pdf}``, ``{file:media}``) mark image/PDF columns.

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
        raise PromptError(f"prompt is not a valid template ({exc}). Write literal braces as {{{{ and }}}}.") from None
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
    contents: list[tuple[Any, ...] | None] | None = None
    """For a prompt with images or PDFs: each row's content as parts — text (str), a
    :class:`~batchkit.core.media.MediaRef`, or a content block (dict) — None where skipped.
    ``texts`` then holds only the rows' text parts joined (for display)."""


def render_prompts(
    frame: Table | pd.DataFrame | Mapping[Any, Any],
    prompt: str | Callable[[Any], Any],
    *,
    positional: Hashable = None,
    media_errors: str = "raise",
) -> Rendered:
    """Render one prompt text per row of ``frame``: a pandas DataFrame, a mapping of column
    name → values (list, numpy, pyarrow, polars…) or a :class:`~batchkit.core.columns.Table`.

    A row whose referenced value is missing (None, NaN, NaT, pd.NA, a pyarrow or polars null)
    is skipped with that reason, never sent with a blank. Empty strings are sent as they are.
    An image or PDF cell the API would refuse raises :class:`MediaError`, or with
    ``media_errors="skip"`` skips its row. A callable prompt gets each row as a mapping of
    column name → value (a ``pd.Series`` for a pandas frame).

    >>> render_prompts({"t": ["a", None]}, "Say {t}").texts
    ['Say a', None]
    """
    table = as_table(frame)
    n = len(table)
    if callable(prompt):
        return _render_callable(table, prompt, media_errors == "skip")
    parsed = parse_prompt(prompt, table.names, positional=positional)
    if any(f.spec in MEDIA_SPECS for f in parsed.fields):
        return _render_media(table, parsed, media_errors == "skip")
    if not parsed.fields:
        if n > 1:
            warn(
                f"the prompt has no {{column}} placeholder, so all {n:,} rows get the same prompt and "
                "one request is sent for them all. Add a placeholder such as {review} to send each row's value."
            )
        return Rendered([parsed.literals[0]] * n)
    skipped: dict[int, str] = {}
    rendered_columns: dict[tuple[Hashable, str, str | None], list[str | None]] = {}
    for f in parsed.fields:
        key = (f.column, f.spec, f.conversion)
        if key in rendered_columns:
            continue
        strs, missing = _cells_to_str(table.cells(f.column), f.spec, f.conversion, column=f.column)
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


def _render_callable(table: Table, fn: Callable[[Any], Any], skip_bad: bool = False) -> Rendered:
    texts: list[str | None] = []
    skipped: dict[int, str] = {}
    contents: dict[int, tuple[Any, ...]] = {}
    for pos, row in enumerate(table.rows()):
        try:
            text = fn(row)
        except Exception as exc:  # the caller's own code: say which row, keep its traceback
            raise PromptError(
                f"the prompt function raised {type(exc).__name__} ({exc}) on row {pos}. Fix the function, "
                f"or have it return None for rows it cannot render (they are then skipped). "
                f"Columns a row has: {_list_columns(table.names)}"
            ) from exc
        if text is None:
            skipped[pos] = "the prompt function returned None"
        elif isinstance(text, list):
            try:
                parts = _block_parts(text, pos, table)
            except media.Skip as why:
                skipped[pos] = str(why)
                parts = None
            except MediaError as exc:
                if not skip_bad:
                    raise
                skipped[pos] = exc.reason or str(exc)
                parts = None
            if parts is not None:
                contents[pos] = parts
            text = None if parts is None else "".join(p for p in parts if isinstance(p, str))
        elif not isinstance(text, str):
            raise PromptError(
                f"the prompt function must return a string, a list of content blocks, or None to skip "
                f"the row; for row {pos} it returned {type(text).__name__}"
            )
        texts.append(text)
    if not contents:
        return Rendered(texts, skipped)
    rows: list[tuple[Any, ...] | None] = [
        None if pos in skipped else contents.get(pos, (t,)) for pos, t in enumerate(texts)
    ]
    return Rendered(texts, skipped, _check_requests(rows, skipped if skip_bad else None))


_BLOCK_TYPES = ("text", "image", "document")


def _block_parts(items: list[Any], pos: int, table: Table | None = None) -> tuple[Any, ...]:
    """A prompt function's list of content blocks as row parts, checked.

    Items may be text (str), content blocks (dicts with a ``type`` of text, image or
    document), or media cells (bytes, a :class:`~pathlib.Path`, a Pillow image).
    """
    if not items:
        raise PromptError(f"the prompt function returned an empty list for row {pos}; return None to skip it")
    parts: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, Mapping):
            kind = item.get("type")
            if kind not in _BLOCK_TYPES:
                raise PromptError(
                    f"the prompt function's block {i} for row {pos} has type {kind!r}; content blocks here "
                    f"are {', '.join(map(repr, _BLOCK_TYPES))} (e.g. {{'type': 'text', 'text': ...}})"
                )
            if kind == "text" and not isinstance(item.get("text"), str):
                raise PromptError(f"the prompt function's text block {i} for row {pos} has no 'text' string")
            if kind != "text" and not isinstance(item.get("source"), Mapping):
                raise PromptError(
                    f"the prompt function's {kind} block {i} for row {pos} has no 'source' dict; give "
                    f"{{'type': {kind!r}, 'source': {{'type': 'base64', 'media_type': ..., 'data': ...}}}}, "
                    "or put the path, bytes or Pillow image itself in the list"
                )
            parts.append(dict(item))
        elif media.is_media_cell(item):
            parts.append(_read_media(item, "media", pos, f"<prompt function, item {i}>", table))
        else:
            raise PromptError(
                f"the prompt function's item {i} for row {pos} is {type(item).__name__}; a list may hold text, "
                "content-block dicts, bytes, pathlib.Path or Pillow images"
            )
    return tuple(parts)


def _row_name(table: Table | None, pos: int) -> str:
    """``row 3``, and its index label when a pandas frame's index is not its positions."""
    frame = table.frame if table is not None else None
    if frame is None or frame.index.equals(pd.RangeIndex(len(frame))):
        return f"row {pos}"
    return f"row {pos} (index {frame.index[pos]!r:.60})"


def _read_media(cell: Any, want: str, row: int, column: Hashable, table: Table | None = None) -> media.MediaRef:
    """One media cell, or the error naming its row and column (a missing file raises Skip).

    The reference keeps the row and column it was first read for, to name them should its file
    change before its request is built (:func:`_content_json`)."""
    try:
        ref = media.read_cell(cell, want)
    except media.Refused as exc:
        fix = exc.fix or "Convert or resize it (e.g. with Pillow: Image.open(p).convert('RGB').save(q, 'JPEG'))"
        error = MediaError(
            f"{_row_name(table, row)}, column {str(column)!r}: the cell {exc}. {fix}, or set the cell to None "
            "to skip the row.",
            column=str(column),
            row=row,
        )
        error.reason = f"column {str(column)!r}: the cell {exc}"
        raise error from None
    except TypeError:
        raise CellError(
            f"row {row}, column {str(column)!r}: a {{…:{want}}} cell must be a file path, an http(s) URL, bytes "
            f"or a Pillow image, not {type(cell).__name__} {cell!r:.40}. Set cells that hold none to None "
            "(the row is skipped).",
            column=str(column),
            row=row,
        ) from None
    return dataclasses.replace(ref, row=row, column=str(column)) if not ref.is_url else ref


def _render_media(table: Table, parsed: ParsedPrompt, skip_bad: bool = False) -> Rendered:
    """Rows of a prompt with ``{col:image}``/``{col:pdf}``/``{col:media}`` placeholders as parts.

    A missing value, or a file that is missing or unreadable, skips the row (with the reason);
    a cell the API would refuse raises :class:`MediaError` naming the row.
    """
    n = len(table)
    skipped: dict[int, str] = {}
    columns: list[list[Any]] = []
    for f in parsed.fields:
        values = table.cells(f.column)
        if f.spec not in MEDIA_SPECS:
            strs, missing = _cells_to_str(values, f.spec, f.conversion, column=f.column)
            for pos in missing:
                skipped.setdefault(int(pos), f"missing value in column {str(f.column)!r}")
            columns.append(strs)
            continue
        refs: list[Any] = []
        seen: dict[str, media.MediaRef] = {}  # a path named twice is read once
        for pos, (cell, absent) in enumerate(zip(values.values, values.missing, strict=True)):
            if absent:
                skipped.setdefault(pos, f"missing value in column {str(f.column)!r}")
                refs.append(None)
                continue
            try:
                if isinstance(cell, str) and cell in seen:
                    ref = seen[cell]
                else:
                    ref = _read_media(cell, f.spec, pos, f.column, table)
                    if isinstance(cell, str):
                        seen[cell] = ref
            except media.Skip as why:
                skipped.setdefault(pos, f"column {str(f.column)!r}: {why}")
                refs.append(None)
                continue
            except MediaError as exc:
                if not skip_bad:
                    raise
                skipped.setdefault(pos, exc.reason or str(exc))
                refs.append(None)
                continue
            refs.append(ref)
        columns.append(refs)
    lits = parsed.literals
    rows: list[tuple[Any, ...] | None] = []
    texts: list[str | None] = []
    for pos in range(n):
        if pos in skipped:
            rows.append(None)
            texts.append(None)
            continue
        parts: list[Any] = []
        text = lits[0]
        for i, col in enumerate(columns):
            cell = col[pos]
            if isinstance(cell, str):
                text += cell
            else:
                if text.strip():
                    parts.append(text)
                parts.append(cell)
                text = ""
            text += lits[i + 1]
        if text.strip():
            parts.append(text)
        rows.append(tuple(parts))
        texts.append("".join(p for p in parts if isinstance(p, str)))
    return Rendered(texts, skipped, _check_requests(rows, skipped if skip_bad else None))


def _check_requests(
    rows: list[tuple[Any, ...] | None], skipped: dict[int, str] | None = None
) -> list[tuple[Any, ...] | None]:
    """Refuse a row whose request holds more images than the API takes, or images too large
    for a request of that many (or, given ``skipped``, skip it there with the reason)."""
    for pos, parts in enumerate(rows):
        if not parts:
            continue
        try:
            _check_request(pos, parts)
        except MediaError as exc:
            if skipped is None:
                raise
            skipped[pos] = str(exc).partition(". ")[0].removeprefix(f"row {pos}: ")
            rows[pos] = None
    return rows


def _check_request(pos: int, parts: tuple[Any, ...]) -> None:
    images = [p for p in parts if isinstance(p, media.MediaRef) and p.kind == "image"]
    if len(images) > media.MAX_IMAGES_PER_REQUEST:
        raise MediaError(
            f"row {pos}: its request holds {len(images)} images, over the API's "
            f"{media.MAX_IMAGES_PER_REQUEST} per request. Split the row's images over several rows.",
            column="",
            row=pos,
        )
    if len(images) > media.MANY_IMAGES:
        side = media.IMAGE_MAX_SIDE_MANY
        for ref in images:
            if max(ref.width or 0, ref.height or 0) > side:
                raise MediaError(
                    f"row {pos}: its request holds {len(images)} images (over {media.MANY_IMAGES}), and then "
                    f"each may be at most {side}×{side} px; one is {ref.width}×{ref.height}. Resize the "
                    f"images to {side} px or less, or send at most {media.MANY_IMAGES} per row.",
                    column="",
                    row=pos,
                )


def _cells_to_str(
    values: Cells, spec: str, conversion: str | None, *, column: Hashable = None
) -> tuple[list[Any], Iterable[int]]:
    """A column's cells as strings (None where missing) and the positions that are missing.

    Raises:
        CellError: a cell the format spec does not fit, or one nested too deep to render;
            the message names the row, the column and the placeholder.
    """
    missing_mask = values.missing
    missing = missing_mask.nonzero()[0]
    cells = values.values
    if not spec and conversion is None and not len(missing):
        if values.strings:  # the dtype says every cell present is a str
            return cells, missing
        if values.strings is None and all(type(c) is str for c in cells):
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
            column=str(column),
            row=row,
        ) from None
    raise CellError(
        f"row {row}, column {str(column)!r}: the placeholder {field_text} cannot format "
        f"{type(cell).__name__} {cell!r:.40} ({exc}). Use a format that fits the column's values "
        f"(e.g. {{{column}}} with no spec for text), or convert the column first (df[{str(column)!r}].astype(float)).",
        column=str(column),
        row=row,
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
    content_at_top: bool = True
    """Whether the row's part is the user message's whole content (no ``content`` builder), so
    a row may put a list of content blocks there (images, PDFs)."""
    key_prefix: bytes | None = None
    """With cache markers: the params serialized without them (:func:`unmarked_params`), up to
    the row's JSON *without its opening quote* — a row is keyed by
    ``key_prefix + json(text)[1:] + key_suffix``. None without markers: the key is the body's."""
    key_suffix: bytes = b""

    def body(self, text: str) -> bytes:
        """The canonical params JSON of one request."""
        return self.prefix + _json.dumps(text) + self.suffix

    def key(self, text: str) -> str:
        """The request key of one row (not the hot path: :func:`plan_requests` inlines it)."""
        if self.key_prefix is None:
            return request_key(self.body(text))
        return request_key(self.key_prefix + _json.dumps(text)[1:] + self.key_suffix)

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
        raise ConfigurationError(f"model must be a model id string such as 'claude-haiku-4-5', not {model!r}")
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
            "messages= is built from the prompt; pass the row template as prompt= and shared instructions as system="
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
    key_prefix, key_suffix = None, b""
    unmarked = unmarked_params(body)
    if unmarked is not None:
        key_blob = _json.dumps_sorted(unmarked)
        if key_blob.count(_SENTINEL_OPEN) != 1:
            raise ConfigurationError("the row text must appear exactly once in the request")
        key_prefix, key_suffix = key_blob.split(_SENTINEL_OPEN)
    return RequestTemplate(
        prefix, suffix, model, content_at_top=content is None, key_prefix=key_prefix, key_suffix=key_suffix
    )


def request_key(body: bytes) -> str:
    """The content key of a request body: the 32 hex digits of its 128-bit BLAKE2b digest.

    For a body that may carry cache markers use :func:`params_key`.
    """
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def params_key(params: Mapping[str, Any]) -> str:
    """The request key of one request's params: of the params themselves, or — when they carry
    cache markers — of :func:`unmarked_params`. Equal to what :func:`plan_requests` gives the
    row that rendered them (a media row's params with each file's data as its ``blake2b:`` digest)."""
    unmarked = unmarked_params(params)
    return request_key(_json.dumps_sorted(params if unmarked is None else unmarked))


_TEXT_BLOCK = frozenset(("type", "text"))
_MARKED_TEXT_BLOCK = frozenset(("type", "text", "cache_control"))


def unmarked_params(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The params as keyed when they carry cache markers, or None when they carry none.

    Every ``cache_control`` is dropped (outside the messages: system blocks, tools), and what
    prompt caching changed in the layout is undone, so a cached request keys like the same
    request sent uncached (``cache=False``):

    * a user content of exactly a marked text block and a text block (batchkit's shared lead
      and the row's text) becomes the one string they spell;
    * a system of one text block that was marked becomes its text.
    """
    found = False

    def strip(value: Any) -> Any:
        nonlocal found
        if isinstance(value, dict):
            if "cache_control" in value:
                found = True
            return {k: strip(v) for k, v in value.items() if k != "cache_control"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "messages":
            out[name] = [_unmarked_message(m) for m in value] if isinstance(value, list) else value
            if out[name] != value:
                found = True
        elif (
            name == "system"
            and isinstance(value, list)
            and len(value) == 1
            and isinstance(value[0], dict)
            and value[0].keys() == _MARKED_TEXT_BLOCK
            and value[0].get("type") == "text"
            and isinstance(value[0].get("text"), str)
        ):
            out[name] = value[0]["text"]
            found = True
        else:
            out[name] = strip(value)
    return out if found else None


def _unmarked_message(message: Any) -> Any:
    """A message with batchkit's cached lead merged back into the row's text (else as is)."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if (
        isinstance(content, list)
        and len(content) == 2
        and all(isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in content)
        and content[0].keys() == _MARKED_TEXT_BLOCK
        and content[1].keys() == _TEXT_BLOCK
    ):
        return {**message, "content": content[0]["text"] + content[1]["text"]}
    return message


@dataclass
class Plan:
    """What a call sends: a key per row and one batch entry per distinct key."""

    row_keys: list[str | None]
    """Row position → request key (None for skipped rows)."""
    lines: dict[str, bytes] | MediaLines
    """Request key → its ``{"custom_id": …, "params": …}`` entry of a batch body, first-seen order.
    With images or PDFs, a :class:`MediaLines` that builds an entry only when it is read."""
    skipped: dict[int, str]

    def body(self, key: str) -> bytes:
        """The canonical params JSON of one request."""
        return line_body(self.lines[key])

    def line_sizes(self) -> Iterator[int]:
        """Bytes of each request's batch entry, in key order, without building media entries."""
        lines = self.lines
        if isinstance(lines, MediaLines):
            return map(lines.size, lines)
        return map(len, lines.values())


class MediaLines(MutableMapping[str, bytes]):
    """Batch entries of requests with images or PDFs, built (files read, base64-encoded) only
    when one is read: a plan over 10 GB of images holds its rows' recipes, not their bytes.

    Keys and sizes are known up front (the size of a base64 block follows from the file's), so
    batches are cut by bytes before any body exists; :func:`chunk_requests` then builds one
    batch body at a time. Entries set on it (a retry's, read back from the store) are kept as
    given.
    """

    def __init__(self, prefix: bytes, suffix: bytes) -> None:
        self._prefix, self._suffix = prefix, suffix
        self._recipes: dict[str, tuple[Any, ...]] = {}
        self._sizes: dict[str, int] = {}
        self._given: dict[str, bytes] = {}

    def add(self, key: str, parts: tuple[Any, ...], size: int) -> None:
        self._recipes[key] = parts
        self._sizes[key] = size

    def __getitem__(self, key: str) -> bytes:
        given = self._given.get(key)
        if given is not None:
            return given
        parts = self._recipes[key]
        return make_line(key, self._prefix + _content_json(parts, sent=True) + self._suffix)

    def __contains__(self, key: object) -> bool:
        return key in self._recipes or key in self._given

    def __iter__(self) -> Iterator[str]:
        yield from self._recipes
        yield from (k for k in self._given if k not in self._recipes)

    def __len__(self) -> int:
        return len(self._recipes) + sum(1 for k in self._given if k not in self._recipes)

    def __setitem__(self, key: str, line: bytes) -> None:
        self._given[key] = line

    def __delitem__(self, key: str) -> None:
        found = self._recipes.pop(key, None) is not None
        self._sizes.pop(key, None)
        if self._given.pop(key, None) is None and not found:
            raise KeyError(key)

    def clear(self) -> None:
        self._recipes.clear()
        self._sizes.clear()
        self._given.clear()

    def size(self, key: str) -> int:
        """Bytes of the entry of ``key``, without building it."""
        given = self._given.get(key)
        return len(given) if given is not None else self._sizes[key]

    def parts(self, key: str) -> tuple[Any, ...] | None:
        """The row parts of ``key`` (text, media references, blocks), or None for a given entry."""
        return self._recipes.get(key)

    def media_tokens(self, key: str) -> int:
        """Input tokens of the images and PDFs of ``key`` by the API's documented rules."""
        return sum(p.tokens() for p in self._recipes.get(key, ()) if isinstance(p, media.MediaRef))

    def light_body(self, key: str) -> bytes:
        """The params of ``key`` with each image or PDF standing in by its digest (for counting
        text tokens offline without reading files)."""
        parts = self._recipes.get(key)
        if parts is None:
            return line_body(self._given[key])
        return self._prefix + _content_json(parts, sent=False) + self._suffix

    def select(self, keys: Iterable[str]) -> MediaLines:
        """A view holding only ``keys`` (recipes shared, nothing built)."""
        out = MediaLines(self._prefix, self._suffix)
        for k in keys:
            if k in self._given:
                out._given[k] = self._given[k]
            else:
                out._recipes[k] = self._recipes[k]
                out._sizes[k] = self._sizes[k]
        return out


def select_lines(lines: Mapping[str, bytes], keys: Iterable[str]) -> Mapping[str, bytes]:
    """The entries of ``keys`` — a lazy view for :class:`MediaLines` (nothing is read)."""
    if isinstance(lines, MediaLines):
        return lines.select(keys)
    return {k: lines[k] for k in keys}


def _content_json(parts: tuple[Any, ...], *, sent: bool) -> bytes:
    """A row's user content as a JSON array of blocks: media as sent (base64 read now) or as keyed."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(b'{"text":%s,"type":"text"}' % _json.dumps(part))
        elif isinstance(part, media.MediaRef):
            out.append(_sent_block(part) if sent else part.key_json())
        else:
            out.append(_json.dumps_sorted(part))
    return b"[" + b",".join(out) + b"]"


def _sent_block(ref: media.MediaRef) -> bytes:
    """An image or PDF block as sent, from bytes checked to be the ones its request was keyed by."""
    try:
        return ref.block_json()
    except media.Changed as exc:
        raise MediaError(
            f"row {ref.row}, column {ref.column!r}: {exc}. Its request is keyed by the bytes read when the call "
            "was planned, so it is not sent with others (nor is an answer stored under that key). Keep files "
            "unchanged while a call reads them, and run the call again to send the file as it is now.",
            column=ref.column,
            row=ref.row,
        ) from None


def make_line(key: str, body: bytes) -> bytes:
    """One entry of a batch create body."""
    return b'{"custom_id":"%s","params":%s}' % (key.encode(), body)


def line_body(line: bytes) -> bytes:
    """The params JSON inside a batch entry made by :func:`make_line`."""
    return line[line.index(b'","params":') + 11 : -1]


def plan_requests(rendered: Rendered, template: RequestTemplate) -> Plan:
    """Key every row's request and keep one batch entry per distinct key."""
    if rendered.contents is not None:
        return _plan_media(rendered.contents, rendered.skipped, template)
    prefix, suffix = template.prefix, template.suffix
    dumps = _json.dumps
    blake = hashlib.blake2b
    join = b"".join
    lines: dict[str, bytes] = {}
    row_keys: list[str | None] = []
    append = row_keys.append
    if template.key_prefix is not None:
        _plan_marked(rendered.texts, template, lines, append)
        return Plan(row_keys, lines, dict(rendered.skipped))
    # The body (prefix + row + suffix) is hashed piece by piece and the entry built in one join,
    # so no body object is made per row only to be copied into its entry: 10–15% less CPU here,
    # the same keys and bytes.
    head, middle, tail = b'{"custom_id":"', b'","params":' + prefix, suffix + b"}"
    for text in rendered.texts:
        if text is None:
            append(None)
            continue
        row = dumps(text)
        h = blake(prefix, digest_size=16)
        h.update(row)
        h.update(suffix)
        key = h.hexdigest()
        # A repeated row lands on the same key: sent once.
        lines[key] = join((head, key.encode(), middle, row, tail))
        append(key)
    return Plan(row_keys, lines, dict(rendered.skipped))


def _plan_marked(
    texts: Iterable[str | None],
    template: RequestTemplate,
    lines: dict[str, bytes],
    append: Callable[[str | None], None],
) -> None:
    """:func:`plan_requests` for a template with cache markers: each row's body as sent, keyed
    by the same row in the unmarked params.

    The key's long shared part (the cached prefix, thousands of tokens by definition) is hashed
    once: each row copies that hash state and adds only its own text and the short suffix —
    less hashing per row than keying the body as sent.
    """
    prefix, suffix = template.prefix, template.suffix
    ksuffix = template.key_suffix
    shared = hashlib.blake2b(cast(bytes, template.key_prefix), digest_size=16)
    dumps = _json.dumps
    for text in texts:
        if text is None:
            append(None)
            continue
        row = dumps(text)
        h = shared.copy()
        h.update(memoryview(row)[1:])
        h.update(ksuffix)
        key = h.hexdigest()
        lines[key] = b'{"custom_id":"%s","params":%s%s%s}' % (key.encode(), prefix, row, suffix)
        append(key)


def _plan_media(contents: list[tuple[Any, ...] | None], skipped: dict[int, str], template: RequestTemplate) -> Plan:
    """Key requests with images or PDFs by their content: each file's bytes stand in by their
    digest, so the same photo under two names is one request and a changed file a new one."""
    prefix, suffix = template.prefix, template.suffix
    if not template.content_at_top:
        raise ConfigurationError(
            "images and PDFs go in the user message's content, which this call already shapes "
            "(prompt caching of a shared lead text): pass cache=False"
        )
    lines = MediaLines(prefix, suffix)
    row_keys: list[str | None] = []
    for parts in contents:
        if parts is None:
            row_keys.append(None)
            continue
        row = _content_json(parts, sent=False)
        body = prefix + row + suffix
        # Markers only in the system or tools here: the key template's row string opens right
        # before the sentinel, so the row's array goes in place of that quote.
        key = request_key(body if template.key_prefix is None else template.key_prefix[:-1] + row + template.key_suffix)
        if key not in lines:
            size = len(make_line(key, body)) + sum(
                p.block_size() - len(p.key_json()) for p in parts if isinstance(p, media.MediaRef)
            )
            lines.add(key, parts, size)
        row_keys.append(key)
    return Plan(row_keys, lines, dict(skipped))


# --------------------------------------------------------------------------- chunks


class Chunk:
    """One batch's worth of requests.

    ``body`` is the whole ``{"requests": [...]}`` create body, ready to send. A chunk of
    :class:`MediaLines` is ``streamed``: its body is built (files read, base64-encoded) each
    time it is read, so hold on to it only as long as it takes to write it down.
    """

    def __init__(self, keys: list[str], body: bytes | None = None, *, lines: Mapping[str, bytes] | None = None) -> None:
        self.keys = keys
        self._body = body
        self._lines = lines

    @property
    def streamed(self) -> bool:
        return self._body is None

    def stored(self) -> bytes | tuple[int, Iterator[bytes]]:
        """The body as the store takes it: bytes, or for a streamed chunk ``(size, pieces)``
        (entries built one at a time as the store writes them)."""
        if self._body is not None:
            return self._body
        lines = self._lines
        assert isinstance(lines, MediaLines)
        keys = self.keys
        total = _ENVELOPE_BYTES + sum(lines.size(k) for k in keys) + len(keys) - 1

        def pieces() -> Iterator[bytes]:
            yield b'{"requests":['
            for i, key in enumerate(keys):
                if i:
                    yield b","
                yield lines[key]
            yield b"]}"

        return total, pieces()

    @property
    def body(self) -> bytes:
        if self._body is not None:
            return self._body
        lines = self._lines
        assert lines is not None
        if not isinstance(lines, MediaLines):
            return _chunk(self.keys, [lines[k] for k in self.keys]).body
        # One buffer of the final size, filled an entry at a time: a 256 MB body is never
        # copied while it grows, and only one file's bytes are read at once.
        total = _ENVELOPE_BYTES + sum(lines.size(k) for k in self.keys) + len(self.keys) - 1
        buf = bytearray(total)
        view = memoryview(buf)
        at = len(b'{"requests":[')
        view[:at] = b'{"requests":['
        for i, key in enumerate(self.keys):
            if i:
                view[at : at + 1] = b","
                at += 1
            line = lines[key]
            view[at : at + len(line)] = line
            at += len(line)
        view[at:] = b"]}"
        view.release()
        return buf  # type: ignore[return-value]  # bytes-like: sqlite3 and httpx take it as is


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
    if isinstance(lines, MediaLines):
        return _chunk_sized(lines, max_requests, max_bytes)
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


def _chunk_sized(lines: MediaLines, max_requests: int, max_bytes: int) -> list[Chunk]:
    """Cut :class:`MediaLines` into batches by their known sizes; bodies are built later."""
    chunks: list[Chunk] = []
    keys: list[str] = []
    size = _ENVELOPE_BYTES
    for key in lines:
        cost = lines.size(key) + 1
        if _ENVELOPE_BYTES + cost > max_bytes:
            raise RequestTooLargeError(
                f"one request is {cost - 1:,} bytes, more than a whole batch may be "
                f"({max_bytes:,} bytes). Send fewer or smaller images in that row (request key {key}).",
                size=cost - 1,
            )
        if keys and (len(keys) >= max_requests or size + cost > max_bytes):
            chunks.append(Chunk(keys, lines=lines))
            keys, size = [], _ENVELOPE_BYTES
        keys.append(key)
        size += cost
    if keys:
        chunks.append(Chunk(keys, lines=lines))
    return chunks


def _chunk(keys: list[str], values: list[bytes]) -> Chunk:
    # One join, the envelope riding on the first and last entries: a body of hundreds of MB
    # is copied once, not once more for each piece added around it.
    parts = list(values)
    parts[0] = b'{"requests":[' + parts[0]
    parts[-1] = parts[-1] + b"]}"
    return Chunk(keys, b",".join(parts))
