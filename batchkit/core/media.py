"""Images and PDFs in columns: read a cell, sniff its type, check the API's limits, count tokens.

Pure: no network, no store. A cell of a media column may be

* a local path (``str`` or :class:`pathlib.Path`) of a regular file — read once up to the
  API's limit for its type to key it (see "Reading files" below);
* an ``http(s)://`` URL — sent as a ``url`` source (the API fetches it; nothing is read here);
* raw ``bytes`` (``bytearray``, ``memoryview``);
* a Pillow image (Pillow is imported only if such a cell is met) — encoded as PNG.

The media type comes from the bytes (their magic numbers), never from a file name. Each
cell becomes a :class:`MediaRef`: the content digest (which keys the request, so the same photo
under two names is one request and a changed file is sent again), the size, and what the
header says (pixel dimensions, PDF pages) — enough to check limits and estimate tokens without
holding the bytes. The base64 block is built only when a batch body is written
(:meth:`MediaRef.block_json`).

Reading files. Only regular files are read: a path naming a directory, a FIFO, a socket or a
device (``/dev/zero`` would hash forever, a FIFO block forever) is refused, as is a path with a
NUL byte, and a file over the API's limit for its type is refused by its size before it is
read (and no more than the limit is ever read, should it grow). The file is not held in memory:
its request body is built when the batch is written, from the file read again — and those bytes
must hash to the digest the request was keyed by (:class:`Changed` otherwise), so a file
rewritten after it was keyed never has another content's answer stored under its key.

Limits (``shared/reference/anthropic-api.md`` §16; the API documents them, they may change):
media types ``image/jpeg``, ``image/png``, ``image/gif``, ``image/webp`` and
``application/pdf``; at most 8000×8000 px per image (2000×2000 when a request holds more than
20 images); 100 images per request; 5 MB of base64 per image; PDFs of at most 100 pages and 32 MB.

Token rules (the API's documented ones): an image whose long edge is over 1568 px is first
scaled down to it, then costs ``ceil(width × height / 750)`` tokens; a PDF page costs an image
of the page (its size in points, scaled the same way) plus its text (not read offline: the
page image dominates, ~1,500–3,000 tokens a page).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pdfgen import LETTER
from .pdfgen import text_pdf as text_pdf  # re-export: batchkit.media.text_pdf, batchkit.text_pdf

__all__ = [
    "IMAGE_MAX_BYTES",
    "IMAGE_MAX_FILE_BYTES",
    "IMAGE_MAX_SIDE",
    "IMAGE_MAX_SIDE_MANY",
    "IMAGE_MEDIA_TYPES",
    "MANY_IMAGES",
    "MAX_IMAGES_PER_REQUEST",
    "PDF_MAX_BYTES",
    "PDF_MAX_PAGES",
    "Changed",
    "MediaRef",
    "Refused",
    "Skip",
    "block_tokens",
    "image_dimensions",
    "image_tokens",
    "pdf_pages",
    "pdf_tokens",
    "read_cell",
    "sniff",
    "text_pdf",
]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
"""The image types the API accepts."""
PDF_MEDIA_TYPE = "application/pdf"
IMAGE_MAX_SIDE = 8000
"""Largest width or height of an image, in pixels."""
IMAGE_MAX_SIDE_MANY = 2000
"""Largest width or height when a request holds more than :data:`MANY_IMAGES` images."""
MANY_IMAGES = 20
MAX_IMAGES_PER_REQUEST = 100
"""Images per request (200k-context models; others take more)."""
IMAGE_MAX_BYTES = 5 * 1024 * 1024
"""Largest image the API takes: 5 MB of base64 (a file of about 3.9 MB)."""
PDF_MAX_BYTES = 32_000_000
"""Largest PDF (a standard request's 32 MB)."""
PDF_MAX_PAGES = 100
"""Pages per request (200k-context models)."""
SCALE_EDGE = 1568
"""Images with a longer edge are scaled down to it before they are counted."""
PIXELS_PER_TOKEN = 750
_LETTER = LETTER  # points: the page size assumed when a PDF does not say

IMAGE_MAX_FILE_BYTES = IMAGE_MAX_BYTES // 4 * 3
"""Largest image file whose base64 fits :data:`IMAGE_MAX_BYTES` (3,932,160 bytes)."""

_HEAD = 1 << 16  # bytes read to sniff a file and find its dimensions


class Skip(Exception):
    """A cell that cannot be sent: its row is skipped with this reason."""


class Refused(Exception):
    """A cell the API would refuse (type or limit), or that names no file batchkit reads (a
    directory, FIFO, socket or device): the call stops before sending, naming the row.

    Attributes:
        fix: what to do about it, when it is not to convert or resize the file.
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class Changed(Exception):
    """A file that no longer holds the bytes its request was keyed by (rewritten, grown, removed
    or replaced after it was read): its body is not built, so no answer to other bytes is ever
    stored under its key."""


_NOT_A_FILE_FIX = (
    "Point the cell at an image or PDF file, or give the bytes themselves (batchkit reads "
    "regular files only, never a device, FIFO, socket or folder)"
)


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file announce, or None if none the API accepts.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n...."), sniff(b"%PDF-1.7"), sniff(b"hello")
    ('image/png', 'application/pdf', None)
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.lstrip(b"\r\n\t \x00")[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return PDF_MEDIA_TYPE
    return None


def describe(head: bytes) -> str:
    """A name for an unsupported file's format, for error messages."""
    for magic, name in (
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"BM", "BMP"),
        (b"\x00\x00\x01\x00", "ICO"),
        (b"PK\x03\x04", "ZIP/Office"),
        (b"\x1f\x8b", "gzip"),
    ):
        if head.startswith(magic):
            return name
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    return "unrecognised"


def image_dimensions(head: bytes, media_type: str) -> tuple[int, int] | None:
    """(width, height) from an image's header bytes, without decoding it; None if not found.

    JPEG dimensions sit in the frame header, after any metadata: pass enough bytes (a file's
    first 64 KiB almost always do).
    """
    try:
        if media_type == "image/png":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if media_type == "image/gif":
            w, h = struct.unpack("<HH", head[6:10])
            return int(w), int(h)
        if media_type == "image/webp":
            chunk = head[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return int(w & 0x3FFF), int(h & 0x3FFF)
            if chunk == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
            return None
        if media_type == "image/jpeg":
            i = 2
            while i + 9 < len(head):
                if head[i] != 0xFF:
                    i += 1
                    continue
                marker = head[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                    i += 1 if marker == 0xFF else 2
                    continue
                length = struct.unpack(">H", head[i + 2 : i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", head[i + 5 : i + 9])
                    return int(w), int(h)
                i += 2 + length
            return None
    except struct.error:
        return None
    return None


_COUNT_RE = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", re.S)
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_MEDIABOX_RE = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")


_STREAM_RE = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\nendstream", re.S)


def pdf_pages(data: bytes) -> int:
    """The page count of a PDF: the page tree's ``/Count`` (the largest, the root's), else its
    ``/Type /Page`` objects — looked for in the file, then inside its compressed object streams
    (PDF 1.5+ writers put the page tree there); at least 1.

    >>> pdf_pages(text_pdf(["one", "two", "three"]))
    3
    """
    for text in _pdf_texts(data):
        counts = [int(a or b) for a, b in _COUNT_RE.findall(text)]
        if counts:
            return max(counts)
        pages = len(_PAGE_RE.findall(text))
        if pages:
            return pages
    return 1


def _pdf_texts(data: bytes) -> Any:
    """The file, then its Flate-compressed object streams inflated (lazily: most PDFs stop at the first)."""
    yield data
    import zlib

    objects = [body for head, body in _STREAM_RE.findall(data) if b"/ObjStm" in head and b"/FlateDecode" in head]
    inflated = []
    for body in objects:
        try:
            inflated.append(zlib.decompress(body))
        except zlib.error:
            continue
    yield b"\n".join(inflated)


def pdf_page_size(data: bytes) -> tuple[float, float]:
    """The first ``/MediaBox`` of a PDF, in points (US Letter when there is none)."""
    found = _MEDIABOX_RE.search(data)
    if not found:
        return _LETTER
    x0, y0, x1, y1 = (float(v) for v in found.groups())
    return abs(x1 - x0) or _LETTER[0], abs(y1 - y0) or _LETTER[1]


def image_tokens(width: int, height: int) -> int:
    """Tokens of one image by the API's documented rule: scale a long edge over 1568 px down
    to 1568 (keeping the aspect ratio), then ``ceil(width × height / 750)``.

    >>> image_tokens(1000, 1000), image_tokens(3136, 1568)
    (1334, 1640)
    """
    long_edge = max(width, height)
    if long_edge > SCALE_EDGE:
        scale = SCALE_EDGE / long_edge
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return math.ceil(width * height / PIXELS_PER_TOKEN)


def pdf_tokens(pages: int, page_size: tuple[float, float] = _LETTER) -> int:
    """Tokens of a PDF offline: each page as an image of its size in points (a Letter page is
    2,533), scaled like any image. The pages' text comes on top and is not read offline."""
    w, h = page_size
    return pages * image_tokens(max(1, round(w * SCALE_EDGE / max(w, h))), max(1, round(h * SCALE_EDGE / max(w, h))))


def b64_len(size: int) -> int:
    """Length of the base64 text of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One image or PDF of one row, read just enough to key, check and price it."""

    kind: str
    """``"image"`` or ``"document"`` (the content block type)."""
    media_type: str | None
    """The sniffed type; None for a URL (the API reads it)."""
    digest: str
    """BLAKE2b of the bytes (of the URL for a URL source): what keys the request."""
    size: int
    """Bytes of the file (0 for a URL)."""
    source: Any
    """Where the bytes are: a path (str), the bytes themselves, or a URL (str)."""
    is_url: bool = False
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    page_size: tuple[float, float] | None = None
    row: int = field(default=-1, compare=False)
    """The position of the first row it was read for, to name it in errors (-1: not known)."""
    column: str = field(default="", compare=False)
    """The column it was read from, likewise."""

    def read(self) -> bytes:
        """The bytes: read again from the file for a path, and checked to be the ones keyed.

        Raises:
            Changed: the file no longer holds the bytes its digest was made of (or is gone).
        """
        if isinstance(self.source, (bytes, bytearray, memoryview)):
            return bytes(self.source)
        try:
            data = _read_regular(self.source, self.size)
        except (OSError, Refused) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise Changed(
                f"the file {self.source} can no longer be read as it was when batchkit keyed its request ({why})"
            ) from None
        if len(data) != self.size or hashlib.blake2b(data, digest_size=16).hexdigest() != self.digest:
            raise Changed(
                f"the file {self.source} changed after batchkit read it and keyed its request "
                f"({self.size:,} bytes then, {len(data):,}{'+' if len(data) > self.size else ''} "
                "now, other content)"
            )
        return data

    def key_json(self) -> bytes:
        """The block as it is keyed: the data stands in by its digest."""
        return self._json(b'"blake2b:' + self.digest.encode() + b'"')

    def block_json(self) -> bytes:
        """The content block as sent (the base64 data encoded now)."""
        if self.is_url:
            return self.key_json()
        return self._json(b'"' + base64.b64encode(self.read()) + b'"')

    def block_size(self) -> int:
        """Length of :meth:`block_json` without building it."""
        if self.is_url:
            return len(self.key_json())
        return len(self.key_json()) - len(self.digest) - 8 + b64_len(self.size)

    def _json(self, data: bytes) -> bytes:
        if self.is_url:
            return b'{"source":{"type":"url","url":%s},"type":"%s"}' % (_jstr(self.source), self.kind.encode())
        return b'{"source":{"data":%s,"media_type":"%s","type":"base64"},"type":"%s"}' % (
            data,
            str(self.media_type).encode(),
            self.kind.encode(),
        )

    def tokens(self) -> int:
        """Input tokens by the documented rules (0 when the header gave no size: a URL)."""
        if self.kind == "image":
            return image_tokens(self.width, self.height) if self.width and self.height else 0
        return pdf_tokens(self.pages or 0, self.page_size or _LETTER)

    def block(self) -> dict[str, Any]:
        """The content block as a dict (for display and tests; builds the base64)."""
        import json

        return dict(json.loads(self.block_json()))


def _jstr(text: str) -> bytes:
    import json

    return json.dumps(text, ensure_ascii=False).encode()


def block_tokens(block: Any) -> int:
    """Input tokens of an ``image`` or ``document`` content block with a base64 source, by the
    documented rules (only an image's header is decoded); 0 for other sources (URL, file id)."""
    source = block.get("source") if isinstance(block, dict) else None
    if not isinstance(source, dict) or source.get("type") != "base64" or not isinstance(source.get("data"), str):
        return 0
    data: str = source["data"]
    try:
        if block.get("type") == "image":
            head = base64.b64decode(data[: 4 * (_HEAD // 3)])
            kind = sniff(head)
            dims = image_dimensions(head, kind) if kind else None
            if dims is None and kind == "image/jpeg":
                dims = image_dimensions(base64.b64decode(data), kind)
            return image_tokens(*dims) if dims else 0
        raw = base64.b64decode(data)
    except ValueError:  # not base64: the API refuses it; nothing to count
        return 0
    return pdf_tokens(pdf_pages(raw), pdf_page_size(raw))


# --------------------------------------------------------------------------- reading cells


def is_media_cell(cell: Any) -> bool:
    """Whether a value can be a media cell without being text (bytes, a path, a Pillow image)."""
    return isinstance(cell, (bytes, bytearray, memoryview, Path)) or _is_pil(cell)


def _is_pil(cell: Any) -> bool:
    return type(cell).__module__.startswith("PIL.") and hasattr(cell, "save") and hasattr(cell, "size")


def read_cell(cell: Any, want: str) -> MediaRef:
    """Read one cell of a media column as a :class:`MediaRef`.

    ``want`` is ``"image"``, ``"pdf"`` or ``"media"`` (either, by what the bytes are).

    Raises:
        Skip: the file is missing or unreadable, or an image's header is damaged (the row is
            skipped with this reason).
        Refused: the value is of no media type the API accepts, or breaks a per-item limit
            (the caller names the row and column).
        TypeError: the cell is of a type that cannot hold media.
    """
    if isinstance(cell, str) and cell.startswith(("http://", "https://")):
        pdf = want == "pdf" or (want == "media" and _url_path(cell).lower().endswith(".pdf"))
        kind = "document" if pdf else "image"
        return MediaRef(kind, None, hashlib.blake2b(cell.encode(), digest_size=16).hexdigest(), 0, cell, is_url=True)
    if isinstance(cell, (str, os.PathLike)):
        return _read_path(os.fspath(cell), want)
    if isinstance(cell, (bytes, bytearray, memoryview)):
        data = bytes(cell)
        return _ref(data[:_HEAD], data, len(data), hashlib.blake2b(data, digest_size=16).hexdigest(), want, None)
    if _is_pil(cell):
        buf = io.BytesIO()
        image = cell if cell.mode in ("RGB", "RGBA", "L", "LA", "P") else cell.convert("RGB")
        image.save(buf, format="PNG")
        data = buf.getvalue()
        return _ref(data[:_HEAD], data, len(data), hashlib.blake2b(data, digest_size=16).hexdigest(), want, None)
    raise TypeError(type(cell).__name__)


def _url_path(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def _max_file_bytes(media_type: str | None) -> int:
    """The largest file of ``media_type`` the API takes (0 for a type it does not take)."""
    if media_type == PDF_MEDIA_TYPE:
        return PDF_MAX_BYTES
    return IMAGE_MAX_FILE_BYTES if media_type is not None else 0


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _check_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise Refused(f"names {path}, which is {kind}, not a regular file", fix=_NOT_A_FILE_FIX)


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """A descriptor open for reading the regular file at ``path``, and its status.

    The path is looked at before it is opened (a FIFO is never opened, so it cannot block; a
    device never read), then opened without blocking and looked at again: it may have been
    replaced in between.

    Raises:
        Refused: a path with a NUL byte, or one that names no regular file.
        OSError: the file is missing or cannot be opened.
    """
    if "\x00" in path:
        raise Refused(
            f"names a path with a NUL byte ({path!r:.80}), which no file can have",
            fix="Fix the path in the cell (a NUL byte often means binary data was read as text)",
        )
    _check_regular(path, os.stat(path).st_mode)
    fd = os.open(
        path,
        os.O_RDONLY
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_NOCTTY", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0),
    )
    try:
        st = os.fstat(fd)
        _check_regular(path, st.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_regular(path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path`` (one more than a caller
    takes shows the file is over it)."""
    fd, _ = _open_regular(path)
    with open(fd, "rb", closefd=True) as f:
        return f.read(limit + 1)


def _read_path(path: str, want: str) -> MediaRef:
    if not path.strip():
        raise Skip("empty file path")
    try:
        fd, st = _open_regular(path)
        with open(fd, "rb", closefd=True) as f:
            head = f.read(_HEAD)
            media_type = sniff(head)
            limit = _max_file_bytes(media_type)
            if media_type is None or st.st_size > limit:  # refused by its type or its size, unread
                return _ref(head, None, max(st.st_size, len(head)), "", want, path)
            data = head + f.read(limit + 1 - len(head))  # never past the limit, should the file grow
    except FileNotFoundError:
        raise Skip(f"file not found: {path}") from None
    except ValueError as exc:  # a path the operating system cannot take (e.g. unencodable)
        raise Refused(f"names a path that cannot be a file name ({exc})", fix="Fix the path in the cell") from None
    except OSError as exc:
        raise Skip(f"cannot read {path}: {exc.strerror or exc}") from None
    return _ref(head, data, len(data), hashlib.blake2b(data, digest_size=16).hexdigest(), want, path)


def _ref(head: bytes, data: bytes | None, size: int, digest: str, want: str, path: str | None) -> MediaRef:
    media_type = sniff(head)
    source: Any = path if path is not None else data
    if media_type is None:
        raise Refused(
            f"is {describe(head)} data, not a type the API accepts ({', '.join(IMAGE_MEDIA_TYPES)} or {PDF_MEDIA_TYPE})"
        )
    if media_type == PDF_MEDIA_TYPE:
        if want == "image":
            raise Refused("is a PDF, in an {…:image} placeholder: use {…:pdf} (or {…:media})")
        if size > PDF_MAX_BYTES:
            raise Refused(f"is a PDF of {size:,} bytes, over the API's {PDF_MAX_BYTES:,}")
        assert data is not None
        pages = pdf_pages(data)
        if pages > PDF_MAX_PAGES:
            raise Refused(f"is a PDF of {pages} pages, over the API's {PDF_MAX_PAGES} per request")
        return MediaRef("document", media_type, digest, size, source, pages=pages, page_size=pdf_page_size(data))
    if want == "pdf":
        raise Refused(f"is an image ({media_type}), in a {{…:pdf}} placeholder: use {{…:image}} (or {{…:media}})")
    if b64_len(size) > IMAGE_MAX_BYTES:
        raise Refused(
            f"is an image of {size:,} bytes ({b64_len(size):,} as base64), over the API's 5 MB "
            f"({IMAGE_MAX_BYTES:,} bytes of base64) per image"
        )
    dims = image_dimensions(head, media_type)
    if dims is None and media_type == "image/jpeg" and data is not None:
        dims = image_dimensions(data, media_type)
    if dims is None or min(dims) < 1:
        where = f" {path}" if path is not None else ""
        raise Skip(f"cannot read the size of the {media_type} image{where} from its header (damaged or truncated?)")
    if max(dims) > IMAGE_MAX_SIDE:
        raise Refused(f"is an image of {dims[0]}×{dims[1]} px, over the API's {IMAGE_MAX_SIDE}×{IMAGE_MAX_SIDE}")
    return MediaRef("image", media_type, digest, size, source, width=dims[0], height=dims[1])
