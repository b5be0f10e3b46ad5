"""Images and PDF documents in requests: validation like the API, token counts, and answers.

Validation (each failure is the request's ``invalid_request_error``, its message shaped like
the API's): the ``source`` (``base64``, ``url`` or ``file``), the media type (``image/jpeg``,
``image/png``, ``image/gif``, ``image/webp``; ``application/pdf`` for documents), that the data
is base64 and that its bytes are of the type declared, at most 5 MB of base64 per image,
8000 px a side (2000 when a request holds more than 20 images), 100 images per request, and
PDFs of at most 100 pages.

Tokens (the API's documented rules): an image costs ``ceil(w × h / 750)`` after a long edge
over 1568 px is scaled down to 1568; a PDF page costs an image of the page (its ``/MediaBox``
in points, Letter if none, scaled the same way) plus ``tok()`` of the page's text. A URL
source counts as a 1000×1000 image (its bytes are not fetched).

Answers (deterministic, from the content, so a test can check each row against its own file):
an image's dominant colour that is not its background (pixels named by the nearest of a few
colours; the background is the colour most of the border shares; needs Pillow, else the answer
falls back to the usual hash), a PDF's text: its ``name: value``
lines fill the fields of the same name in a JSON schema.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import struct
import zlib
from collections import Counter
from typing import Any

__all__ = ["MediaCheck", "check_media_block", "colour_of", "media_answer", "pdf_text"]

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_B64 = 5 * 1024 * 1024
MAX_SIDE = 8000
MAX_SIDE_MANY = 2000
MANY = 20
MAX_IMAGES = 100
MAX_PAGES = 100
SCALE_EDGE = 1568

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "orange": (250, 140, 20),
    "purple": (140, 50, 170),
    "black": (15, 15, 15),
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
}
"""The colours an image's answer is named by (each pixel by the nearest; see :func:`colour_of`)."""


class MediaCheck:
    """What the blocks of one request hold so far (for the per-request limits)."""

    def __init__(self) -> None:
        self.images = 0
        self.largest_side = 0
        self.pages = 0


def image_tokens(width: int, height: int) -> int:
    long_edge = max(width, height)
    if long_edge > SCALE_EDGE:
        scale = SCALE_EDGE / long_edge
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return math.ceil(width * height / 750)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return None


def _dimensions(data: bytes, media_type: str) -> tuple[int, int] | None:
    try:
        if media_type == "image/png":
            return struct.unpack(">II", data[16:24])
        if media_type == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if media_type == "image/webp":
            kind = data[12:16]
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if kind == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                i += 1 if marker == 0xFF else 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    except struct.error:
        return None
    return None


_COUNT_RE = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", re.S)
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_MEDIABOX_RE = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")
_STREAM_RE = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\nendstream", re.S)
_TEXT_RE = re.compile(rb"\(((?:\\.|[^\\)])*)\)\s*'?(Tj|')|\[((?:\\.|[^\]])*)\]\s*TJ")
_STRING_RE = re.compile(rb"\(((?:\\.|[^\\)])*)\)")


def _pdf_pages(data: bytes) -> int:
    """The page tree's ``/Count``, else the ``/Type /Page`` objects — in the file, then in its
    Flate-compressed object streams (where PDF 1.5+ writers put them); at least 1."""
    for text in (data, None):
        if text is None:
            inflated = []
            for head, body in _STREAM_RE.findall(data):
                if b"/ObjStm" in head and b"/FlateDecode" in head:
                    try:
                        inflated.append(zlib.decompress(body))
                    except zlib.error:
                        continue
            text = b"\n".join(inflated)
        counts = [int(a or b) for a, b in _COUNT_RE.findall(text)]
        if counts:
            return max(counts)
        pages = len(_PAGE_RE.findall(text))
        if pages:
            return pages
    return 1


def _unescape(raw: bytes) -> str:
    out = re.sub(
        rb"\\([nrtbf()\\])",
        lambda m: {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(m.group(1), m.group(1)),
        raw,
    )
    return out.decode("latin-1")


def pdf_text(data: bytes) -> list[str]:
    """The text of each content stream of a PDF (one per page for simple PDFs), its shown strings
    one per line. Flate-compressed streams are inflated; other filters are left out."""
    pages = []
    for head, body in _STREAM_RE.findall(data):
        if b"/FlateDecode" in head:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                continue
        elif b"/Filter" in head:
            continue
        lines = []
        for m in _TEXT_RE.finditer(body):
            if m.group(1) is not None:
                lines.append(_unescape(m.group(1)))
            else:
                lines.append("".join(_unescape(s) for s in _STRING_RE.findall(m.group(3))))
        if lines:
            pages.append("\n".join(lines))
    return pages


def _page_tokens(data: bytes) -> int:
    found = _MEDIABOX_RE.search(data)
    w, h = (612.0, 792.0)
    if found:
        x0, y0, x1, y1 = (float(v) for v in found.groups())
        w, h = abs(x1 - x0) or w, abs(y1 - y0) or h
    long_edge = max(w, h)
    return image_tokens(max(1, round(w * SCALE_EDGE / long_edge)), max(1, round(h * SCALE_EDGE / long_edge)))


def check_media_block(block: dict, where: str, seen: MediaCheck, bad: Any) -> int:
    """Validate one ``image`` or ``document`` block like the API; return its input tokens.

    ``bad(message)`` makes the API error to raise.
    """
    btype = block["type"]
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad(f"{where}.{btype}.source: Field required")
    stype = source.get("type")
    if stype == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise bad(f"{where}.{btype}.source.url.url: Input should be a valid URL")
        if btype == "image":
            seen.images += 1
        return image_tokens(1000, 1000) if btype == "image" else _page_tokens(b"")
    if stype == "file" or (btype == "document" and stype in ("text", "content")):
        return 0  # a Files API id or a plain-text document: not simulated in detail
    if stype != "base64":
        raise bad(
            f"{where}.{btype}.source: Input tag {stype!r} found using 'type' does not match any of "
            "the expected tags: 'base64', 'url', 'file'" + (", 'text', 'content'" if btype == "document" else "")
        )
    media_type = source.get("media_type")
    raw = _base64_data(source, btype, media_type, where, bad)
    if btype == "document":
        return _pdf_block_tokens(raw, where, seen, bad)
    return _image_block_tokens(raw, media_type, where, seen, bad)


def _base64_data(source: dict, btype: str, media_type: Any, where: str, bad: Any) -> bytes:
    """A base64 source's bytes, once its media type, presence, size and encoding are checked."""
    data = source.get("data")
    kinds = IMAGE_TYPES if btype == "image" else ("application/pdf",)
    if media_type not in kinds:
        listed = ", ".join(f"'{k}'" for k in kinds)
        raise bad(f"{where}.{btype}.source.base64.media_type: Input should be {listed}")
    if not isinstance(data, str) or not data:
        raise bad(f"{where}.{btype}.source.base64.data: Field required")
    if btype == "image" and len(data) > MAX_IMAGE_B64:
        raise bad(
            f"{where}.{btype}.source.base64: image exceeds 5 MB maximum: {len(data)} bytes > {MAX_IMAGE_B64} bytes"
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad(
            f"{where}.{btype}.source.base64.data: The {'image' if btype == 'image' else 'PDF'} data is not valid base64"
        ) from None


def _pdf_block_tokens(raw: bytes, where: str, seen: MediaCheck, bad: Any) -> int:
    """A base64 PDF's tokens (each page as an image of it, plus its text), counting its pages."""
    if _sniff(raw) != "application/pdf":
        raise bad(f"{where}.document.source.base64.data: The PDF specified was not valid.")
    pages = _pdf_pages(raw)
    seen.pages += pages
    if seen.pages > MAX_PAGES:
        raise bad(f"A maximum of {MAX_PAGES} PDF pages may be provided.")
    text = "\n".join(pdf_text(raw))
    return pages * _page_tokens(raw) + ((len(text.encode()) + 3) >> 2)


def _image_block_tokens(raw: bytes, media_type: Any, where: str, seen: MediaCheck, bad: Any) -> int:
    """A base64 image's tokens, once its type matches and its size is allowed; counts it."""
    actual = _sniff(raw)
    if actual != media_type:
        raise bad(
            f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}"
            if actual in IMAGE_TYPES
            else f"{where}.image.source.base64.data: Could not process image"
        )
    dims = _dimensions(raw, str(media_type))
    if dims is None:
        raise bad(f"{where}.image.source.base64.data: Could not process image")
    w, h = dims
    if max(w, h) > MAX_SIDE:
        raise bad(
            f"{where}.image.source.base64.data: At least one of the image dimensions exceed max "
            f"allowed size: {MAX_SIDE} pixels"
        )
    seen.images += 1
    seen.largest_side = max(seen.largest_side, w, h)
    return image_tokens(w, h)


def check_request(seen: MediaCheck, bad: Any) -> None:
    """The per-request limits, once every block is checked."""
    if seen.images > MAX_IMAGES:
        raise bad(f"messages: Too many images in the request: {seen.images} > {MAX_IMAGES}")
    if seen.images > MANY and seen.largest_side > MAX_SIDE_MANY:
        raise bad(
            "messages: At least one of the image dimensions exceed max allowed size for many-image "
            f"requests: {MAX_SIDE_MANY} pixels"
        )


# --------------------------------------------------------------------------- answers


def colour_of(data: bytes) -> str | None:
    """The image's dominant colour that is not its background; None without Pillow or if undecodable.

    Each pixel of a 32×32 thumbnail is named by the nearest of :data:`COLOURS`. The background
    is the name most of the border's pixels share (when most do); the answer is the commonest
    other name, if it covers at least :data:`MIN_SUBJECT` of the picture — a red circle on white
    is red — else the background's (a plain picture is its own colour).
    """
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at a fraction of the size
            small = image.convert("RGB").resize((_THUMB, _THUMB))
    except Exception:  # any decoding failure: no colour, the hash answers
        return None
    raw = small.tobytes()
    names = [_nearest(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    border = [
        names[y * _THUMB + x]
        for y in range(_THUMB)
        for x in range(_THUMB)
        if x in (0, _THUMB - 1) or y in (0, _THUMB - 1)
    ]
    background, on_border = Counter(border).most_common(1)[0]
    counts = Counter(names)
    if on_border * 2 > len(border):
        del counts[background]
        if not counts or counts.most_common(1)[0][1] < MIN_SUBJECT * len(names):
            return background
    return counts.most_common(1)[0][0]


_THUMB = 32
MIN_SUBJECT = 0.02
"""The least share of the picture a colour other than the background must cover to be its answer
(less is taken for edges and noise)."""


def _nearest(pixel: bytes) -> str:
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], pixel, strict=True)))


def _media_blocks(params: dict) -> list[dict]:
    for message in reversed(params.get("messages") or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if type(content) is str:
                return []
            return [b for b in content if isinstance(b, dict) and b.get("type") in ("image", "document")]
    return []


def _facts(blocks: list[dict]) -> tuple[list[str], list[str]]:
    """(colours of the images, texts of the PDFs) that can be read from base64 sources."""
    colours: list[str] = []
    texts: list[str] = []
    for block in blocks:
        source = block.get("source") or {}
        if source.get("type") != "base64":
            continue
        raw = base64.b64decode(source.get("data") or "")
        if block["type"] == "image":
            colour = colour_of(raw)
            if colour is not None:
                colours.append(colour)
        else:
            texts.append("\n".join(pdf_text(raw)))
    return colours, texts


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            found.setdefault(re.sub(r"[\s_-]+", "_", name.strip().lower()), value.strip())
    return found


def _coerce(value: str, schema: dict) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if schema.get("anyOf"):
        kinds = [o.get("type") for o in schema["anyOf"] if isinstance(o, dict) and o.get("type") != "null"]
        kind = kinds[0] if kinds else kind
    try:
        if kind == "integer":
            return int(value.replace(",", ""))
        if kind == "number":
            return float(value.replace(",", "").lstrip("$€£"))
        if kind == "boolean":
            return value.lower() in ("yes", "true", "1")
    except ValueError:
        return None
    if kind in (None, "string"):
        return value
    return None


def _pick(labels: list[Any], colours: list[str]) -> Any:
    for colour in colours:
        for label in labels:
            if isinstance(label, str) and (colour in label.lower() or label.lower() in colour):
                return label
    return None


def media_answer(params: dict, mode: str, default: Any) -> Any:
    """The answer to a request holding images or PDFs, from their content; ``default()`` gives
    the usual answer that the content's facts then override. None when there is no media."""
    blocks = _media_blocks(params)
    if not blocks:
        return None
    colours, texts = _facts(blocks)
    if not colours and not texts:
        return None
    if mode == "text":
        parts = []
        if colours:
            parts.append(
                "The image is mostly " + ", then ".join(colours) + "."
                if len(colours) > 1
                else f"The image is mostly {colours[0]}."
            )
        for text in texts:
            parts.append(" ".join(text.split())[:300])
        return " ".join(parts)
    answer = default()
    if mode != "json" or not isinstance(answer, dict):
        return answer
    schema = params["output_config"]["format"]["schema"]
    fields = _fields("\n".join(texts))
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        items = sub.get("items")
        labels = sub.get("enum") or (items.get("enum") if isinstance(items, dict) else None)
        if labels and colours:
            picked = _pick(list(labels), colours)
            if picked is not None:
                answer[name] = [picked] if sub.get("type") == "array" else picked
            continue
        key = re.sub(r"[\s_-]+", "_", name.lower())
        if key in fields:
            value = _coerce(fields[key], sub)
            if value is not None:
                answer[name] = value
    return answer
