"""Tool use under ``tool_choice: auto``: when the simulated model calls a tool, and which.

The API leaves the choice to the model under ``auto`` (and when ``tool_choice`` is absent).
The simulator decides by one deterministic rule, so an agent loop — ask, get ``tool_use``, send
the ``tool_result``, get the final text — runs offline the same way every time:

1. The request has custom tools (``input_schema``; server tools are never called) and
   ``tool_choice`` is absent or ``{"type": "auto"}`` (``none`` never calls one; ``any`` and
   ``tool`` force a call, see :func:`._responder.chosen_tool`).
2. The last message is the user's and holds text but no ``tool_result`` block. A message of
   tool results gets the final text answer, which is what ends a tool runner's loop.
3. A tool is called when its name is what that text is about: a word of the text equals a
   *topic word* of the tool's name, or both are five letters or longer and share their first
   five (``weather``/``weather``, ``calculate``/``calculator``, ``prices``/``price``). The
   topic words are the name split at ``_``, ``-``, ``.``, digits and lower-to-upper case
   changes, lower-cased, without generic verbs (``get``, ``fetch``, ``lookup``, …, see
   :data:`GENERIC_WORDS`) and words under three letters — unless that leaves none, then all.
4. Several tools match: each is called, in name order (parallel tool use), unless
   ``tool_choice.disable_parallel_tool_use`` is true — then only the first.

So ``get_weather`` is called for "What's the weather like in Paris?" and not for "Hello";
``get_weather`` and ``get_time`` are both called for "weather and time in Tokyo?".
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["GENERIC_WORDS", "called_tools", "topic_words"]

GENERIC_WORDS = frozenset(
    {
        "get",
        "set",
        "fetch",
        "find",
        "lookup",
        "look",
        "search",
        "query",
        "list",
        "create",
        "update",
        "delete",
        "remove",
        "add",
        "run",
        "do",
        "make",
        "call",
        "check",
        "read",
        "write",
        "send",
        "show",
        "retrieve",
        "tool",
        "api",
        "the",
        "for",
        "and",
        "with",
        "from",
        "current",
        "info",
        "data",
        "by",
    }
)
"""Words of a tool's name that say what it does, not what it is about (never matched)."""

_NAME_SPLIT = re.compile(r"[_\-.\s\d]+|(?<=[a-z])(?=[A-Z])")
_TEXT_WORD = re.compile(r"[^\W\d_]+")


@functools.lru_cache(maxsize=1024)
def topic_words(name: str) -> tuple[str, ...]:
    """The words of a tool's name that a user's text must name to call it.

    >>> topic_words("get_weather"), topic_words("lookupStockPrice"), topic_words("get")
    (('weather',), ('stock', 'price'), ('get',))
    """
    words = [w.lower() for w in _NAME_SPLIT.split(name) if w]
    topics = tuple(w for w in words if len(w) >= 3 and w not in GENERIC_WORDS)
    return topics or tuple(words)


def _named(topic: str, words: set[str]) -> bool:
    if topic in words:
        return True
    if len(topic) < 5:
        return False
    stem = topic[:5]
    return any(len(w) >= 5 and w[:5] == stem for w in words)


def _latest_user_text(params: dict) -> str | None:
    """The text of the last message when it is the user's and holds no tool result."""
    messages = params.get("messages") or ()
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            return None
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return " ".join(texts) or None


def called_tools(params: dict) -> list[dict]:
    """The tools a request under ``auto`` calls (the rule above), in name order; ``[]``: none."""
    tools = params.get("tools")
    if not tools:
        return []
    choice = params.get("tool_choice")
    if choice is not None and not (isinstance(choice, dict) and choice.get("type") == "auto"):
        return []
    text = _latest_user_text(params)
    if not text:
        return []
    words = {w.lower() for w in _TEXT_WORD.findall(text[:4000])}
    called = []
    for tool in sorted(tools, key=lambda t: str(t.get("name"))):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            continue
        if any(_named(topic, words) for topic in topic_words(str(tool.get("name")))):
            called.append(tool)
    if called and isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
        return called[:1]
    return called


def tool_results_text(params: dict) -> tuple[list[str], str] | None:
    """``(tool names, result text)`` when the last message is the user's tool results.

    The names come from the ``tool_use`` blocks of the assistant message before it."""
    messages = params.get("messages") or ()
    if not messages:
        return None
    last = messages[-1]
    content = last.get("content") if isinstance(last, dict) else None
    if not isinstance(content, list) or last.get("role") != "user":
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not results:
        return None
    names_by_id: dict[Any, str] = {}
    if len(messages) >= 2 and isinstance(messages[-2], dict) and isinstance(messages[-2].get("content"), list):
        for block in messages[-2]["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                names_by_id[block.get("id")] = str(block.get("name"))
    names, texts = [], []
    for result in results:
        name = names_by_id.get(result.get("tool_use_id"))
        if name and name not in names:
            names.append(name)
        inner = result.get("content")
        if isinstance(inner, str):
            texts.append(inner)
        elif isinstance(inner, list):
            texts.extend(
                b["text"]
                for b in inner
                if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            )
    return names, " ".join(t.strip() for t in texts if t.strip())
