"""The bulk path: a prompt rendered, serialized and keyed a column at a time, not a row at a time.
Pure: no network, no store.

When every ``{column}`` of a prompt is a plain substitution (no format spec, no conversion) of
a column Arrow already holds as text (:meth:`batchkit.core.columns.Table.arrow_text`: a pandas
``str`` column, a pyarrow string array, a polars String Series), the rows never become Python
strings. Each column is JSON-escaped once with Arrow's string kernels (:func:`escape`, byte for
byte what msgspec writes: the same 34 escapes), the template's literals once with msgspec, and
one Arrow join gives every row's request body. What stays a step per row is the content key —
BLAKE2b has no vectorised form — hashed straight from the joined bodies' buffer with no copy and
no encode. The bodies stay in that one buffer (:class:`ColumnLines`); a batch's create body is
one more join of its entries and one copy (cut by :func:`chunk_lines`), so no Python object is
made per request, and at 1,000,000 rows the plan holds about half the memory the row path's does.

The bodies and keys are the ones the row path (:func:`batchkit.core.plan.plan_requests`) gives,
byte for byte (``tests/test_bulk.py`` holds the two paths to that on awkward text). pyarrow is
optional: without it every prompt takes the row path.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchkit.errors import RequestTooLargeError

from . import _json

__all__ = ["ColumnLines", "TextColumns", "chunk_lines", "escape", "plan_columns"]

_ENVELOPE_HEAD, _ENVELOPE_TAIL = b'{"requests":[', b"]}"
_ENVELOPE_BYTES = len(_ENVELOPE_HEAD + _ENVELOPE_TAIL)

_SHORT_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_ESCAPES = {byte: _SHORT_ESCAPES.get(byte, f"\\u{byte:04x}") for byte in (*range(0x20), 0x22, 0x5C)}
"""What JSON (msgspec) writes for each byte it escapes in a string: ``"``, ``\\``, and the
control characters below U+0020, five of them by letter. Every other character, non-ASCII
included, is written as its UTF-8 bytes; no escaped byte occurs inside a multi-byte one."""


@dataclass(frozen=True)
class TextColumns:
    """A prompt's rows as columns: the template's literals around one Arrow text array per
    placeholder (``len(literals) == len(columns) + 1``), all of one length, null where the cell
    is missing (the row is skipped)."""

    literals: tuple[str, ...]
    columns: tuple[Any, ...]

    def texts(self) -> list[str | None]:
        """Each row's prompt text, None where a cell is missing (what the row path renders)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        text = pa.large_string()
        parts = [pa.scalar(lit, text) for lit in self.literals]
        args = [parts[0]]
        for column, lit in zip(self.columns, parts[1:], strict=True):
            args += [column, lit]
        texts: list[str | None] = pc.binary_join_element_wise(*args, pa.scalar("", text)).to_pylist()
        return texts


def escape(column: Any) -> Any:
    """A text array's values JSON-escaped as msgspec escapes a string (without the quotes).

    >>> import pyarrow as pa
    >>> escape(pa.array(['say "hi"\\n', None], pa.large_string())).to_pylist()
    ['say \\\\"hi\\\\"\\\\n', None]
    """
    import pyarrow.compute as pc

    present = _special_bytes(column)
    # The backslash first: the escapes put in after it carry backslashes of their own.
    for byte in sorted(present, key=lambda b: b != 0x5C):
        column = pc.replace_substring(column, chr(byte), _ESCAPES[byte])
    return column


def _special_bytes(column: Any) -> list[int]:
    """The bytes JSON escapes that occur in a text array's values (read from its data buffer)."""
    data = _values_bytes(column)
    if data.size == 0:
        return []
    found = data[(data < 0x20) | (data == 0x22) | (data == 0x5C)]
    return np.unique(found).tolist() if found.size else []


def _offsets(column: Any) -> np.ndarray:
    """The ``len + 1`` int64 value offsets of a ``large_string`` array (its slice offset read)."""
    buffer = column.buffers()[1]
    return np.frombuffer(buffer, dtype=np.int64, count=len(column) + 1, offset=8 * column.offset)


def _values_bytes(column: Any) -> np.ndarray:
    """The bytes of a ``large_string`` array's values, end to end, as uint8 (no copy)."""
    data = column.buffers()[2]
    if data is None or len(column) == 0:
        return np.zeros(0, dtype=np.uint8)
    offsets = _offsets(column)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]


def _digests(column: Any) -> list[str]:
    """The request key of each value of a ``large_string`` array: the one step per row.

    Each value is hashed where it lies in the array's buffer (a memoryview slice: no bytes object
    made, nothing encoded), with the digest :func:`batchkit.core.keys.request_key` gives."""
    data = column.buffers()[2]
    view = memoryview(data if data is not None else b"")
    offsets = _offsets(column).tolist()
    # request_key's digest, spelled out: a Python call per row is a tenth of the hashing
    blake2b = hashlib.blake2b
    return [blake2b(view[a:b], digest_size=16).hexdigest() for a, b in itertools.pairwise(offsets)]


def _join(*parts: Any) -> Any:
    """Arrow text arrays and literal strings joined row by row (null where any array is)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    args = [pa.scalar(p, text) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", text))


def plan_columns(
    rows: TextColumns, prefix: bytes, suffix: bytes, key_prefix: bytes | None = None, key_suffix: bytes = b""
) -> tuple[list[str | None], ColumnLines]:
    """Every row's request key (None for a skipped row) and one batch entry per distinct key.

    ``prefix``/``suffix`` are a call's params serialized around the row's JSON string
    (:class:`batchkit.core.plan.RequestTemplate`); with cache markers, ``key_prefix`` and
    ``key_suffix`` are the unmarked params around it without its opening quote, which the key
    is hashed from instead of the body.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(rows.columns[0])
    present = None
    if any(c.null_count for c in rows.columns):
        present = pc.invert(functools.reduce(pc.or_, [c.is_null() for c in rows.columns]))
    escaped_of: dict[int, Any] = {}  # a column named twice is escaped once
    for column in rows.columns:
        if id(column) not in escaped_of:
            escaped_of[id(column)] = escape(column if present is None else column.filter(present))
    escaped = [escaped_of[id(c)] for c in rows.columns]
    literals = [_json.dumps(lit)[1:-1].decode() for lit in rows.literals]
    middle: list[Any] = []
    for column, lit in zip(escaped, literals[1:-1], strict=False):
        middle += [column, lit]
    middle.append(escaped[-1])
    bodies = _join(prefix.decode() + '"' + literals[0], *middle, literals[-1] + '"' + suffix.decode())
    if key_prefix is None:
        keys = _digests(bodies)
    else:
        keys = _digests(_join(key_prefix.decode() + literals[0], *middle, literals[-1] + '"' + key_suffix.decode()))
    del escaped, escaped_of, middle
    index = dict(zip(keys, range(len(keys)), strict=True))
    distinct = keys
    if len(index) < len(keys):  # a repeated row is sent once: the first of each key, in row order
        first = sorted(dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True)).values())
        bodies = bodies.take(pa.array(first))
        distinct = [keys[i] for i in first]
        index = dict(zip(distinct, range(len(distinct)), strict=True))
    row_keys: list[str | None]
    if present is None:
        row_keys = list(keys)
    else:
        placed, found = np.full(n, None, dtype=object), np.empty(len(keys), dtype=object)
        found[:] = keys
        placed[present.to_numpy(zero_copy_only=False)] = found
        row_keys = placed.tolist()
    return row_keys, ColumnLines(distinct, bodies, index)


_LINE_HEAD, _LINE_MIDDLE, _LINE_TAIL = '{"custom_id":"', '","params":', "}"
_LINE_EXTRA = len(_LINE_HEAD) + len(_LINE_MIDDLE) + len(_LINE_TAIL)
"""Bytes a batch entry adds around its key and its body (:func:`batchkit.core.plan.make_line`)."""


class ColumnLines(MutableMapping[str, bytes]):
    """Batch entries (request key → ``{"custom_id": …, "params": …}``) held as their keys and
    one Arrow array of their request bodies. An entry is made a bytes object only when one is
    read on its own; a batch's create body is one Arrow join of its entries and one copy
    (:meth:`body`), so only one batch's entries exist at a time beside the bodies.

    Entries set on it (a retry's, read back from the store) are kept beside it, and deleted
    ones are marked; :attr:`intact` says neither happened (then :func:`chunk_lines` applies).
    """

    def __init__(self, keys: list[str], bodies: Any, index: dict[str, int]) -> None:
        self._hold(keys, bodies, index)
        self._given: dict[str, bytes] = {}
        self._dropped: set[str] = set()

    def _hold(self, keys: list[str], bodies: Any, index: dict[str, int]) -> None:
        self._keys, self._bodies, self._index = keys, bodies, index
        data = bodies.buffers()[2] if keys else None
        self._offsets = _offsets(bodies) if keys else np.zeros(1, dtype=np.int64)
        self._view = memoryview(data if data is not None else b"")

    @property
    def intact(self) -> bool:
        return not self._given and not self._dropped

    def _position(self, key: str) -> int | None:
        at = self._index.get(key)
        return None if at is None or key in self._dropped else at

    def __getitem__(self, key: str) -> bytes:
        given = self._given.get(key)
        if given is not None:
            return given
        at = self._position(key)
        if at is None:
            raise KeyError(key)
        body = self._view[self._offsets[at] : self._offsets[at + 1]]
        return b"".join((_LINE_HEAD.encode(), key.encode(), _LINE_MIDDLE.encode(), body, _LINE_TAIL.encode()))

    def __contains__(self, key: object) -> bool:
        return key in self._given or (isinstance(key, str) and self._position(key) is not None)

    def __iter__(self) -> Iterator[str]:
        if self.intact:  # the list's own iterator: callers walk every key (the store's look-ups)
            return iter(self._keys)
        kept = (k for k in self._keys if k not in self._dropped)
        return itertools.chain(kept, (k for k in self._given if self._position(k) is None))

    def __len__(self) -> int:
        return len(self._keys) - len(self._dropped) + sum(1 for k in self._given if self._position(k) is None)

    def __setitem__(self, key: str, line: bytes) -> None:
        self._given[key] = line

    def __delitem__(self, key: str) -> None:
        given = self._given.pop(key, None)
        if self._position(key) is not None:
            self._dropped.add(key)
        elif given is None:
            raise KeyError(key)

    def clear(self) -> None:
        self._hold([], None, {})  # lets go of the bodies
        self._given.clear()
        self._dropped.clear()

    def _ends(self) -> np.ndarray:
        """Where each entry would end, each followed by a comma, were they laid end to end."""
        keys = np.fromiter(map(len, self._keys), dtype=np.int64, count=len(self._keys))
        ends: np.ndarray = self._offsets - self._offsets[0]
        ends[1:] += np.cumsum(keys + _LINE_EXTRA + 1)
        return ends

    def sizes(self) -> Iterator[int]:
        """Bytes of each entry, in key order."""
        if not self.intact:
            return map(len, self.values())
        return iter((np.diff(self._ends()) - 1).tolist())

    def select(self, keys: Iterable[str]) -> MutableMapping[str, bytes]:
        """The entries of ``keys`` (a new :class:`ColumnLines` taken in bulk while intact)."""
        wanted = list(dict.fromkeys(keys))
        if not self.intact or not wanted:
            return {k: self[k] for k in wanted}
        import pyarrow as pa

        index = self._index
        taken = self._bodies.take(pa.array([index[k] for k in wanted], pa.int64()))
        return ColumnLines(wanted, taken, dict(zip(wanted, range(len(wanted)), strict=True)))

    def body(self, start: int, stop: int) -> bytes:
        """The create body of entries ``start`` up to ``stop``: one Arrow join, one copy."""
        import pyarrow as pa

        keys = pa.array(self._keys[start:stop], pa.large_string())
        lines = _join(_LINE_HEAD, keys, _LINE_MIDDLE, self._bodies[start:stop], _LINE_TAIL + ",")
        data = _values_bytes(lines)
        return b"".join((_ENVELOPE_HEAD, data[:-1].data, _ENVELOPE_TAIL))

    def cuts(self, max_requests: int, max_bytes: int) -> list[tuple[int, int]]:
        """Where batches of at most ``max_requests`` entries and ``max_bytes`` bytes of create
        body begin and end: the row path's cuts (each entry counted with its comma).

        Raises:
            RequestTooLargeError: one entry alone would not fit in a batch.
        """
        at = self._ends()
        n = len(self._keys)
        out: list[tuple[int, int]] = []
        start = 0
        while start < n:
            fits = int(np.searchsorted(at, at[start] + max_bytes - _ENVELOPE_BYTES, side="right")) - 1
            stop = min(start + max_requests, fits, n)
            if stop <= start:
                size = int(at[start + 1] - at[start]) - 1
                raise RequestTooLargeError(
                    f"one request is {size:,} bytes, more than a whole batch may be ({max_bytes:,} bytes). "
                    f"Shorten that row's text (request key {self._keys[start]}).",
                    size=size,
                )
            out.append((start, stop))
            start = stop
        return out

    def keys_between(self, start: int, stop: int) -> list[str]:
        return self._keys[start:stop]


def chunk_lines(lines: ColumnLines, max_requests: int, max_bytes: int) -> list[tuple[list[str], bytes]]:
    """Intact :class:`ColumnLines` cut into batches: each batch's keys and its create body."""
    return [(lines.keys_between(a, b), lines.body(a, b)) for a, b in lines.cuts(max_requests, max_bytes)]
