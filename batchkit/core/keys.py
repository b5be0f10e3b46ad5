"""Content keys: the identity of a request, of a call, and the key lists the store keeps. Pure.

A request's key is the hash of its params (:func:`batchkit.core.requests.params_key`); a call's
*fingerprint* is the hash of its kind, its output and its rows' request keys — what a re-run looks
its job up by. A job's row keys are kept as one blob (:func:`encode_keys`), newline-separated,
an empty line for a row with no request.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

__all__ = ["decode_keys", "encode_keys", "fingerprint"]


def encode_keys(keys: Sequence[str | None]) -> bytes:
    """Row keys as one blob: newline-separated, empty for a row with no request."""
    try:  # the common case, no skipped row: one join, no pass looking for None first
        return "\n".join(keys).encode()  # type: ignore[arg-type]
    except TypeError:
        return "\n".join([k or "" for k in keys]).encode()


def decode_keys(blob: bytes, n: int | None = None) -> list[str | None]:
    """The inverse of :func:`encode_keys`; ``n`` disambiguates a blob of one empty key."""
    if not blob:
        return [None] * (n or 0)
    return [k or None for k in blob.decode().split("\n")]


def fingerprint(kind: str, output: str, row_keys: Sequence[str | None]) -> str:
    """The identity of a call: the same rows rendering the same requests, for the same output."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{kind}\x00{output}\x00{len(row_keys)}\x00".encode())
    h.update(encode_keys(row_keys))
    return base64.b32encode(h.digest()).decode().lower()
