"""Rows → the user content of each request: prompt text, or text and media parts. Pure: no
network, no store (image and PDF files named in a prompt are read, see below).

A prompt is a ``str.format``-style template (``{column}`` reads that row's value) or a function
``row -> str | list of blocks``. :func:`render_prompts` turns a frame's rows into one text per
row, working on whole columns: each placeholder's column becomes strings once, then the rows
are concatenated — no per-row dict, no per-row formatter. A row whose referenced value is
missing is skipped with the reason, never sent with a blank.

**Images and PDFs.** ``{col:image}``, ``{col:pdf}`` and ``{col:media}`` placeholders (or a prompt
function returning a list of blocks) make a row's user content a list of content blocks. Such a
row keeps a recipe — its text parts and a :class:`~batchkit.core.media.MediaRef` per file — that
:mod:`batchkit.core.plan` keys by each file's digest and builds into a body only when read.

What happens to the text next — serialized around the call's params, keyed, deduplicated — is
:mod:`batchkit.core.plan`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import string
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from batchkit.errors import CellError, MediaError, MissingColumnError, PromptError, warn

from . import _json, bulk, media
from .columns import Cells, Table, as_table

__all__ = ["MEDIA_SPECS", "ParsedPrompt", "Rendered", "parse_prompt", "render_prompts"]

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


class Rendered:
    """The prompt text of every row, or why a row is not sent."""

    __slots__ = ("_texts", "columns", "contents", "skipped")

    def __init__(
        self,
        texts: list[str | None] | None = None,
        skipped: dict[int, str] | None = None,
        contents: list[tuple[Any, ...] | None] | None = None,
        *,
        columns: bulk.TextColumns | None = None,
    ) -> None:
        if texts is None and columns is None:
            raise TypeError("Rendered needs the rows' texts or their columns")
        self._texts = texts
        self.skipped: dict[int, str] = {} if skipped is None else skipped
        """Row position → the reason it is not sent."""
        self.contents = contents
        """For a prompt with images or PDFs: each row's content as parts — text (str), a
        :class:`~batchkit.core.media.MediaRef`, or a content block (dict) — None where skipped.
        ``texts`` then holds only the rows' text parts joined (for display)."""
        self.columns = columns
        """Rendered in bulk (:mod:`batchkit.core.bulk`): the template's literals around the
        columns as Arrow holds them; the texts are then made only when read."""

    @property
    def texts(self) -> list[str | None]:
        """One entry per row, in row order; None where the row is skipped."""
        if self._texts is None:
            assert self.columns is not None
            self._texts = self.columns.texts()
        return self._texts

    def __repr__(self) -> str:
        how = "in bulk" if self._texts is None else f"{len(self._texts):,} texts"
        return f"<Rendered {how}, {len(self.skipped):,} skipped>"


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
    in_bulk = _render_bulk(table, parsed)
    if in_bulk is not None:
        return in_bulk
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


def _render_bulk(table: Table, parsed: ParsedPrompt) -> Rendered | None:
    """The rows as columns (:mod:`batchkit.core.bulk`) when every placeholder is a plain
    substitution of a column Arrow holds as text; else None (they are rendered row by row)."""
    if any(f.spec or f.conversion is not None for f in parsed.fields):
        return None
    held: dict[Hashable, Any] = {}
    for f in parsed.fields:
        if f.column not in held:
            column = table.arrow_text(f.column)
            if column is None:
                return None
            held[f.column] = column
    skipped: dict[int, str] = {}
    for name, column in held.items():  # as the row path says it: the first placeholder's column missing
        if column.null_count:
            reason = f"missing value in column {str(name)!r}"
            for pos in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)).tolist():
                skipped.setdefault(pos, reason)
    columns = tuple(held[f.column] for f in parsed.fields)
    return Rendered(skipped=skipped, columns=bulk.TextColumns(parsed.literals, columns))


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
    change before its request is built (:mod:`batchkit.core.plan`)."""
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
        if f.spec in MEDIA_SPECS:
            columns.append(_media_column(values, f, table, skipped, skip_bad))
            continue
        strs, missing = _cells_to_str(values, f.spec, f.conversion, column=f.column)
        for pos in missing:
            skipped.setdefault(int(pos), f"missing value in column {str(f.column)!r}")
        columns.append(strs)
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


def _media_column(
    values: Cells, f: _Field, table: Table, skipped: dict[int, str], skip_bad: bool
) -> list[media.MediaRef | None]:
    """One media placeholder's column as references (None where its row is skipped, the reason
    added to ``skipped``); a path named twice is read once."""
    refs: list[media.MediaRef | None] = []
    seen: dict[str, media.MediaRef] = {}
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
    return refs


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
        iso: str = ts.date().isoformat() if ts.tz is None and ts == ts.normalize() else ts.isoformat()
        return iso
    if isinstance(cell, (dict, list, tuple)):
        return _json.dumps(cell).decode()
    if isinstance(cell, bytes):
        return cell.decode("utf-8", "replace")
    return str(cell)
