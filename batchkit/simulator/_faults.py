"""Fault injection: per-request draws, HTTP faults by rate and schedule, rate limits.

Forms (see :class:`batchkit.simulator.Faults`):

- **by rate, per batch request** — ``errored_rate`` and ``expired_rate`` draw one number from a
  hash of ``(seed, batch id, custom_id)``: the same batch replays identically, and resending a
  ``custom_id`` in a new batch draws afresh (so retries can succeed).
- **by rate, per HTTP call** — ``http_error_rate`` and ``drop_results_rate`` draw from one PRNG
  seeded with ``seed``, in call order: the same sequence of calls meets the same faults.
- **by schedule** — ``(target, nth, action)``: the nth call of an endpoint (counted since the
  simulator started, 1-based, including calls that themselves failed) gets the action. A
  scheduled fault wins over a drawn one. Example: ``("batches.create", 1, 500)``,
  ``("batches.results", 2, "drop")``, ``("*", [3, 4], 529)``, ``("models.list", 1, "slow:0.2")``.
- **limits** — ``rpm``/``tpm`` on ``POST /v1/messages``: token buckets on the simulated clock
  (capacity one minute's worth, refilled continuously); a call over either gets 429 with a
  ``retry-after`` of the wall time until it would fit.

``/_sim/`` control endpoints are never faulted.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from typing import Any

from ._config import ENDPOINT_KINDS, Faults

__all__ = ["FaultPlan", "RateLimiter", "request_draw"]


def request_draw(seed: int, batch: str, custom_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by ``(seed, batch, custom_id, salt)``.

    ``batch`` is the batch's place in creation order (``"#0"``, ``"#1"``, …), not its id: ids
    are unique per simulator instance, as the API's are, while the same seed and the same
    calls must draw the same faults.
    """
    digest = hashlib.blake2b(f"{seed}|{batch}|{custom_id}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 18446744073709551616.0


_ROUTE_TO_KIND = {route: kind for kind, route in ENDPOINT_KINDS.items()}


class FaultPlan:
    """Decides, per API call, whether to inject an HTTP-level fault."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(f"http-faults:{seed}")
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._schedule: list[tuple[str, set[int], Any]] = []
        for target, nth, action in faults.schedule:
            kind = _ROUTE_TO_KIND.get(target, target)
            nths = {nth} if isinstance(nth, int) else {int(n) for n in nth}
            self._schedule.append((kind, nths, action))
        self._error_bands: list[tuple[float, int]] = []
        acc = 0.0
        for status, rate in sorted(faults.http_error_rate.items()):
            if rate > 0:
                acc += rate
                self._error_bands.append((acc, status))

    def on_call(self, kind: str) -> Any:
        """The fault for this call: an HTTP status, ``"drop"``, ``"slow:S"``, or ``None``."""
        with self._lock:
            self._calls[kind] += 1
            self._calls["*"] += 1
            for target, nths, action in self._schedule:
                if self._calls[target] in nths and (target == kind or target == "*"):
                    return action
            if self._error_bands:
                u = self._rng.random()
                for edge, status in self._error_bands:
                    if u < edge:
                        return status
            if (kind == "batches.results" and self.faults.drop_results_rate > 0
                    and self._rng.random() < self.faults.drop_results_rate):
                return "drop"
        return None


class RateLimiter:
    """Token buckets for requests and input tokens per minute, on the simulated clock."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._lock = threading.Lock()
        self._req = float(rpm or 0)
        self._tok = float(tpm or 0)
        self._at: float | None = None

    def check(self, now: float, tokens: int) -> tuple[bool, float, dict[str, str]]:
        """Take one request and ``tokens``; → ``(allowed, sim seconds to wait, headers)``."""
        if self.rpm is None and self.tpm is None:
            return True, 0.0, {}
        with self._lock:
            if self._at is not None:
                elapsed = max(0.0, now - self._at)
                if self.rpm:
                    self._req = min(float(self.rpm), self._req + elapsed * self.rpm / 60.0)
                if self.tpm:
                    self._tok = min(float(self.tpm), self._tok + elapsed * self.tpm / 60.0)
            self._at = now
            wait = 0.0
            if self.rpm and self._req < 1.0:
                wait = max(wait, (1.0 - self._req) * 60.0 / self.rpm)
            if self.tpm:
                if tokens > self.tpm:
                    return False, float("inf"), self._headers()
                if self._tok < tokens:
                    wait = max(wait, (tokens - self._tok) * 60.0 / self.tpm)
            if wait > 0:
                return False, wait, self._headers()
            if self.rpm:
                self._req -= 1.0
            if self.tpm:
                self._tok -= tokens
            return True, 0.0, self._headers()

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.rpm:
            headers["anthropic-ratelimit-requests-limit"] = str(self.rpm)
            headers["anthropic-ratelimit-requests-remaining"] = str(int(self._req))
        if self.tpm:
            headers["anthropic-ratelimit-input-tokens-limit"] = str(self.tpm)
            headers["anthropic-ratelimit-input-tokens-remaining"] = str(int(self._tok))
        return headers
