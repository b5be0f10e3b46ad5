"""Extended thinking: the ``thinking`` block before the answer, and its checks.

With ``thinking: {"type": "enabled", "budget_tokens": N}`` or ``{"type": "adaptive"}`` the
answer starts with one ``{"type": "thinking", "thinking": …, "signature": …}`` block, then the
text or tool calls as without thinking (the answer itself does not change). The thinking is a
short deterministic note on the request (what it is about, which tools it calls, that tool
results came back); the signature is a base64 digest of it and the model. Its tokens
(``ceil(UTF-8 bytes / 4)``) count in ``output_tokens`` and against ``max_tokens``: what does
not fit is cut, thinking first (``stop_reason: "max_tokens"``).

Checked like the API (400 ``invalid_request_error``): ``type`` is ``enabled``, ``disabled`` or
``adaptive``; ``enabled`` needs ``budget_tokens`` ≥ 1024 and below ``max_tokens``; thinking
cannot be on while ``tool_choice`` forces a tool (``any``/``tool``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

__all__ = ["MIN_BUDGET", "check_thinking", "thinking_block", "thinking_on"]

MIN_BUDGET = 1024
"""The smallest ``budget_tokens`` the API accepts."""


def check_thinking(params: dict, count_only: bool, _bad: Callable[[str], Exception]) -> None:
    """Raise ``_bad(message)`` (the API's 400) for a malformed ``thinking``, or one that forced
    tool use rules out."""
    thinking = params.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        raise _bad("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise _bad("thinking.enabled.budget_tokens: Field required")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise _bad("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < MIN_BUDGET:
            raise _bad(f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}")
        max_tokens = params.get("max_tokens")
        if not count_only and isinstance(max_tokens, int) and max_tokens <= budget:
            raise _bad(
                f"max_tokens: must be greater than thinking.budget_tokens ({budget}); raise "
                "max_tokens or lower the budget"
            )
    choice = params.get("tool_choice")
    if kind != "disabled" and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise _bad(
            "Thinking may not be enabled when tool_choice forces tool use; use tool_choice "
            "auto or none, or disable thinking"
        )


def thinking_on(params: dict) -> bool:
    """Whether the answer starts with a thinking block."""
    thinking = params.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def thinking_block(
    params: dict, about: list[str], calls: list[str], results: bool, max_tokens: int
) -> tuple[dict, int]:
    """``(thinking block, its tokens)``, cut to ``max_tokens``.

    ``about``: words the request is about; ``calls``: names of the tools the answer calls;
    ``results``: the last message holds tool results."""
    if about:
        listed = about[0] if len(about) == 1 else ", ".join(about[:-1]) + " and " + about[-1]
        parts = [f"The user asks about {listed}."]
    elif results:
        parts = []
    else:
        parts = ["The user's request is short."]
    if results:
        parts.append("The tool results are in; I can answer from them now.")
    elif calls:
        parts.append(f"I should call {' and '.join(calls)} before answering.")
    else:
        parts.append("I can answer directly, briefly.")
    text = " ".join(parts)
    tokens = (len(text.encode()) + 3) >> 2  # tok(text)
    if tokens > max_tokens:
        text = text.encode()[: max_tokens * 4].decode("utf-8", "ignore")
        tokens = max_tokens
    digest = hashlib.blake2b(f"{params.get('model')}\n{text}".encode(), digest_size=64).digest()
    signature = base64.b64encode(b"\x12\x08sim" + digest).decode()
    block: dict[str, Any] = {"type": "thinking", "thinking": text, "signature": signature}
    return block, tokens
