"""Token counts before anything is sent: a request's input tokens and an answer's output tokens. Pure.

Input tokens are counted offline by the simulator's rule (about 4 UTF-8 bytes a token; images and
PDFs by the API's documented rules), for a whole request and for the shared prefix up to its last
cache breakpoint — what the caching arithmetic in :mod:`batchkit.costs.caching` prices. Output
tokens cannot be counted before the answer exists: they are bounded by ``max_tokens``, by the
output schema when a structured answer has one (:func:`schema_output_tokens`), and otherwise
guessed (:func:`default_typical_output_tokens`) until a sample measures them
(:mod:`batchkit.costs.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from batchkit.core import _json
from batchkit.core.media import block_tokens

__all__ = [
    "SHORTEST_ANSWER_TOKENS",
    "default_typical_output_tokens",
    "estimate_request_tokens",
    "estimate_tokens",
    "schema_output_tokens",
    "shared_prefix_tokens",
]


def estimate_tokens(text: str) -> int:
    """The offline token estimate: ``ceil(UTF-8 bytes / 4)``.

    About 4 UTF-8 bytes per token: English prose ≈ 0.25 token/char, Korean (3 bytes a
    character) ≈ 0.75 token/char. batchkit's simulator counts tokens by the same rule, so
    offline estimates and simulated usage agree; real tokenizers differ by model and language —
    use ``count_tokens`` for exact figures.

    >>> estimate_tokens("hello world"), estimate_tokens("안녕하세요")
    (3, 4)
    """
    return (len(text.encode("utf-8")) + 3) // 4


_REQUEST_OVERHEAD = 3
_MESSAGE_OVERHEAD = 4


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return estimate_tokens(block)
    if isinstance(block, Mapping) and block.get("type") == "text":
        return estimate_tokens(str(block.get("text", "")))
    if isinstance(block, Mapping) and block.get("type") in ("image", "document"):
        return block_tokens(block)  # the API's documented rules, from the image header / PDF pages
    return 0  # tool blocks: not counted offline (see estimate_request_tokens)


def _has_breakpoint(block: Any) -> bool:
    return isinstance(block, Mapping) and bool(block.get("cache_control"))


def _prompt_parts(params: Mapping[str, Any]) -> list[tuple[int, bool]]:
    """(tokens, is_cache_breakpoint) for each part of a prompt, in cache-prefix order."""
    parts = [(estimate_tokens(_json.dumps(tool).decode()), _has_breakpoint(tool)) for tool in params.get("tools") or ()]
    system = params.get("system")
    if isinstance(system, str):
        parts.append((estimate_tokens(system), False))
    elif system:
        parts.extend((_block_tokens(b), _has_breakpoint(b)) for b in system)
    for message in params.get("messages") or ():
        parts.append((_MESSAGE_OVERHEAD, False))
        content = message.get("content", "")
        blocks = [content] if isinstance(content, str) else content or ()
        parts.extend((_block_tokens(b), _has_breakpoint(b)) for b in blocks)
    return parts


def estimate_request_tokens(params: Mapping[str, Any]) -> int:
    """Offline input-token count of one request's params (the simulator's rule).

    ``3 + Σ messages (4 + Σ text blocks or string content) + system text (string or text blocks)
    + each tool definition as JSON + the ``output_config.format`` schema as JSON``, each piece
    by :func:`estimate_tokens`. Base64 images and PDFs count by the API's documented rules
    (:func:`batchkit.core.media.block_tokens`); tool-use/result blocks count 0 offline.

    >>> estimate_request_tokens({"messages": [{"role": "user", "content": "hello world"}]})
    10
    """
    total = _REQUEST_OVERHEAD + sum(tokens for tokens, _ in _prompt_parts(params))
    schema = ((params.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is not None:
        total += estimate_tokens(_json.dumps(schema).decode())
    return total


def shared_prefix_tokens(params: Mapping[str, Any]) -> int:
    """Tokens up to and including the last ``cache_control`` breakpoint (tools → system → messages).

    Counted like :func:`estimate_request_tokens`, including each message's 4-token overhead and
    excluding the 3-token request overhead; 0 when the request has no breakpoint. A top-level
    ``cache_control`` (automatic caching) puts the breakpoint on the last block — then the
    "prefix" is the whole prompt, which is only shared if the rows are identical.

    >>> shared_prefix_tokens({"system": [{"type": "text", "text": "x" * 4000,
    ...     "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": "hi"}]})
    1000
    """
    parts = _prompt_parts(params)
    marks = [i for i, (_, mark) in enumerate(parts) if mark]
    if params.get("cache_control") and parts:
        marks.append(len(parts) - 1)
    return sum(tokens for tokens, _ in parts[: max(marks) + 1]) if marks else 0


def default_typical_output_tokens(max_tokens: int) -> int:
    """The guess used when the caller gives no typical output length: a quarter of
    ``max_tokens`` (rounded up), at most 1,024 — answers rarely run to the cap."""
    return max(1, min(max_tokens, 1024, math.ceil(max_tokens / 4)))


SHORTEST_ANSWER_TOKENS = 1
"""Output tokens of the shortest answer an uncalibrated free-text estimate's ``low`` assumes for
every request: nothing bounds a free answer from below but the answer itself, and an answer is at
least one token. Measured on the simulator over every dataset in ``data/`` (one-sentence
summaries, translations, bare prompts, yes/no questions; haiku and opus), the shortest answers
are 2 tokens (a bare label such as ``negative``) and 3 (``Understood.``), and a job's mean was
2–26 tokens; on the real API a one-word answer (``Yes``, ``Positive``) is one token. So a job
whose every answer is that short pays no less than ``low``, whatever the prompt asks for."""

_STRING_TYPICAL_CHARS = 24
"""A free string field's typical answer: a name or a short phrase, three or four words."""
_ARRAY_TYPICAL_ITEMS = 2
_SCALAR_CHARS = {"integer": (1, 3, 20), "number": (1, 6, 24), "boolean": (4, 4.5, 5), "null": (4, 4, 4)}
_FORMAT_CHARS = {"date": 12, "date-time": 22, "time": 10, "uuid": 38}

Chars = tuple[float, float, float | None]
"""(shortest, typical, longest) bytes of a JSON value; longest None: not bounded by the schema."""


def _json_len(value: Any) -> int:
    return len(_json.dumps(value))


def _schema_chars(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Chars:
    """(shortest, typical, longest) length in bytes of a compact JSON value valid against ``node``;
    longest is None when the schema does not bound it (a free string, an open list)."""
    if not isinstance(node, Mapping) or depth > 16:
        return 2.0, float(_STRING_TYPICAL_CHARS), None
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _schema_chars(defs.get(ref.rsplit("/", 1)[1], {}), defs, depth + 1)
    if "const" in node:
        n = float(_json_len(node["const"]))
        return n, n, n
    if node.get("enum"):
        sizes = [_json_len(v) for v in node["enum"]]
        return float(min(sizes)), sum(sizes) / len(sizes), float(max(sizes))
    for union in ("anyOf", "oneOf"):
        if node.get(union):
            return _union_chars(node[union], defs, depth)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    if kind == "object":
        return _object_chars(node, defs, depth)
    if kind == "array":
        return _array_chars(node, defs, depth)
    if kind == "string":
        return _string_chars(node)
    return _SCALAR_CHARS.get(str(kind), (2.0, float(_STRING_TYPICAL_CHARS), None))


def _union_chars(branches: Any, defs: Mapping[str, Any], depth: int) -> Chars:
    """An ``anyOf``/``oneOf``: as short as its shortest branch, typically its first non-null one."""
    options = [_schema_chars(o, defs, depth + 1) for o in branches]
    real = [
        o
        for o, sub in zip(options, branches, strict=True)
        if not (isinstance(sub, Mapping) and sub.get("type") == "null")
    ] or options
    tops = [o[2] for o in options]
    top = None if None in tops else max(x for x in tops if x is not None)
    return min(o[0] for o in options), real[0][1], top


def _object_chars(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> Chars:
    props = node.get("properties") or {}
    required = set(node.get("required") or props)
    shortest = typical = 1.0 if props else 2.0  # the braces, less the last comma
    longest: float | None = typical
    for name, sub in props.items():
        lo, t, m = _schema_chars(sub, defs, depth + 1)
        key = _json_len(name) + 2  # "name": and a comma after the value
        typical += key + t
        shortest += key + lo if name in required else 0
        longest = None if longest is None or m is None else longest + key + m
    if node.get("additionalProperties") not in (None, False):
        longest = None
    return shortest, typical, longest


def _array_chars(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> Chars:
    lo, t, m = _schema_chars(node.get("items", {}), defs, depth + 1)
    fewest = int(node.get("minItems", 0))
    cap = node.get("maxItems")
    items = node.get("items", {})
    if cap is None and node.get("uniqueItems") and isinstance(items, Mapping) and items.get("enum"):
        cap = len(items["enum"])
    typical_items = max(fewest, min(_ARRAY_TYPICAL_ITEMS, cap if cap is not None else _ARRAY_TYPICAL_ITEMS))
    top = None if cap is None or m is None else 2 + int(cap) * (m + 1)
    return 2 + fewest * (lo + 1), 2 + typical_items * (t + 1), top


def _string_chars(node: Mapping[str, Any]) -> Chars:
    fmt = node.get("format")
    if fmt in _FORMAT_CHARS:
        n = float(_FORMAT_CHARS[fmt])
        return n, n, n
    cap = node.get("maxLength")
    least = 2.0 + int(node.get("minLength", 0))
    if cap is not None:
        return least, min(float(_STRING_TYPICAL_CHARS), 2 + int(cap)), 2.0 + 4 * int(cap)  # ≤ 4 bytes a char
    return least, float(_STRING_TYPICAL_CHARS), None


def schema_output_tokens(schema: Mapping[str, Any]) -> tuple[float, float, int | None]:
    """Output tokens of an answer to a JSON schema: ``(shortest, typical, longest)`` per request.

    The longest valid answer bounds the output whenever the schema bounds every value (labels
    from an enum, numbers, booleans, dates, strings with ``maxLength``, lists with
    ``maxItems`` or unique enum items); it is None when a value is free (a free string, an
    open list), and then ``max_tokens`` is the bound. The typical answer takes every label as
    likely as the others, a free string as a short phrase (about 24 bytes) and a list as two
    items; the shortest, every value as short as the schema allows. Tokens by the offline rule
    (≈4 UTF-8 bytes a token, as the simulator counts them); calibrate on a sample for the real
    tokenizer.

    >>> schema = {"type": "object", "properties": {"label": {"enum": ["negative", "neutral"]}}}
    >>> schema_output_tokens(schema)
    (4.75, 5.0, 5)
    """
    shortest, typical, longest = _schema_chars(schema, schema.get("$defs", {}) or {})
    # a request's output tokens are ceil(bytes / 4): a quarter token over bytes / 4 on average
    top = None if longest is None else math.ceil(longest / 4)
    mean = (typical + 1.5) / 4 if top is None else min((typical + 1.5) / 4, float(top))
    return max(1.0, shortest / 4), mean, top
