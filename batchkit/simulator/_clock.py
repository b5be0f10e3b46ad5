"""The simulated clock, ids and timestamps."""

from __future__ import annotations

import math
import os
import random
import threading
import time
from datetime import UTC, datetime

__all__ = ["IdFactory", "SimClock", "rfc3339"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_AHEAD = 1024
"""Id characters drawn at a time (:meth:`IdFactory.token`)."""

LATEST = 253_370_764_800.0
"""9999-01-01T00:00:00Z: the clock never passes it, so every timestamp the simulator writes
(a batch's expiry a day later, its archive 29 days after that) is still a valid RFC 3339 time."""
_EARLIEST = -62_135_596_800.0  # 0001-01-01T00:00:00Z


class SimClock:
    """A clock that runs ``time_scale`` times faster than the wall clock and can be advanced.

    Simulated time = ``start + wall seconds elapsed × time_scale + seconds advanced``. It
    never runs backwards.

    >>> clock = SimClock(time_scale=3600, start=0.0)
    >>> clock.advance(86400)
    >>> clock.now().day >= 2
    True
    """

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        _check_scale(time_scale)
        if start is not None and not (isinstance(start, (int, float)) and _EARLIEST <= start <= LATEST):
            raise ValueError(f"start must be a Unix timestamp from year 1 to 9999, not {start!r}")
        self._lock = threading.Lock()
        self._wall0 = time.monotonic()
        self._sim0 = time.time() if start is None else float(start)
        self._scale = float(time_scale)
        self._last = self._sim0

    @property
    def time_scale(self) -> float:
        """Simulated seconds per wall second."""
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        _check_scale(value)
        with self._lock:
            self._sim0 = self._now_unlocked()
            self._wall0 = time.monotonic()
            self._scale = float(value)

    def _now_unlocked(self) -> float:
        t = self._sim0 + (time.monotonic() - self._wall0) * self._scale
        t = min(max(t, self._last), LATEST)  # float noise after a re-base must not move time backwards
        self._last = t
        return t

    def timestamp(self) -> float:
        """Simulated now as a Unix timestamp."""
        with self._lock:
            return self._now_unlocked()

    def now(self) -> datetime:
        """Simulated now as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward by ``seconds`` (never backwards).

        Raises:
            ValueError: ``seconds`` is negative, not a finite number, or would take the clock
                past :data:`LATEST`. The clock is left as it was.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"must be a number of seconds, not {type(seconds).__name__}")
        try:
            seconds = float(seconds)
        except OverflowError:  # an int with hundreds of digits
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ValueError(f"must be a finite number of seconds, not {seconds}")
        if seconds < 0:
            raise ValueError(f"the clock only moves forward: must be >= 0, not {seconds:g}")
        with self._lock:
            room = LATEST - self._now_unlocked()
            if seconds > room:
                raise ValueError(
                    f"{seconds:g} s would take the clock past 9999-01-01; at most {room:.0f} s more can be advanced"
                )
            self._sim0 += seconds

    def wall_seconds(self, sim_seconds: float) -> float:
        """How many wall seconds ``sim_seconds`` of simulated time take."""
        return sim_seconds / self._scale


def _check_scale(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise ValueError(f"time_scale must be a finite number > 0, not {value!r}")


def rfc3339(ts: float) -> str:
    """Unix timestamp → RFC 3339 with microseconds and ``Z``, as the API writes them.

    The same text as ``datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")``
    (microseconds rounded half to even, as ``fromtimestamp`` rounds them), but the date and
    time of day are formatted once per second: a realtime answer writes three of these in its
    rate-limit headers, and ``strftime`` was most of their cost.
    """
    global _second
    if not 0.0 <= ts < LATEST:  # before 1970 (and nan, inf): as datetime writes it
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole += 1.0
        micros -= 1_000_000
    second, prefix = _second
    if second != whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second = (whole, prefix)
    return f"{prefix}{micros:06d}Z"


_second: tuple[float, str] = (-1.0, "")
"""The last second :func:`rfc3339` formatted, and its text up to the microseconds (one tuple,
read and replaced whole, so that threads never pair one second with another's text)."""


class IdFactory:
    """Ids shaped like the API's: ``msgbatch_`` + 24 base62 characters, and so on.

    Ids are unique across simulator instances, as the API's are across its life: a client that
    keeps a store of batch ids (batchkit does) must not see a restarted simulator hand out the
    same ids again. So the PRNG is seeded by the simulator's seed *and* a random nonce; what
    must repeat for a seed (fault draws) depends on a batch's place in creation order instead.
    Message and tool-use ids inside a batch are the batch's own random stem plus the request's
    index, which is cheap at a million requests and still unique.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}:{os.urandom(8).hex()}")
        self._lock = threading.Lock()
        self._drawn = ""  # characters drawn ahead, used in order
        self._at = 0

    def token(self, n: int = 24) -> str:
        """``n`` base62 characters. They are drawn :data:`_AHEAD` at a time: each character is
        one draw of the PRNG whatever ``n`` is, so the ids are the ones drawn one id at a time,
        for a fraction of the cost (a realtime answer takes two)."""
        with self._lock:
            at, end = self._at, self._at + n
            if end > len(self._drawn):
                self._drawn = self._drawn[at:] + "".join(self._rng.choices(_BASE62, k=max(n, _AHEAD)))
                at, end = 0, n
            self._at = end
            return self._drawn[at:end]

    def batch_id(self) -> str:
        return "msgbatch_01" + self.token(22)

    def request_id(self) -> str:
        return "req_01" + self.token(22)
