"""The models the simulator serves, and their ``ModelInfo`` objects for ``/v1/models``.

Accepted model ids: every id of the SDK's ``Model`` literal, the older ids the reference
lists (Sonnet 4, Opus 4/4.1, Sonnet 3.7, Haiku 3.5/3, Opus 3), each of those with a
``-YYYYMMDD`` snapshot suffix or ``-latest``. Anything else (``claude-nope``, ``gpt-4o``) is
unknown: ``404 not_found_error`` on ``/v1/messages``, an ``errored`` result in a batch.
Retired models are still answered (the simulator is permissive about age).
``SimConfig(models=...)`` replaces the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Catalogue"]

# (id, display name, release date, line, lifecycle, max output tokens)
_MODELS: tuple[tuple[str, str, str, str | None, str, int], ...] = (
    ("claude-fable-5-2", "Claude Fable 5.2", "2026-11-09", "fable", "active", 128000),
    ("claude-mythos-5-2", "Claude Mythos 5.2", "2026-11-09", "mythos", "active", 128000),
    ("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07", "haiku", "active", 64000),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-07", "sonnet", "active", 128000),
    ("claude-opus-5-5", "Claude Opus 5.5", "2026-10-07", "opus", "active", 128000),
    ("claude-fable-5-1", "Claude Fable 5.1", "2026-08-18", "fable", "active", 128000),
    ("claude-mythos-5-1", "Claude Mythos 5.1", "2026-08-18", "mythos", "active", 128000),
    ("claude-sonnet-5", "Claude Sonnet 5", "2026-06-01", "sonnet", "active", 128000),
    ("claude-fable-5", "Claude Fable 5", "2026-06-01", "fable", "active", 128000),
    ("claude-mythos-5", "Claude Mythos 5", "2026-06-01", "mythos", "active", 128000),
    ("claude-opus-5", "Claude Opus 5", "2026-06-01", "opus", "active", 128000),
    ("claude-opus-4-8", "Claude Opus 4.8", "2026-04-15", "opus", "active", 128000),
    ("claude-opus-4-7", "Claude Opus 4.7", "2026-03-01", "opus", "active", 128000),
    ("claude-mythos-preview", "Claude Mythos Preview", "2026-02-01", "mythos", "deprecated", 64000),
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05", "opus", "active", 128000),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17", "sonnet", "active", 64000),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01", "haiku", "active", 64000),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01", "haiku", "active", 64000),
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-01", "opus", "active", 64000),
    ("claude-opus-4-5", "Claude Opus 4.5", "2025-11-01", "opus", "active", 64000),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29", "sonnet", "deprecated", 64000),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29", "sonnet", "deprecated", 64000),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05", "opus", "retired", 32000),
    ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05", "opus", "retired", 32000),
    ("claude-opus-4-20250514", "Claude Opus 4", "2025-05-14", "opus", "retired", 32000),
    ("claude-opus-4-0", "Claude Opus 4", "2025-05-14", "opus", "retired", 32000),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14", "sonnet", "retired", 64000),
    ("claude-sonnet-4-0", "Claude Sonnet 4", "2025-05-14", "sonnet", "retired", 64000),
    ("claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-19", "sonnet", "retired", 64000),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22", "haiku", "retired", 8192),
    ("claude-3-haiku-20240307", "Claude Haiku 3", "2024-03-07", "haiku", "retired", 4096),
    ("claude-3-opus-20240229", "Claude Opus 3", "2024-02-29", "opus", "retired", 4096),
)
_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")
_RETIRED_AT = "2026-06-15T00:00:00Z"


def _support(flag: bool) -> dict:
    return {"supported": flag}


def _capabilities(line: str | None) -> dict:
    modern = line in ("opus", "sonnet", "fable", "mythos")
    return {
        "batch": _support(True),
        "citations": _support(True),
        "code_execution": _support(modern),
        "context_management": {
            "clear_thinking_20251015": _support(modern),
            "clear_tool_uses_20250919": _support(modern),
            "compact_20260112": _support(modern),
            "supported": modern,
        },
        "effort": {
            "high": _support(modern),
            "low": _support(modern),
            "max": _support(modern),
            "medium": _support(modern),
            "supported": modern,
            "xhigh": _support(modern),
        },
        "image_input": _support(True),
        "pdf_input": _support(True),
        "server_tools": {"code_execution": _support(modern), "supported": True, "web_search": _support(True)},
        "structured_outputs": _support(True),
        "thinking": {
            "supported": True,
            "types": {
                "adaptive": _support(modern),
                "between_tools": _support(modern),
                "disabled": _support(True),
                "enabled": _support(True),
            },
        },
    }


class Catalogue:
    """Which model ids are known, and their ``ModelInfo`` dicts (newest first)."""

    def __init__(self, models: Iterable[str] | None = None) -> None:
        if models is None:
            rows = _MODELS
        else:
            known = {row[0]: row for row in _MODELS}
            rows = tuple(known.get(m, (m, m, "1970-01-01", None, "active", 64000)) for m in models)
        self._infos = [self._info(*row) for row in rows]
        self._by_id = {info["id"]: info for info in self._infos}
        self._cache: dict[str, bool] = {}

    @staticmethod
    def _info(model_id: str, name: str, date: str, line: str | None, lifecycle: str, max_tokens: int) -> dict:
        return {
            "id": model_id,
            "type": "model",
            "display_name": name,
            "created_at": f"{date}T00:00:00Z",
            "lifecycle": lifecycle,
            "deprecated_at": None if lifecycle == "active" else "2026-01-05T00:00:00Z",
            "retires_at": _RETIRED_AT if lifecycle == "retired" else None,
            "line": line,
            "max_input_tokens": 1_000_000 if line in ("opus", "sonnet", "fable", "mythos") else 200_000,
            "max_tokens": max_tokens,
            "capabilities": _capabilities(line),
        }

    def known(self, model: str) -> bool:
        hit = self._cache.get(model)
        if hit is None:
            hit = model in self._by_id or _SUFFIX.sub("", model) in self._by_id
            if len(self._cache) < 10_000:
                self._cache[model] = hit
        return hit

    def get(self, model: str) -> dict | None:
        """The ``ModelInfo`` of ``model`` (an alias with a snapshot suffix resolves to its base)."""
        return self._by_id.get(model) or self._by_id.get(_SUFFIX.sub("", model))

    def list(self, lifecycles: Iterable[str] | None) -> list[dict]:
        wanted = set(lifecycles or ("active", "deprecated"))
        return [info for info in self._infos if info["lifecycle"] in wanted]
