"""The commonest batch request, answered on a short road: string contents, the default responder.

Most batch requests have the simplest shape — ``model``, ``max_tokens``, ``messages`` whose
contents are strings, maybe a string ``system`` and ``metadata`` — and no tools, output format,
thinking, stop sequences or cache marks. For those, :class:`PlainLines` decodes the params
straight into typed structs (msgspec checks the shape and the types in C, in the same pass
that decodes them), answers with the default responder's text answer, and writes the result
line from a byte template: the same bytes as the general road (``_engine``: decode, validate,
answer, shape, encode the structs), for a fraction of its cost. Anything else — another key,
a block list, an unknown model, an empty content, ``max_tokens`` above every model's smallest
cap — is ``None`` here, and the general road answers it (and finds the precise error).

What this road accepts is exactly what ``_params.analyze_simple`` accepts, and it counts the
input tokens the same way; ``tests/simulator`` and ``bench/sim_fingerprint.py`` hold the bytes
to the general road's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ._json import DECODE_ERRORS, decode
from ._output import SMALLEST_CAP
from ._responder import canonical_hash, text_answer

__all__ = ["BETA_TAIL", "PLAIN_LINE", "PlainLines", "cut_plain"]


class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["user", "assistant"]
    content: str


class _Params(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: str
    max_tokens: int
    messages: list[_Message]
    system: str | None = None
    metadata: Any = None  # not checked, as on the general road for params of this shape


_decode_params = msgspec.json.Decoder(_Params).decode

# The result line of the commonest answer (the default responder's text to string-only params,
# no cache), written from a template: the same bytes as encoding the engine's structs (a test
# holds them to it), for a third of the cost. Fields in order: custom_id (JSON), the batch's
# stem and the request's index, model and text (JSON), stop_reason, input and output tokens;
# the beta line ends its message with ``context_management``.
PLAIN_LINE = (
    b'{"custom_id":%b,"result":{"type":"succeeded","message":{"id":"msg_01%b%08d","type":"message",'
    b'"role":"assistant","model":%b,"content":[{"type":"text","text":%b,"citations":null}],'
    b'"stop_reason":"%b","stop_sequence":null,"stop_details":null,"container":null,'
    b'"diagnostics":null,"usage":{"input_tokens":%d,"output_tokens":%d,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":'
    b'{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"server_tool_use":null,'
    b'"service_tier":"batch","output_tokens_details":null,"speed":null,"inference_geo":null}%b}}}\n'
)
BETA_TAIL = b',"context_management":null'


def cut_plain(text: str, max_tokens: int) -> tuple[str, bytes, int]:
    """``(text, stop_reason, output tokens)`` of a plain answer, cut at ``max_tokens`` as
    ``shape_answer`` cuts it (four bytes a token)."""
    out = ((len(text) if text.isascii() else len(text.encode())) + 3) >> 2  # tok(text)
    if out <= max_tokens:
        return text, b"end_turn", out
    limit = max_tokens * 4
    text = text[:limit] if text.isascii() else text.encode()[:limit].decode("utf-8", "ignore")
    return text, b"max_tokens", max_tokens


_json_str = msgspec.json.encode


class PlainLines:
    """Result lines of one batch's plain requests (see the module's docstring).

    Args:
        known: whether a model id exists (the catalogue's check).
        stem: the batch's id stem (message ids are ``msg_01{stem}{index:08d}``).
        beta: whether the batch was created through the beta endpoint.
    """

    __slots__ = ("_known", "_models", "_stem", "_tail")

    def __init__(self, known: Callable[[str], bool], stem: str, beta: bool) -> None:
        self._known = known
        self._stem = stem.encode()
        self._tail = BETA_TAIL if beta else b""
        self._models: dict[str, bytes | None] = {}

    def line(self, raw: msgspec.Raw, cid: str, i: int) -> bytes | None:
        """The result line of request ``i`` (params ``raw``), or None when it is not plain."""
        try:
            params = _decode_params(raw)
        except DECODE_ERRORS:
            return None
        model = params.model
        encoded_model = self._models.get(model)
        if encoded_model is None:
            if model in self._models or not self._known(model):
                self._models[model] = None
                return None
            encoded_model = self._models[model] = _json_str(model)
        max_tokens = params.max_tokens
        messages = params.messages
        if not 0 < max_tokens <= SMALLEST_CAP or not messages:
            return None
        total = 3
        system = params.system
        if system is not None:
            total += ((len(system) if system.isascii() else len(system.encode())) + 3) >> 2
        text = None
        for message in messages:
            content = message.content
            if not content:
                return None
            total += 4 + (((len(content) if content.isascii() else len(content.encode())) + 3) >> 2)
        last = messages[-1]
        if last.role == "user":
            text = last.content[:4000]
        else:
            text = next((m.content[:4000] for m in reversed(messages) if m.role == "user"), "")
        try:
            answer = text_answer(text, model, lambda: canonical_hash(decode(raw)))
        except Exception:  # the general road turns it into the same error line
            return None
        answer, stop_reason, out = cut_plain(answer, max_tokens)
        return PLAIN_LINE % (
            _json_str(cid),
            self._stem,
            i,
            encoded_model,
            _json_str(answer),
            stop_reason,
            total,
            max(out, 1),
            self._tail,
        )
