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
  ``("batches.results", 2, "drop")``, ``("*", [3, 4], 529)``, ``("models.list", 1, "slow:0.2")``,
  ``("messages.create", 1, "midstream:529")`` (a streamed answer fails after its 200, :mod:`._sse`).
- **bursts** — ``overloaded_bursts=(period, length)``: ``POST /v1/messages`` answers 529 during
  a window of every period, placed by the seed (see :mod:`._realtime`).

Rate limits (``rpm``/``tpm`` are shorthands for :class:`RateLimits`) live in :mod:`._ratelimit`.

``/_sim/`` control endpoints are never faulted.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from typing import Any

from ._config import ENDPOINT_KINDS, Faults

__all__ = ["FaultPlan", "request_draw"]


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
        """The fault for this call: an HTTP status, ``"drop"``, ``"slow:S"``, ``"midstream:STATUS"``,
        or ``None``."""
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
            if (
                kind == "batches.results"
                and self.faults.drop_results_rate > 0
                and self._rng.random() < self.faults.drop_results_rate
            ):
                return "drop"
        return None
