"""JSON for the simulator: msgspec, used directly (the simulator imports nothing from the rest of
batchkit, so that ``spawn`` children start without the client side).

``encode`` is compact JSON in insertion order, byte-for-byte what the simulator has always
produced (token estimates and prompt hashes depend on it), except that floats with a positive
exponent are written ``1e20`` rather than ``1e+20`` (the client side writes them the same way).
It also encodes subclasses of ``str``, ``int``, ``float``, ``dict``, ``list`` and ``tuple`` as
their base type, as the simulator always has: a custom responder may return them.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["DECODE_ERRORS", "MAX_JSON_DEPTH", "decode", "encode", "encoder", "too_deep"]

MAX_JSON_DEPTH = 128
"""Arrays and objects may nest this deep in a request body; deeper is a 400. Real requests
nest a dozen levels at most (a JSON schema of nested models); the bound keeps every later
step — decoding, validation, answering — far from Python's recursion limit."""

DECODE_ERRORS = (msgspec.DecodeError, ValueError)
"""What decoding bad input raises (invalid UTF-8 surfaces as ``UnicodeDecodeError``)."""


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
encode = encoder.encode
"""Any value → compact JSON bytes, keys in insertion order."""

decode = msgspec.json.Decoder().decode
"""JSON bytes → Python values (raises one of :data:`DECODE_ERRORS`)."""


_ALL_BUT_STRUCTURE = bytes(range(256)).translate(None, b'{}[]"')
_ESCAPED_QUOTE_OR_BACKSLASH = re.compile(rb'\\["\\]')
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")


def too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON in ``data`` nests arrays and objects more than ``limit`` deep.

    Without recursion, in passes that run at C speed (about 5 ms per MB when a body has more
    brackets than ``limit``; a few µs for a typical message). Everything but brackets and
    quotes is deleted — after escaped quotes and backslashes, which delimit nothing — and a
    body with at most ``limit`` brackets is settled. Otherwise the strings are cut out (the
    brackets they hold are text) and each ``replace("[]", "")`` removes the innermost level.
    Input that is not well-formed is left for the decoder to refuse.

    >>> too_deep(b'["[[[[", [[1]]]', limit=3), too_deep(b"[[[[1]]]]", limit=3)
    (False, True)
    """
    structure = data.translate(None, _ALL_BUT_STRUCTURE)
    if structure.count(b"[") + structure.count(b"{") <= limit:
        return False
    if b'\\"' in data:  # some quote is escaped (or follows an escaped backslash): tell which
        structure = _ESCAPED_QUOTE_OR_BACKSLASH.sub(b"", data).translate(None, _ALL_BUT_STRUCTURE)
    # Two adjacent quotes go together (an empty string, or the end of one and the start of the
    # next): dropping them keeps every bracket on its side of every string, and leaves few strings.
    brackets = _STRING.sub(b"", structure.replace(b'""', b"")).translate(_SQUARE)
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if not inner or len(inner) == len(brackets):  # done, or not well-formed
            return False
        brackets = inner
    return True
