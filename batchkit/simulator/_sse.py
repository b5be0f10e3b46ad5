"""Streaming ``POST /v1/messages`` (``stream: true``): one answer as server-sent events.

The answer is the one the same request gets without ``stream`` (the engine answers first,
then it is sent piece by piece), so text, tool input, thinking and usage are identical.
Events, in the API's order (``event: <type>\\ndata: <json>\\n\\n``)::

    message_start        the message with empty content, stop_reason null, the full usage
                         but output_tokens 1
    ping
    per content block i:
      content_block_start  {"type":"text","text":""} | {"type":"tool_use",…,"input":{}}
                           | {"type":"thinking","thinking":"","signature":""}
      content_block_delta  text_delta | input_json_delta (pieces of the input's JSON)
                           | thinking_delta, then one signature_delta
      content_block_stop
    message_delta        stop_reason, stop_sequence; usage: input, cache and output tokens
    message_stop

Text is cut at word boundaries into pieces of about :data:`PIECE` characters, tool input
JSON into pieces of exactly that many. With a latency model (``SimConfig.latency``) the
stream waits the time to the first token before the first block, then each piece's share of
the per-token time (by its length), so the whole stream takes what the plain answer takes.
Iterated (the WSGI body, in process) it sleeps those waits; :meth:`MessageStream.paced` hands
them out instead, and the served simulator sends each event on a timer (:mod:`._http`).

A scheduled ``"midstream:STATUS"`` fault (``Faults.schedule``) sends the ``error`` event the
API sends when a stream fails after its 200 — ``{"type": "error", "error": {"type":
"overloaded_error", …}}`` for 529 — halfway through the content, and ends the stream; the SDK
raises ``anthropic.APIStatusError`` from the iterator (its status is the stream's 200; the
error's type is in ``exc.body["error"]["type"]``), as it does for the API.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from ._json import encode

__all__ = ["PIECE", "MessageStream", "event"]

PIECE = 24
"""About how many characters one ``content_block_delta`` carries."""

_WORDS = re.compile(r"\S*\s*")


def event(name: str, data: Any) -> bytes:
    """One server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + encode(data) + b"\n\n"


def text_pieces(text: str, size: int = PIECE) -> list[str]:
    """``text`` in pieces of about ``size`` characters, cut after whitespace where it can be.

    >>> text_pieces("The weather in Paris is mild today.", 10)
    ['The ', 'weather ', 'in Paris ', 'is mild ', 'today.']
    """
    pieces: list[str] = []
    current = ""
    for word in _WORDS.findall(text):
        while len(word) > size:  # a long word (or a language without spaces): cut it
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:size])
            word = word[size:]
        if current and len(current) + len(word) > size:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return pieces


def _block_events(index: int, block: dict) -> list[tuple[bytes, int]]:
    """``(event, characters it carries)`` for one content block."""
    kind = block.get("type")
    if kind == "text":
        start: dict = {"type": "text", "text": "", "citations": None}
        deltas = [({"type": "text_delta", "text": p}, len(p)) for p in text_pieces(block["text"])]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        raw = encode(block["input"]).decode()
        deltas = [
            ({"type": "input_json_delta", "partial_json": raw[i : i + PIECE]}, len(raw[i : i + PIECE]))
            for i in range(0, len(raw), PIECE)
        ]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [({"type": "thinking_delta", "thinking": p}, len(p)) for p in text_pieces(block["thinking"])]
        deltas.append(({"type": "signature_delta", "signature": block["signature"]}, 0))
    else:  # a block the simulator never makes; sent whole
        start, deltas = block, []
    out = [(event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}), 0)]
    out += [
        (event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}), n)
        for d, n in deltas
    ]
    out.append((event("content_block_stop", {"type": "content_block_stop", "index": index}), 0))
    return out


class MessageStream:
    """The events of one answered message, paced by the latency model (a WSGI body).

    Args:
        message: the answer as a plain dict (``msgspec.to_builtins`` of the engine's message).
        first_wait: wall seconds before the first content block.
        token_wait: wall seconds spread over the content pieces, by their length.
        error: ``{"type", "message"}`` to send as an ``error`` event halfway, or ``None``.
        sleep: how to wait (``time.sleep``).
    """

    def __init__(
        self,
        message: dict,
        first_wait: float = 0.0,
        token_wait: float = 0.0,
        error: dict | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._message = message
        self._first_wait = first_wait
        self._token_wait = token_wait
        self._error = error
        self._sleep = sleep

    @classmethod
    def of(cls, message: Any, **kwargs: Any) -> MessageStream:
        return cls(msgspec.to_builtins(message), **kwargs)

    def __iter__(self) -> Iterator[bytes]:
        """The events, each after its wait (slept with ``sleep``): the WSGI body."""
        sleep = self._sleep
        for wait, data in self.paced():
            if wait > 0:
                sleep(wait)
            yield data

    def paced(self) -> Iterator[tuple[float, bytes]]:
        """``(wall seconds to wait before it, event)`` for each event, in order: what the
        served simulator sends on timers (the WSGI body sleeps the same waits)."""
        message = self._message
        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": min(1, usage["output_tokens"])},
        }
        yield 0.0, event("message_start", {"type": "message_start", "message": start})
        yield 0.0, event("ping", {"type": "ping"})
        blocks = [e for i, block in enumerate(message["content"]) for e in _block_events(i, block)]
        chars = sum(n for _, n in blocks)
        per_char = self._token_wait / chars if chars else 0.0
        cut = len(blocks) // 2 if self._error is not None else -1
        wait = max(self._first_wait, 0.0)  # the time to the first token, before the first block
        for k, (data, n) in enumerate(blocks):
            if k == cut:
                yield wait, event("error", {"type": "error", "error": self._error})
                return
            if n and per_char:
                wait += n * per_char
            yield wait, data
            wait = 0.0
        if self._error is not None:  # no content to cut in: fail before the end
            yield wait, event("error", {"type": "error", "error": self._error})
            return
        delta = {
            "stop_reason": message["stop_reason"],
            "stop_sequence": message["stop_sequence"],
            "stop_details": message.get("stop_details"),
            "container": message.get("container"),
        }
        yield (
            wait,
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": {
                        "input_tokens": usage["input_tokens"],
                        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                        "cache_read_input_tokens": usage["cache_read_input_tokens"],
                        "output_tokens": usage["output_tokens"],
                        "server_tool_use": usage.get("server_tool_use"),
                    },
                },
            ),
        )
        yield 0.0, event("message_stop", {"type": "message_stop"})
