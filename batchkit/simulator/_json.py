"""JSON for the simulator: msgspec, used directly (the simulator imports nothing from the rest of
batchkit, so that ``spawn`` children start without the client side).

``encode`` is compact JSON in insertion order, byte-for-byte what the simulator has always
produced (token estimates and prompt hashes depend on it), except that floats with a positive
exponent are written ``1e20`` rather than ``1e+20`` (the client side writes them the same way).
It also encodes subclasses of ``str``, ``int``, ``float``, ``dict``, ``list`` and ``tuple`` as
their base type, as the simulator always has: a custom responder may return them.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["DECODE_ERRORS", "decode", "encode", "encoder"]

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
