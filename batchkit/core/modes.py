"""Which way a call's requests go: Message Batches, realtime, or the rule of thumb (``auto``). Pure.

==============  ===============================================================================
``"batch"``     Message Batches: half the standard price; most batches end within an hour, all
                within 24 h. The default — ``df.claude.batch`` is a promise of batch prices.
``"realtime"``  ``POST /v1/messages``, many at once within the rate limits: standard price,
                answers in seconds, stored one group at a time as they arrive.
``"auto"``      the usual rule of thumb, applied to the job's own numbers (:func:`choose`).
==============  ===============================================================================

Another default for a notebook or a script, first that is set wins: ``mode=`` on the call,
:func:`set_default_mode`, the ``BATCHKIT_MODE`` environment variable, ``"batch"``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from batchkit.errors import InvalidOptionError

from .states import Mode

__all__ = [
    "AUTO_REALTIME_BELOW",
    "MODES",
    "TYPICAL_BATCH_SECONDS",
    "RealtimeLimits",
    "choose",
    "default_mode",
    "realtime_seconds",
    "set_default_mode",
]

MODES: tuple[str, ...] = tuple(mode.value for mode in Mode)
"""What ``mode=`` takes (:class:`~batchkit.core.states.Mode`, as plain strings)."""
_BATCH, _REALTIME, _AUTO = Mode.BATCH.value, Mode.REALTIME.value, Mode.AUTO.value
AUTO_REALTIME_BELOW = 100
"""``auto`` sends fewer requests than this in realtime: a batch's wait is not worth the discount."""
TYPICAL_BATCH_SECONDS = 3600.0
"""Anthropic: most batches end within an hour (all within 24 h)."""
MAX_BATCH_SECONDS = 24 * 3600.0
REALTIME_WAIT_LIMIT = 600.0
"""``auto`` also goes realtime when realtime finishes within this many seconds *and* a deadline
asks for it; without a deadline the discount wins above :data:`AUTO_REALTIME_BELOW` requests."""

_default: str | None = None


@dataclass(frozen=True)
class RealtimeLimits:
    """Per-minute rate limits assumed when the client has not learned the workspace's own.

    Defaults are a modest tier (Anthropic's tier 2 for Haiku-class models): a real workspace
    is usually allowed more, and the realtime engine re-learns them from response headers.
    """

    requests_per_minute: float = 1000.0
    input_tokens_per_minute: float = 450_000.0
    output_tokens_per_minute: float = 90_000.0
    latency_seconds: float = 2.0
    """About one request's latency: the least a realtime run takes."""
    learned: bool = False
    """The figures are the workspace's own, from the API's ``anthropic-ratelimit-*`` headers."""


def _check(mode: object, *, name: str = "mode") -> str:
    if isinstance(mode, str) and mode in MODES:
        return mode
    raise InvalidOptionError(
        f"{name} must be 'batch' (Message Batches, half price), 'realtime' (answers in seconds, standard "
        f"price) or 'auto' (batchkit chooses from the job's size), not {mode!r}",
        option=name,
    )


def set_default_mode(mode: str | None) -> None:
    """Make ``mode`` the default of every later call in this process (``None``: back to
    ``BATCHKIT_MODE`` or ``"batch"``).

    >>> batchkit.set_default_mode("auto")   # doctest: +SKIP
    """
    global _default
    _default = None if mode is None else _check(mode)


def default_mode() -> str:
    """The mode of a call that names none: :func:`set_default_mode`, else ``BATCHKIT_MODE``, else batch.

    Raises:
        InvalidOptionError: ``BATCHKIT_MODE`` holds something else than batch, realtime or auto.
    """
    if _default is not None:
        return _default
    env = os.environ.get("BATCHKIT_MODE")
    if env:
        return _check(env.strip().lower(), name="BATCHKIT_MODE")
    return _BATCH


def check_mode(name: str, value: object) -> str:
    """The option check of ``mode=``: None takes the default."""
    return default_mode() if value is None else _check(value, name=name)


def realtime_seconds(
    requests: int, input_tokens: float, output_tokens: float, limits: RealtimeLimits | None = None
) -> tuple[float, str]:
    """Seconds realtime needs for the work, and which limit binds (the slowest of the three).

    >>> round(realtime_seconds(2000, 400_000, 100_000)[0]), realtime_seconds(2000, 400_000, 100_000)[1]
    (120, 'requests per minute')
    """
    limits = limits or RealtimeLimits()
    if requests <= 0:
        return 0.0, "nothing to send"
    minutes = {
        "requests per minute": requests / limits.requests_per_minute,
        "input tokens per minute": input_tokens / limits.input_tokens_per_minute,
        "output tokens per minute": output_tokens / limits.output_tokens_per_minute,
    }
    binding = max(minutes, key=lambda k: minutes[k])
    return max(limits.latency_seconds, minutes[binding] * 60.0), binding


def choose(
    asked: str,
    *,
    requests: int,
    input_tokens: float,
    output_tokens: float,
    deadline_seconds: float | None = None,
    limits: RealtimeLimits | None = None,
) -> tuple[str, str]:
    """The mode a job runs in, and why, in a sentence a user reads in the progress view.

    ``auto``: fewer than :data:`AUTO_REALTIME_BELOW` requests to send → realtime; a deadline
    sooner than a batch's typical hour that realtime can meet → realtime; otherwise batch.

    >>> choose("auto", requests=20, input_tokens=2000, output_tokens=400)[0]
    'realtime'
    >>> choose("auto", requests=5000, input_tokens=5e5, output_tokens=1e5)[0]
    'batch'
    """
    if asked != _AUTO:
        return asked, f"mode={asked!r} was asked"
    if requests <= 0:
        return _REALTIME, "auto: every request already has an answer in the store; nothing is sent"
    seconds, binding = realtime_seconds(requests, input_tokens, output_tokens, limits)
    rt = f"realtime ≈ {duration(seconds)} ({binding} binds{where(limits)})"
    if requests < AUTO_REALTIME_BELOW:
        return _REALTIME, (
            f"auto: {requests:,} requests to send, fewer than {AUTO_REALTIME_BELOW} — {rt}, "
            f"a batch typically ≈ 1 h; realtime costs the standard price (2× batch)"
        )
    if deadline_seconds is not None and deadline_seconds < TYPICAL_BATCH_SECONDS and seconds <= deadline_seconds:
        return _REALTIME, (
            f"auto: the deadline is in {duration(deadline_seconds)}, sooner than a batch's "
            f"typical hour, and {rt} meets it"
        )
    return _BATCH, (
        f"auto: {requests:,} requests to send (≥ {AUTO_REALTIME_BELOW}) — {rt}, a batch typically "
        f"≈ 1 h (at most 24 h) at half the price"
    )


def where(limits: RealtimeLimits | None) -> str:
    """Whose rate limits a realtime time is computed from, as a clause."""
    return ", the workspace's limits" if limits is not None and limits.learned else ", at default limits"


def duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``1.5 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
