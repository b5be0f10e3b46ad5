"""Content keys: the identity of a request, of a call, and the key lists the store keeps. Pure.

The **request key** is a content hash of a request's canonical params JSON (sorted keys): the
same params give the same key in any process, on any day. It is the batch ``custom_id`` (32 hex
digits, well inside the API's 64 characters of ``[A-Za-z0-9_-]``), it deduplicates identical
rows, and it is how the job store knows a request is already paid for. The hot path
(:func:`batchkit.core.plan.plan_requests`) hashes a row's body in pieces with the same digest as
:func:`request_key`; :func:`params_key` is the key of one request's params as a dict.

The key leaves out what cannot change an answer: **cache breakpoints and their TTL**. A request
carrying ``cache_control`` markers is keyed by its params without them (:func:`unmarked_params`:
markers dropped, batchkit's own layout undone — the marked lead block merged back into the row's
text, a marked lone system block back to a string), so the same question asked with
``cache=False``, ``cache_ttl="5m"`` or ``"1h"`` is one key and is paid once. The store's
migration 4 moved the keys of stores written before this (:mod:`batchkit.stores.schema`).

A request with images or PDFs is keyed with each file's bytes standing in by their digest
(``blake2b:…``), so the same photo under two names is one request and a changed file a new one.

A call's *fingerprint* is the hash of its kind, its output and its rows' request keys — what a
re-run looks its job up by. A job's row keys are kept as one blob (:func:`encode_keys`),
newline-separated, an empty line for a row with no request.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from . import _json

__all__ = ["decode_keys", "encode_keys", "fingerprint", "params_key", "present_keys", "request_key", "unmarked_params"]


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


def present_keys(blob: bytes) -> list[str]:
    """The keys of an :func:`encode_keys` blob but the empty ones (skipped rows), in order: what
    :func:`decode_keys` gives without its Nones, with no Python step per key."""
    return list(filter(None, blob.decode().split("\n")))


def fingerprint(kind: str, output: str, row_keys: Sequence[str | None]) -> str:
    """The identity of a call: the same rows rendering the same requests, for the same output."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{kind}\x00{output}\x00{len(row_keys)}\x00".encode())
    h.update(encode_keys(row_keys))
    return base64.b32encode(h.digest()).decode().lower()


def request_key(body: bytes | memoryview) -> str:
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
