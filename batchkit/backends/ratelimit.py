"""Client-side rate limiting for realtime calls: honour the limits instead of discovering them.

Pure (no I/O, no threads, no sleeping): the caller asks :meth:`Governor.acquire` whether a
request may go now, sleeps for the wait it gets back, and reports what happened. Time comes
from an injected clock, so everything here is tested with a fake one.

What it does, and why (each point is something bulk clients learned the hard way):

- **Buckets per rate-limit group**, not per model id: families share one set of limits (the
  Opus 4.x line; Sonnet 4.5 and 4.6), see :func:`~.limits.rate_limit_group`. Each group has three
  continuously refilling buckets — requests, input tokens, output tokens per minute.
- **Reserve before sending** one request, its input tokens and its *expected* output (what
  answers in this group have produced so far, never more than ``max_tokens``: the API counts
  output as produced, so reserving ``max_tokens`` would waste most of the limit), then
  **reconcile** with the usage that came back (:meth:`Governor.release`).
- **Re-sync from the response headers** (``anthropic-ratelimit-*``): the limits are learned
  from ``*-limit``, and ``*-remaining`` lowers the local level when the server saw more use
  than we did (another process on the same key). A limit the headers never gave keeps the
  configured fallback (:class:`~.limits.Limits`).
- **A 429 pauses everyone** until its ``retry-after`` (no worker keeps hammering), and halves
  the concurrency.
- **A 529 backs off globally** (0.5 s doubling to 16 s while they continue) but leaves the rate
  estimate alone: overload is everyone's load, not a sign we asked for too much.
- **Gentle start, additive growth**: a few requests in flight at first, one more per answer
  while free of 429s (up to ``max_concurrency``), so a cold start does not trip the API's
  acceleration limits.

The groups, the :class:`~.limits.Limits` of one, and what runs learned of them in this process
are :mod:`.limits`' (the part the engine reads).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .limits import Limits

__all__ = [
    "Bucket",
    "Governor",
    "Reservation",
    "parse_rate_limit_headers",
]


class Bucket:
    """A token bucket holding one minute's worth of a per-minute limit, refilling continuously.

    The level may go below zero (a reconciliation found more use than reserved); the bucket
    then refills from there.
    """

    __slots__ = ("at", "capacity", "level")

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.at = now

    def refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.capacity, self.level + (now - self.at) * self.capacity / 60.0)
            self.at = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` fits (an amount above capacity waits for a full bucket)."""
        self.refill(now)
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) * 60.0 / self.capacity

    def resize(self, per_minute: float, now: float) -> None:
        self.refill(now)
        self.level += float(per_minute) - self.capacity  # keep what was used
        self.capacity = float(per_minute)


@dataclass
class Reservation:
    """What one request took from its group's buckets before it was sent."""

    group: str
    input_tokens: int
    output_tokens: int


@dataclass
class _Group:
    buckets: list[Bucket | None]
    output_seen: float = 0.0
    answers: int = 0
    reserved: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """What the requests now in flight reserved (requests, input, output)."""


_KINDS = ("requests", "input-tokens", "output-tokens")


def parse_rate_limit_headers(headers: Mapping[str, str]) -> dict[str, tuple[float | None, float | None]]:
    """``{"requests" | "input-tokens" | "output-tokens": (limit, remaining)}`` from a response.

    Missing or unreadable values are ``None``; kinds with neither are left out.
    """
    out: dict[str, tuple[float | None, float | None]] = {}
    for kind in _KINDS:
        limit = _number(headers.get(f"anthropic-ratelimit-{kind}-limit"))
        remaining = _number(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
        if limit is not None or remaining is not None:
            out[kind] = (limit, remaining)
    return out


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@dataclass
class Governor:
    """Decides when the next realtime request may go. Not thread-safe: drive it from one
    thread (the sender's event loop).

    Args:
        fallback: limits assumed for a group until its responses' headers give them.
        clock: seconds, monotonic (tests pass a fake).
        initial_concurrency: requests in flight at the start.
        max_concurrency: never more in flight than this.
    """

    fallback: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    initial_concurrency: int = 4
    max_concurrency: int = 256
    concurrency: float = field(init=False)
    in_flight: int = field(init=False, default=0)
    paused_until: float = field(init=False, default=0.0)
    rate_limited: int = field(init=False, default=0)
    overloaded: int = field(init=False, default=0)
    _streak_529: int = field(init=False, default=0)
    _cut_until: float = field(init=False, default=0.0)
    _slow_start: bool = field(init=False, default=True)
    _groups: dict[str, _Group] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.initial_concurrency <= self.max_concurrency:
            raise ValueError("need 1 <= initial_concurrency <= max_concurrency")
        self.concurrency = float(self.initial_concurrency)

    # ------------------------------------------------------------------ before sending

    def expected_output(self, group: str, max_tokens: int) -> int:
        """Output tokens to reserve: the mean produced so far in ``group`` (+10%), at most
        ``max_tokens``; before any answer, ``max_tokens`` up to 1,024."""
        g = self._groups.get(group)
        if g is None or not g.answers:
            return min(max_tokens, 1024)
        return max(1, min(max_tokens, math.ceil(1.1 * g.output_seen / g.answers)))

    def acquire(self, group: str, input_tokens: int, max_tokens: int) -> Reservation | float:
        """A :class:`Reservation` if the request may go now, else the seconds to wait first."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        if self.in_flight >= int(self.concurrency):
            return 0.0  # wait for an answer (the caller waits on its own completion signal)
        g = self._group(group, now)
        expected = self.expected_output(group, max_tokens)
        amounts = (1.0, float(input_tokens), float(expected))
        wait = max((b.wait(a, now) for b, a in zip(g.buckets, amounts, strict=True) if b is not None), default=0.0)
        if wait > 0:
            return wait
        for i, (bucket, amount) in enumerate(zip(g.buckets, amounts, strict=True)):
            g.reserved[i] += amount
            if bucket is not None:
                bucket.level -= amount
        self.in_flight += 1
        return Reservation(group, input_tokens, expected)

    # ------------------------------------------------------------------ after an answer

    def release(
        self,
        reservation: Reservation,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The request is done: reconcile with the tokens it counted (``None``: as reserved —
        e.g. no answer) and re-sync from the response headers."""
        self.in_flight = max(0, self.in_flight - 1)
        now = self.clock()
        g = self._group(reservation.group, now)
        for i, amount in enumerate((1.0, reservation.input_tokens, reservation.output_tokens)):
            g.reserved[i] = max(0.0, g.reserved[i] - amount)
        _, in_bucket, out_bucket = g.buckets
        if in_bucket is not None and input_tokens is not None:
            in_bucket.refill(now)
            in_bucket.level += reservation.input_tokens - input_tokens
        if output_tokens is not None:
            g.output_seen += output_tokens
            g.answers += 1
            if out_bucket is not None:
                out_bucket.refill(now)
                out_bucket.level += reservation.output_tokens - output_tokens
        if headers is not None:
            self.sync(reservation.group, headers)

    def succeeded(self) -> None:
        """An answer came back: grow the concurrency, end a 529 backoff streak."""
        self._streak_529 = 0
        step = 1.0 if self._slow_start else 1.0 / max(self.concurrency, 1.0)
        self.concurrency = min(float(self.max_concurrency), self.concurrency + step)

    def sync(self, group: str, headers: Mapping[str, str]) -> None:
        """Learn limits from ``*-limit``; lower a level the server says is lower (``*-remaining``)."""
        now = self.clock()
        g = self._group(group, now)
        for i, kind in enumerate(_KINDS):
            limit, remaining = parse_rate_limit_headers(headers).get(kind, (None, None))
            bucket = g.buckets[i]
            if limit is not None and limit > 0:
                if bucket is None:  # first seen: what is in flight was sent unaccounted
                    bucket = g.buckets[i] = Bucket(limit, now)
                    bucket.level = (limit if remaining is None else min(limit, remaining)) - g.reserved[i]
                elif bucket.capacity != limit:
                    bucket.resize(limit, now)
            if bucket is not None and remaining is not None:
                bucket.refill(now)
                bucket.level = min(bucket.level, remaining)

    def rate_limited_for(
        self, retry_after: float | None, group: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """A 429: pause everyone until ``retry-after`` (1 s when absent), halve the concurrency
        (once per pause: the other requests of the same round meet the same limit)."""
        self.rate_limited += 1
        now = self.clock()
        wait = 1.0 if retry_after is None else max(0.0, retry_after)
        self.paused_until = max(self.paused_until, now + wait)
        self._slow_start = False
        if now >= self._cut_until:
            self.concurrency = max(1.0, self.concurrency / 2.0)
            self._cut_until = self.paused_until
        if group is not None and headers is not None:
            self.sync(group, headers)

    def overloaded_for(self, retry_after: float | None = None) -> float:
        """A 529: back off everyone (0.5 s doubling to 16 s while they continue, or the
        server's ``retry-after``); the rate estimate is left as it is. Returns the pause."""
        self.overloaded += 1
        wait = min(16.0, 0.5 * 2.0**self._streak_529) if retry_after is None else retry_after
        self._streak_529 += 1
        self.paused_until = max(self.paused_until, self.clock() + wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every new request for ``seconds`` (e.g. after a connection error)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    # ------------------------------------------------------------------ reading

    def groups(self) -> list[str]:
        """The rate-limit groups this governor has paced."""
        return list(self._groups)

    def limits(self, group: str) -> Limits:
        """The limits known for ``group`` (from headers, else the fallback)."""
        g = self._groups.get(group)
        if g is None:
            return self.fallback
        caps = [None if b is None else b.capacity for b in g.buckets]
        return Limits(*caps)

    def _group(self, group: str, now: float) -> _Group:
        g = self._groups.get(group)
        if g is None:
            f = self.fallback
            g = self._groups[group] = _Group(
                [
                    None if per_minute is None else Bucket(per_minute, now)
                    for per_minute in (f.requests_per_minute, f.input_tokens_per_minute, f.output_tokens_per_minute)
                ]
            )
        return g
