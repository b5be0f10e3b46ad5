"""How a call will be sent and priced: ``mode="auto"`` resolved with the job's own numbers.

The rule of thumb itself is pure (:func:`batchkit.core.modes.choose`); what it is fed comes from
here: the call's mode and deadline, and the realtime rate limits — the workspace's, once a realtime
answer's headers gave them in this process, else the defaults. :func:`pricing_mode` names the
estimate's price line a job sent that way pays.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from batchkit.backends import clients as backend
from batchkit.backends.limits import learned_limits
from batchkit.core import modes
from batchkit.core.states import PriceMode, SendMode

if TYPE_CHECKING:
    from .prepared import Call

__all__ = ["choose_mode", "pricing_mode", "realtime_limits", "run_mode"]


def run_mode(call: Call) -> str:
    """The pricing mode the call will actually run in, were it sent as batches."""
    return PriceMode(f"batch+{call.options.run.cache_ttl}") if call.cached else PriceMode.BATCH


def pricing_mode(call: Call, mode: str) -> str:
    """The estimate's row for a job sent in ``mode`` (realtime is the standard price)."""
    return PriceMode.STANDARD if mode == SendMode.REALTIME else run_mode(call)


def choose_mode(call: Call, *, requests: int, input_tokens: float, output_tokens: float) -> tuple[str, str]:
    """The call's mode (``auto`` resolved with the job's own numbers) and why."""
    run = call.options.run
    return modes.choose(
        run.mode,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        deadline_seconds=_deadline_seconds(getattr(run, "deadline", None)),
        limits=realtime_limits(call),
    )


def realtime_limits(call: Call) -> modes.RealtimeLimits:
    """The rate limits realtime is timed by: the workspace's, once a realtime answer's headers gave
    them in this process, else :class:`~batchkit.core.modes.RealtimeLimits`'s defaults."""
    learned = learned_limits(call.model, call.options.run.client or backend.get_default_client())
    if learned is None:
        return modes.RealtimeLimits()
    default = modes.RealtimeLimits()
    return modes.RealtimeLimits(
        requests_per_minute=learned.requests_per_minute or default.requests_per_minute,
        input_tokens_per_minute=learned.input_tokens_per_minute or default.input_tokens_per_minute,
        output_tokens_per_minute=learned.output_tokens_per_minute or default.output_tokens_per_minute,
        learned=True,
    )


def _deadline_seconds(deadline: Any) -> float | None:
    """Seconds until ``deadline=`` (seconds, a timedelta or an aware datetime), if one was given."""
    if deadline is None:
        return None
    if isinstance(deadline, dt.timedelta):
        return deadline.total_seconds()
    if isinstance(deadline, dt.datetime):
        now = dt.datetime.now(deadline.tzinfo or dt.UTC)
        return (deadline - now).total_seconds()
    try:
        return float(deadline)
    except (TypeError, ValueError):
        return None
