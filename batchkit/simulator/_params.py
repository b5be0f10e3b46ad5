"""Request params: validation like the real API, the token estimate and cache breakpoints.

Token estimate (documented, used everywhere in the simulator)::

    tok(s) = ceil(len(s.encode("utf-8")) / 4)
    input  = 3
           + Σ over messages (4 + Σ tok(text) over its text blocks; a string content is one block)
           + Σ tok(text) over system text blocks (a string system prompt is one block)
           + Σ tok(json(tool definition)) over tools
           + tok(json(output_config.format.schema))
    output = tok(answer text), or tok(json(tool input)) for a tool call; at least 1

where ``json`` is compact JSON with keys in the order sent.

Images and PDF documents count by the API's documented rules (:mod:`._media`: ``w×h/750``
after scaling a long edge over 1568 px; a PDF page as an image of the page plus its text);
tool-use/tool-result blocks count 0. ``count_tokens`` returns the same
``input`` number. Real tokenizers differ by model and language; this rule is stable and cheap,
and batchkit's offline estimates use the same one.

Cache prefix order is tools → system → messages; each message's 4-token overhead belongs to
its first block. A breakpoint's prefix length is the tokens of everything up to and including
the breakpoint block (without the 3-token request overhead and the schema, which are never
cached).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from ._json import encode
from ._media import MediaCheck, check_media_block, check_request
from ._thinking import check_thinking

__all__ = ["Analysis", "ApiError", "analyze", "analyze_simple", "tok"]

CUSTOM_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")

_KNOWN_KEYS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "cache_control",
        "output_config",
        "output_format",
        "thinking",
        "service_tier",
        "speed",
        "inference_geo",
        "container",
        "diagnostics",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "user_profile_id",
        "workspace_id",
        "context_management",
        "compaction",
        "mcp_servers",
        "fallbacks",
        "fallback_credit_token",
        "billing_policy",
        "thread",
    }
)
_SAMPLING = ("temperature", "top_p", "top_k")
_ROLES = frozenset({"user", "assistant", "system"})
_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)
_TTLS = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4


class ApiError(Exception):
    """An error the API reports: HTTP status, error type and message."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def tok(s: str) -> int:
    """The token estimate of one string: ``ceil(UTF-8 bytes / 4)``.

    >>> tok("hello world"), tok("안녕하세요")
    (3, 4)
    """
    n = len(s) if s.isascii() else len(s.encode("utf-8"))
    return (n + 3) >> 2


class Analysis(msgspec.Struct, gc=False):
    """What the engine needs from valid params: token total and cache breakpoints.

    (A struct: built in C, one per request.)

    Attributes:
        params: the params analysed.
        input_tokens: the full input estimate (before caching).
        breakpoints: ``(prefix_tokens, ttl_seconds, ordinal)`` per cache breakpoint, in order.
    """

    params: dict
    input_tokens: int
    breakpoints: list | tuple

    def prefix_keys(self, model: str) -> list[bytes]:
        """A content hash of the prompt prefix ending at each breakpoint (per model)."""
        wanted = {bp[2] for bp in self.breakpoints}
        last = max(wanted)
        h = hashlib.blake2b(model.encode(), digest_size=16)
        keys: list[bytes] = []
        for ordinal, piece in _prefix_pieces(self.params):
            h.update(piece)
            if ordinal in wanted:
                keys.append(h.copy().digest())
                if ordinal == last:
                    break
        return keys


def _strip_cc(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _prefix_pieces(params: dict) -> Iterator[tuple[int, bytes]]:
    """The prompt in cache order as ``(block ordinal, canonical bytes)``; markers get ``-1``."""
    ordinal = 0
    for tool in params.get("tools") or ():
        yield ordinal, b"T" + encode(_strip_cc(tool))
        ordinal += 1
    system = params.get("system")
    if system is not None:
        for block in [system] if isinstance(system, str) else system:
            yield ordinal, b"S" + encode(_strip_cc(block))
            ordinal += 1
    for message in params["messages"]:
        yield -1, b"M" + message.get("role", "").encode()
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content:
            yield ordinal, b"B" + encode(_strip_cc(block))
            ordinal += 1


def _ttl(cc: Any, where: str) -> float:
    if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
        raise _bad(f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = cc.get("ttl", "5m")
    if ttl not in _TTLS:
        raise _bad(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return _TTLS[ttl]


def _json_tokens(value: Any) -> int:
    return (len(encode(value)) + 3) >> 2  # tok() of the JSON text: its UTF-8 bytes


_SIMPLE_KEYS = frozenset({"model", "max_tokens", "messages", "system", "metadata"})


_NO_BREAKPOINTS: tuple = ()


def analyze_simple(params: Any, in_batch: bool, model_known: Callable[[str], bool]) -> Analysis | None:
    """The common shape (string contents, string system, no tools or caching), fast.

    Returns ``None`` whenever anything is unusual; :func:`analyze` then does the full check
    and raises the precise error. Valid params of this shape get the same :class:`Analysis`
    from both (this one is what :func:`analyze` tries first).
    """
    if type(params) is not dict or not params.keys() <= _SIMPLE_KEYS:
        return None
    try:
        model = params["model"]
        max_tokens = params["max_tokens"]
        messages = params["messages"]
    except KeyError:
        return None
    if (
        type(model) is not str
        or type(max_tokens) is not int
        or max_tokens < (1 if in_batch else 0)
        or type(messages) is not list
        or not messages
        or not model_known(model)
    ):
        return None
    total = 3
    system = params.get("system")
    if system is not None:
        if type(system) is not str:
            return None
        total += ((len(system) if system.isascii() else len(system.encode())) + 3) >> 2
    for message in messages:
        if type(message) is not dict or len(message) != 2 or "content" not in message:
            return None
        content = message["content"]
        if type(content) is not str or not content or message.get("role") not in _PLAIN_ROLES:
            return None
        total += 4 + (((len(content) if content.isascii() else len(content.encode())) + 3) >> 2)
    return Analysis(params, total, _NO_BREAKPOINTS)


_PLAIN_ROLES = frozenset({"user", "assistant"})


def analyze(
    params: Any,
    *,
    version: str,
    in_batch: bool,
    reject_sampling: bool,
    count_only: bool = False,
    model_known: Callable[[str], bool],
) -> Analysis:
    """Validate ``params`` like the Messages API and estimate their tokens.

    ``count_only`` validates a ``count_tokens`` body (no ``max_tokens``, no ``stream``).

    The checks run in the API's order, one helper per part of the request (envelope, tools,
    tool_choice, system, messages, cache_control, thinking, stop_sequences, output_config;
    the model's existence last), so the first error reported is the one the API reports.
    The prompt parts that are cached (tools → system → messages) thread the running token
    count ``cum`` and the block ``ordinal`` through, appending to ``breakpoints``.

    Raises:
        ApiError: ``invalid_request_error`` (400) or ``not_found_error`` (404, unknown model).
    """
    fast = analyze_simple(params, in_batch, model_known)
    if fast is not None:
        return fast
    model = _check_envelope(params, version, in_batch, reject_sampling, count_only)
    breakpoints: list = []
    cum = ordinal = 0
    tools = params.get("tools")
    tool_names: set[str] = set()
    if tools is not None:
        cum, ordinal = _check_tools(tools, tool_names, breakpoints)
    choice = params.get("tool_choice")
    if choice is not None:
        _check_tool_choice(choice, tool_names)
    system = params.get("system")
    if system is not None:
        cum, ordinal = _check_system(system, breakpoints, cum, ordinal)
    cum, ordinal = _check_messages(params.get("messages"), breakpoints, cum, ordinal)
    top_cc = params.get("cache_control")
    if top_cc is not None:
        _add_top_breakpoint(top_cc, breakpoints, cum, ordinal)
    if len(breakpoints) > MAX_BREAKPOINTS:
        raise _bad(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(breakpoints)}."
        )
    check_thinking(params, count_only, _bad)
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _bad("stop_sequences: Input should be a valid list of strings")
    total = 3 + cum
    output_config = params.get("output_config")
    if output_config is not None:
        total += _output_config_tokens(output_config)
    if not model_known(model):
        raise ApiError(404, "not_found_error", f"model: {model}")
    return Analysis(params, total, breakpoints)


def _check_envelope(params: Any, version: str, in_batch: bool, reject_sampling: bool, count_only: bool) -> str:
    """The top level: a dict of known keys, sampling params where the version allows them,
    ``model``, ``max_tokens`` and ``stream``; returns the model."""
    if not isinstance(params, dict):
        raise _bad("params: Input should be a valid dictionary")
    for key in params:
        if key not in _KNOWN_KEYS:
            raise _bad(f"{key}: Extra inputs are not permitted")
    if reject_sampling and version == "2026-10-21":
        for key in _SAMPLING:
            if key in params:
                raise _bad(f"{key}: is not supported on API version 2026-10-21; remove it")
    model = params.get("model")
    if model is None:
        raise _bad("model: Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model: Input should be a valid string")
    if not count_only:
        max_tokens = params.get("max_tokens")
        if max_tokens is None:
            raise _bad("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _bad("max_tokens: Input should be a valid integer")
        if max_tokens < (1 if in_batch else 0):
            raise _bad(f"max_tokens: Input should be greater than or equal to {1 if in_batch else 0}")
        stream = params.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise _bad("stream: Input should be a valid boolean")
        if stream and in_batch:
            raise _bad("stream: Streaming is not supported for batch requests")
    return model


def _check_tools(tools: Any, tool_names: set[str], breakpoints: list) -> tuple[int, int]:
    """``tools``: each named, a custom one with an input schema; adds their names to
    ``tool_names`` and returns the running ``(cum, ordinal)`` after them (the cache prefix
    starts with the tools)."""
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    cum = ordinal = 0
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _bad(f"tools.{i}.name: Field required")
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            raise _bad(f"tools.{i}.custom.input_schema: Field required")
        tool_names.add(tool["name"])
        cum += _json_tokens(tool)
        cc = tool.get("cache_control")
        if cc is not None:
            breakpoints.append((cum, _ttl(cc, f"tools.{i}"), ordinal))
        ordinal += 1
    return cum, ordinal


def _check_tool_choice(choice: Any, tool_names: set[str]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not tool_names:
        raise _bad(f"tool_choice: tool_choice.type '{kind}' requires tools")
    if kind == "tool" and choice.get("name") not in tool_names:
        raise _bad(f"tool_choice.name: Tool '{choice.get('name')}' not found in tools")


def _check_system(system: Any, breakpoints: list, cum: int, ordinal: int) -> tuple[int, int]:
    """``system``: a string or a list of text blocks; returns the running ``(cum, ordinal)``."""
    if isinstance(system, str):
        return cum + tok(system), ordinal + 1
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string or list of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _bad(f"system.{i}: Input should be a text block")
        cum += tok(block["text"])
        cc = block.get("cache_control")
        if cc is not None:
            breakpoints.append((cum, _ttl(cc, f"system.{i}"), ordinal))
        ordinal += 1
    return cum, ordinal


def _empty_content(m: int) -> ApiError:
    return _bad(
        f"messages.{m}: all messages must have non-empty content except for the optional final assistant message"
    )


def _check_messages(messages: Any, breakpoints: list, cum: int, ordinal: int) -> tuple[int, int]:
    """``messages``: a non-empty list of messages with known roles and non-empty content (but
    a final assistant message), then the request's media limits; returns ``(cum, ordinal)``."""
    if messages is None:
        raise _bad("messages: Field required")
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    last_m = len(messages) - 1
    media = MediaCheck()
    for m, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{m}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(f"messages.{m}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        cum += 4
        if isinstance(content, str):
            if not content and not (m == last_m and role == "assistant"):
                raise _empty_content(m)
            cum += tok(content)
            ordinal += 1
            continue
        if not isinstance(content, list):
            raise _bad(f"messages.{m}.content: Input should be a valid string or list of content blocks")
        if not content and not (m == last_m and role == "assistant"):
            raise _empty_content(m)
        cum, ordinal = _check_blocks(content, m, media, breakpoints, cum, ordinal)
    check_request(media, _bad)
    return cum, ordinal


def _check_blocks(
    content: list, m: int, media: MediaCheck, breakpoints: list, cum: int, ordinal: int
) -> tuple[int, int]:
    """The content blocks of message ``m``; returns the running ``(cum, ordinal)``."""
    for b, block in enumerate(content):
        if not isinstance(block, dict):
            raise _bad(f"messages.{m}.content.{b}: Input should be a valid dictionary")
        btype = block.get("type")
        if btype == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise _bad(f"messages.{m}.content.{b}.text: Field required")
            if not text:
                raise _bad(f"messages.{m}.content.{b}.text: text content blocks must be non-empty")
            cum += tok(text)
        elif btype == "image" or btype == "document":
            cum += check_media_block(block, f"messages.{m}.content.{b}", media, _bad)
        elif btype not in _BLOCK_TYPES:
            raise _bad(
                f"messages.{m}.content.{b}.type: Input tag {btype!r} found using 'type' "
                "does not match any of the expected tags"
            )
        cc = block.get("cache_control")
        if cc is not None:
            breakpoints.append((cum, _ttl(cc, f"messages.{m}.content.{b}"), ordinal))
        ordinal += 1
    return cum, ordinal


def _add_top_breakpoint(top_cc: Any, breakpoints: list, cum: int, ordinal: int) -> None:
    """The top-level ``cache_control``: a breakpoint on the last block, unless one is there."""
    ttl = _ttl(top_cc, "")
    if not breakpoints or breakpoints[-1][2] != ordinal - 1:
        breakpoints.append((cum, ttl, ordinal - 1))


def _output_config_tokens(output_config: Any) -> int:
    """``output_config``: its JSON schema's tokens (0 without one)."""
    if not isinstance(output_config, dict):
        raise _bad("output_config: Input should be a valid dictionary")
    fmt = output_config.get("format")
    if fmt is None:
        return 0
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise _bad("output_config.format: Input should be {'type': 'json_schema', 'schema': {...}}")
    return _json_tokens(fmt["schema"])
