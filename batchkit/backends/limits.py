"""Rate-limit groups and their limits, and what realtime runs learned of them in this process. Pure.

Models of one family share one set of rate limits (:func:`rate_limit_group`); :class:`Limits`
are a group's per-minute limits. The governor (:mod:`.ratelimit`) paces a realtime run by them,
and when a unit's run ends the limits its answers' headers gave are kept here, per server and
group (:func:`learn`), for :func:`learned_limits`: what ``auto`` and the estimate time realtime
by. This module is the part of rate limiting the engine reads, apart from the governor itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Limits", "forget_learned_limits", "learn", "learned_limits", "rate_limit_group"]

_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")
_SHARED_GROUPS = (
    ("claude-opus-4", "claude-opus-4"),  # Opus 4, 4.1, 4.5, 4.6, 4.7, 4.8 share limits
    ("claude-sonnet-4-5", "claude-sonnet-4.x"),  # Sonnet 4.5 and 4.6 share limits
    ("claude-sonnet-4-6", "claude-sonnet-4.x"),
)


def rate_limit_group(model: str) -> str:
    """The rate-limit group of ``model``: models in one group share one set of limits.

    >>> rate_limit_group("claude-opus-4-6"), rate_limit_group("claude-opus-4-8-20260415")
    ('claude-opus-4', 'claude-opus-4')
    >>> rate_limit_group("claude-haiku-4-5-20251001")
    'claude-haiku-4-5'
    """
    base = _SUFFIX.sub("", model)
    for prefix, group in _SHARED_GROUPS:
        if base == prefix or base.startswith(prefix + "-"):
            return group
    return base


@dataclass(frozen=True)
class Limits:
    """Per-minute limits of one group, used until response headers say otherwise.

    ``None``: unknown (not paced until a response reveals it).
    """

    requests_per_minute: float | None = None
    input_tokens_per_minute: float | None = None
    output_tokens_per_minute: float | None = None


# --------------------------------------------------------------------------- learned in this process

_LEARNED: dict[tuple[str, str], Limits] = {}


def _where(client: Any) -> str:
    return str(getattr(client, "base_url", "") or "")


def learn(client: Any, limits: Mapping[str, Limits]) -> None:
    """Keep the limits a run learned at ``client``'s server, by rate-limit group."""
    for group, found in limits.items():
        _LEARNED[(_where(client), group)] = found


def forget_learned_limits() -> None:
    """Forget every rate limit learned in this process (e.g. after changing the key's tier)."""
    _LEARNED.clear()


def learned_limits(model: str, client: Any) -> Limits | None:
    """The rate limits of ``model``'s group at ``client``'s server, as its headers last gave them
    in this process (None before any realtime answer): what ``auto`` and the estimate time
    realtime by."""
    return _LEARNED.get((_where(client), rate_limit_group(model)))
