"""Rate limits on ``POST /v1/messages``: three token buckets on the simulated clock.

One bucket per limit of :class:`~batchkit.simulator.RateLimits` (requests, input tokens,
output tokens per minute), each holding one minute's worth and refilling continuously (a
limit of 60 RPM lets one request through per second once the bucket is empty). A request is
admitted in two steps, the way a careful client reserves and reconciles:

1. :meth:`Buckets.admit` — before answering: a request must be left, the input bucket must
   hold the request's estimated input (reserved now), and the output bucket must not be empty.
   Otherwise the caller answers 429 with the simulated seconds until all three would fit.
2. :meth:`Buckets.settle` — once answered: the input reserved becomes what counts toward the
   limit (``input_tokens`` + ``cache_creation_input_tokens``: cache reads do not), and the
   output tokens produced are taken; the output bucket may go below zero, which holds later
   requests back until it refills.

The response headers (:meth:`Buckets.headers`) follow the API: ``limit``, ``remaining``
(whole tokens, never below zero) and ``reset`` (RFC 3339 time at which the bucket is full
again) for ``requests``, ``input-tokens``, ``output-tokens``, and ``tokens`` (whichever token
bucket is closer to empty).
"""

from __future__ import annotations

import math
import threading

from ._clock import rfc3339
from ._config import RateLimits

__all__ = ["Buckets", "Refusal"]

_NAMES = ("requests", "input-tokens", "output-tokens")
_WHAT = ("requests", "input tokens", "output tokens")


class Refusal:
    """Why a request was not admitted: which limit, and how long until it fits."""

    __slots__ = ("limit", "never", "sim_wait", "what")

    def __init__(self, what: str, limit: int, sim_wait: float, never: bool = False) -> None:
        self.what = what
        self.limit = limit
        self.sim_wait = sim_wait
        self.never = never

    @property
    def message(self) -> str:
        if self.never:
            return (
                f"This request's input alone exceeds your organization's rate limit of "
                f"{self.limit:,} input tokens per minute; shorten the prompt (a retry cannot "
                "succeed)"
            )
        return (
            f"This request would exceed your organization's rate limit of {self.limit:,} "
            f"{self.what} per minute. Wait for the time in the retry-after header; the "
            "anthropic-ratelimit-* headers show what is left (simulated)"
        )


class Buckets:
    """The request, input-token and output-token buckets of one rate-limit group. Thread-safe."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._caps = (limits.requests_per_minute, limits.input_tokens_per_minute, limits.output_tokens_per_minute)
        self._level = [float(c or 0) for c in self._caps]
        self._named = [
            (
                i,
                cap,
                tuple(f"anthropic-ratelimit-{_NAMES[i]}-{part}" for part in ("limit", "remaining", "reset")),
                str(cap),
            )
            for i, cap in enumerate(self._caps)
            if cap
        ]
        """``(bucket, limit, its three header names, the limit's text)`` of each limit set."""
        self._at: float | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return any(self._caps)

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            elapsed = now - self._at
            for i, cap in enumerate(self._caps):
                if cap:
                    self._level[i] = min(float(cap), self._level[i] + elapsed * cap / 60.0)
        if self._at is None or now > self._at:
            self._at = now

    def admit(self, now: float, input_estimate: int) -> Refusal | None:
        """Reserve one request and ``input_estimate`` input tokens, or say why not."""
        if not self.active:
            return None
        rpm, itpm, otpm = self._caps
        with self._lock:
            self._refill(now)
            if itpm and input_estimate > itpm:
                return Refusal("input tokens", itpm, math.inf, never=True)
            needs = ((0, rpm, 1.0), (1, itpm, float(input_estimate)), (2, otpm, 1.0))
            worst: Refusal | None = None
            for i, cap, need in needs:
                if cap and self._level[i] < need:
                    wait = (need - self._level[i]) * 60.0 / cap
                    if worst is None or wait > worst.sim_wait:
                        worst = Refusal(_WHAT[i], cap, wait)
            if worst is not None:
                return worst
            if rpm:
                self._level[0] -= 1.0
            if itpm:
                self._level[1] -= input_estimate
            return None

    def settle(self, now: float, reserved: int, input_counted: int, output_tokens: int) -> None:
        """Replace the ``reserved`` input by what counted; take the output produced."""
        if not self.active:
            return
        _, itpm, otpm = self._caps
        with self._lock:
            self._refill(now)
            if itpm:
                self._level[1] = min(float(itpm), self._level[1] + reserved - input_counted)
            if otpm:
                self._level[2] -= output_tokens

    def release(self, now: float, reserved: int) -> None:
        """Give back a reservation whose request was not answered (e.g. the responder failed)."""
        self.settle(now, reserved, 0, 0)

    def headers(self, now: float) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers as of ``now`` (none when no limit is set)."""
        if not self.active:
            return {}
        with self._lock:
            self._refill(now)
            levels = tuple(self._level)
        headers: dict[str, str] = {}
        tightest: tuple[float, tuple[str, ...]] | None = None
        for i, cap, names, limit in self._named:
            level = levels[i]
            remaining = str(max(0, math.floor(level)))
            reset = rfc3339(now + max(0.0, cap - level) * 60.0 / cap)
            headers[names[0]] = limit
            headers[names[1]] = remaining
            headers[names[2]] = reset
            if i and (tightest is None or level / cap < tightest[0]):
                tightest = (level / cap, names)
        if tightest is not None:
            names = tightest[1]
            headers["anthropic-ratelimit-tokens-limit"] = headers[names[0]]
            headers["anthropic-ratelimit-tokens-remaining"] = headers[names[1]]
            headers["anthropic-ratelimit-tokens-reset"] = headers[names[2]]
        return headers
