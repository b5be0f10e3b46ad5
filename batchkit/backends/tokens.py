"""Counting a request's input tokens with the free ``count_tokens`` endpoint, its errors mapped here."""

from __future__ import annotations

from typing import Any

import anthropic

from batchkit.core import _json

from ..errors import UnknownModelError

__all__ = ["COUNT_TOKENS_MAX_BYTES", "count_tokens"]

COUNT_TOKENS_MAX_BYTES = 32_000_000
"""The largest request the standard endpoints (``count_tokens`` among them) take; a batch takes 256 MB."""

_COUNTABLE = ("messages", "model", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control")
"""The params ``count_tokens`` takes (it has no max_tokens and the like)."""


def count_tokens(client: anthropic.Anthropic, body: bytes) -> int | None:
    """``count_tokens`` of one serialized request, or None when the endpoint cannot take it (too large).

    Raises:
        UnknownModelError: the API does not know the request's model (a 404).
    """
    if len(body) > COUNT_TOKENS_MAX_BYTES:
        return None
    params: dict[str, Any] = {k: v for k, v in _json.loads(body).items() if k in _COUNTABLE}
    try:
        return int(client.messages.count_tokens(**params).input_tokens)
    except anthropic.NotFoundError as exc:  # the model id: nothing else in the path can be missing
        model = params.get("model")
        raise UnknownModelError(
            f"the API at {client.base_url} does not know the model {model!r} (count_tokens answered 404: "
            f"{exc.message}). Check the model id; client.models.list() lists the models it serves.",
            model=str(model),
        ) from None
    except anthropic.APIStatusError as exc:
        if exc.status_code == 413:  # over the endpoint's own request size limit
            return None
        raise
