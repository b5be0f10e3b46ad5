"""What ``POST /v1/messages`` does around the answer: bursts, spend limit, rate limits, latency.

Order of checks for one call (after auth, version and injected faults, see :mod:`._app`):

1. an overload burst (``Faults.overloaded_bursts``) → 529 ``overloaded_error``;
2. the spend limit reached (:class:`SpendLimit`) → 429 ``enforced_spend_limit_reached``
   without ``retry-after``, or 400 "You have reached your specified workspace API usage
   limits";
3. the params (400/404 as the engine finds them; a ``thread`` continued gets its history
   first, :mod:`._threads`), and ``max_tokens`` against the model's output cap
   (:mod:`._output`);
4. the rate limits (:mod:`._ratelimit`) → 429 with ``retry-after``;
5. the answer; its usage settles the buckets and the spend meter;
6. the latency (:class:`Latency`): the handler sleeps before responding.

Every response of this endpoint past step 1 carries the ``anthropic-ratelimit-*`` headers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
from typing import Any

from ._clock import SimClock, rfc3339
from ._config import SimConfig
from ._engine import Engine, Message
from ._faults import request_draw
from ._params import ApiError
from ._ratelimit import Buckets
from ._threads import ThreadNotFound, Threads

__all__ = ["Realtime", "Refused"]


class Refused(Exception):
    """A ``/v1/messages`` call answered with an error: status, error object, headers."""

    def __init__(self, status: int, error: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error
        self.headers = headers


class Realtime:
    """The gate in front of :meth:`Engine.message`. Thread-safe."""

    def __init__(self, config: SimConfig, clock: SimClock, engine: Engine) -> None:
        self.config = config
        self.clock = clock
        self.engine = engine
        self.buckets = Buckets(config.rate_limits)
        self.threads = Threads()
        self._lock = threading.Lock()
        self._spent = 0.0
        self._answered = 0
        self._calls = itertools.count()
        bursts = config.faults.overloaded_bursts
        self._burst_offset = 0.0
        if bursts is not None:
            period, length = bursts
            self._burst_offset = request_draw(config.seed, "bursts", "overloaded") * (period - length)

    # ------------------------------------------------------------------ the call

    def answer(self, params: Any, version: str) -> tuple[Message, dict[str, str], float]:
        """Answer ``params``: ``(message, headers, wall seconds to sleep before responding)``.

        Raises:
            Refused: a burst, the spend limit, the output cap or a rate limit.
            ApiError: the params are invalid (the caller adds :meth:`headers`).
        """
        engine = self.engine
        now = self.clock.timestamp()
        if self._in_burst(now):
            engine.count_fault("overloaded_burst")
            raise Refused(529, {"type": "overloaded_error", "message": "Overloaded"}, {})
        self._check_spend(now)
        try:
            params = self.threads.expand(params)
        except ThreadNotFound as exc:
            raise Refused(
                exc.status,
                {"type": exc.type, "message": exc.message, "details": exc.details},
                self.buckets.headers(now),
            ) from None
        analysis = engine.analyze_message(params, version)
        problem = engine.output_caps.problem(params["model"], params["max_tokens"], beta=False, in_batch=False)
        if problem is not None:
            raise ApiError(400, "invalid_request_error", problem)
        reserved = analysis.input_tokens
        refusal = self.buckets.admit(now, reserved)
        if refusal is not None:
            engine.count_fault("rate_limit")
            headers = self.buckets.headers(now)
            if refusal.never:
                headers["x-should-retry"] = "false"
            else:
                headers["retry-after"] = f"{max(self.clock.wall_seconds(refusal.sim_wait), 0.001):.3f}"
            raise Refused(429, {"type": "rate_limit_error", "message": refusal.message}, headers)
        try:
            message = engine.message(params, version, analysis)
        except BaseException:
            self.buckets.release(now, reserved)
            raise
        self.threads.keep(params, message.id, message.content)
        usage = message.usage
        counted = usage.input_tokens + usage.cache_creation_input_tokens
        done = self.clock.timestamp()
        self.buckets.settle(done, reserved, counted, usage.output_tokens)
        self._meter(message)
        u = request_draw(self.config.seed, "latency", str(next(self._calls)))
        sim_seconds = self.config.latency.seconds(usage.output_tokens, u)
        return message, self.buckets.headers(done), self.clock.wall_seconds(sim_seconds)

    def headers(self) -> dict[str, str]:
        """The rate-limit headers as of now."""
        return self.buckets.headers(self.clock.timestamp())

    # ------------------------------------------------------------------ bursts, spend

    def _in_burst(self, now: float) -> bool:
        bursts = self.config.faults.overloaded_bursts
        if bursts is None:
            return False
        period, length = bursts
        phase = math.fmod(now, period) - self._burst_offset
        return 0.0 <= phase < length

    def _check_spend(self, now: float) -> None:
        limit = self.config.spend_limit
        if limit is None:
            return
        with self._lock:
            over = (limit.dollars is not None and self._spent >= limit.dollars) or (
                limit.requests is not None and self._answered >= limit.requests
            )
        if not over:
            return
        self.engine.count_fault("spend_limit")
        day = dt.datetime.fromtimestamp(now, dt.UTC)
        first = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        when = rfc3339(first.timestamp())
        if limit.kind == "workspace":
            raise Refused(
                400,
                {
                    "type": "invalid_request_error",
                    "message": "You have reached your specified workspace API usage limits. You will "
                    f"regain access on {when[:10]} at 00:00 UTC.",
                },
                self.headers(),
            )
        headers = self.headers()
        headers["x-should-retry"] = "false"
        raise Refused(
            429,
            {
                "type": "rate_limit_error",
                "message": "Your organization has reached its monthly spend limit; requests are refused "
                f"until {when}. Raise the limit in the Console (Settings > Limits) to go on.",
                "details": {"error_code": "enforced_spend_limit_reached"},
            },
            headers,
        )

    def _meter(self, message: Message) -> None:
        if self.config.spend_limit is None:
            return
        u = message.usage
        price_in, price_out = self.config.prices(message.model)
        cache = u.cache_creation
        dollars = (
            u.input_tokens * price_in
            + cache.ephemeral_5m_input_tokens * price_in * 1.25
            + cache.ephemeral_1h_input_tokens * price_in * 2.0
            + u.cache_read_input_tokens * price_in * 0.1
            + u.output_tokens * price_out
        ) / 1e6
        with self._lock:
            self._spent += dollars
            self._answered += 1

    def spent(self) -> tuple[float, int]:
        """``(dollars, answers)`` metered so far."""
        with self._lock:
            return self._spent, self._answered
