"""Request params → keyed batch entries → batch bodies within the API's limits. Pure: no
network, no store (the image and PDF files of a plan are read when its bodies are built).

The hot path never builds a dict per row. Every request of a call shares the same params but
for the user's text, so the params are serialized once (canonical JSON, sorted keys) around a
sentinel and split into a prefix and a suffix (:func:`build_template`); a row's request body is
then ``prefix + json(text) + suffix`` — one ``_json.dumps`` of a string per row. The template
trusts its arguments: a call's options were checked by :mod:`batchkit.core.options`.

:func:`plan_requests` keys each row's body (:mod:`batchkit.core.keys`: the content hash, cache
markers left out — a template with markers carries a second prefix/suffix pair serialized without
them, :attr:`RequestTemplate.key_prefix`; a template without keeps the body's key, byte for byte)
and keeps one batch entry per distinct key: a repeated row is sent once.

**Images and PDFs.** A row with media parts (:mod:`batchkit.core.render`) is keyed by its params
with each file's bytes standing in by their digest. :class:`MediaLines` builds the base64 entry of
a request only when it is read, from sizes known up front, so :func:`chunk_requests` cuts batches
by bytes before any body exists and the store writes each body entry by entry
(:meth:`Chunk.stored`).

:func:`chunk_requests` cuts the entries into batches of at most 100,000 requests and 256 MB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from batchkit.errors import ConfigurationError, InvalidOptionError, MediaError, RequestTooLargeError

from . import _json, media
from .bulk import ColumnLines, chunk_lines, plan_columns
from .keys import request_key, unmarked_params
from .render import Rendered

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "Chunk",
    "MediaLines",
    "Plan",
    "RequestTemplate",
    "build_template",
    "chunk_requests",
    "line_body",
    "make_line",
    "plan_requests",
    "select_lines",
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


# --------------------------------------------------------------------------- the call's params


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
        params: dict[str, Any] = _json.loads(self.body(text))
        return params


def build_template(
    *,
    model: str,
    max_tokens: int,
    system: str | Sequence[Mapping[str, Any]] | None = None,
    stop_sequences: Sequence[str] | None = None,
    content: Callable[[str], Any] | None = None,
    **params: Any,
) -> RequestTemplate:
    """Serialize a call's params once around a sentinel for the row text.

    The params are a call's checked options (:meth:`batchkit.core.options.RequestParams.template_kwargs`):
    nothing is validated here but that they serialize. ``content`` maps the row text to the user
    message content (default: the text itself); structured outputs and prompt caching use it to
    wrap the text in blocks.

    Raises:
        ConfigurationError: params that do not serialize as JSON.
    """
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


# --------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """What a call sends: a key per row and one batch entry per distinct key."""

    row_keys: list[str | None]
    """Row position → request key (None for skipped rows)."""
    lines: dict[str, bytes] | MediaLines | ColumnLines
    """Request key → its ``{"custom_id": …, "params": …}`` entry of a batch body, first-seen order.
    With images or PDFs, a :class:`MediaLines` that builds an entry only when it is read; rendered
    in bulk, a :class:`~batchkit.core.bulk.ColumnLines` holding them in one buffer."""
    skipped: dict[int, str]

    def body(self, key: str) -> bytes:
        """The canonical params JSON of one request."""
        return line_body(self.lines[key])

    def line_sizes(self) -> Iterator[int]:
        """Bytes of each request's batch entry, in key order, without building media entries."""
        lines = self.lines
        if isinstance(lines, MediaLines):
            return map(lines.size, lines)
        if isinstance(lines, ColumnLines):
            return lines.sizes()
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
    if isinstance(lines, (MediaLines, ColumnLines)):
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
    if rendered.columns is not None:  # rendered in bulk: serialized and keyed in bulk, the same bytes
        keyed, column_lines = plan_columns(
            rendered.columns, template.prefix, template.suffix, template.key_prefix, template.key_suffix
        )
        return Plan(keyed, column_lines, dict(rendered.skipped))
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
        raise InvalidOptionError(f"chunk_size must be at least 1, not {max_requests}", option="chunk_size")
    if max_requests > MAX_BATCH_REQUESTS:
        raise InvalidOptionError(
            f"chunk_size {max_requests:,} is over the API's {MAX_BATCH_REQUESTS:,} requests per batch",
            option="chunk_size",
        )
    if isinstance(lines, MediaLines):
        return _chunk_sized(lines, max_requests, max_bytes)
    if isinstance(lines, ColumnLines) and lines.intact:
        return [Chunk(keys, body) for keys, body in chunk_lines(lines, max_requests, max_bytes)]
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
