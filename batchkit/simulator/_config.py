"""Configuration of the simulator: :class:`SimConfig`, :class:`Processing` and :class:`Faults`.

All three are small frozen dataclasses with named defaults, so a configuration can be shared
between tests, printed, and turned into command-line flags (:func:`batchkit.simulator.spawn`
does exactly that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "DEFAULT_MIN_CACHEABLE",
    "DEFAULT_MIN_CACHEABLE_OTHER",
    "ENDPOINT_KINDS",
    "Faults",
    "Processing",
    "ScheduleEntry",
    "SimConfig",
]

#: Every endpoint kind the simulator counts in its stats, with the route it answers.
#: A fault schedule names its target by either form (``"batches.create"`` or
#: ``"POST /v1/messages/batches"``).
ENDPOINT_KINDS: dict[str, str] = {
    "batches.create": "POST /v1/messages/batches",
    "batches.list": "GET /v1/messages/batches",
    "batches.retrieve": "GET /v1/messages/batches/{id}",
    "batches.cancel": "POST /v1/messages/batches/{id}/cancel",
    "batches.delete": "DELETE /v1/messages/batches/{id}",
    "batches.results": "GET /v1/messages/batches/{id}/results",
    "messages.create": "POST /v1/messages",
    "messages.count_tokens": "POST /v1/messages/count_tokens",
    "models.list": "GET /v1/models",
    "models.retrieve": "GET /v1/models/{id}",
}

#: Minimum cacheable prompt length (tokens) per model id prefix, from the reference's §14.
#: The longest matching prefix wins; ids matching none use :data:`DEFAULT_MIN_CACHEABLE_OTHER`.
DEFAULT_MIN_CACHEABLE: dict[str, int] = {
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-7": 4096,
    "claude-opus-4-8": 4096,
    "claude-haiku-4-5": 4096,
    "claude-fable-5": 2048,
    "claude-sonnet-4-6": 2048,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4-0": 1024,
    "claude-opus-4-2025": 1024,
    "claude-3-7-sonnet": 1024,
}
DEFAULT_MIN_CACHEABLE_OTHER = 1024

#: What a scheduled fault does: an HTTP status (``429``, ``500``, ``529``, any 4xx/5xx),
#: ``"drop"`` (close the connection; mid-body for results), or ``"slow:SECONDS"``.
Action = Union[int, str]  # noqa: UP007 (a runtime alias; X | Y needs 3.10 at runtime too)
#: ``(target, nth, action)``: the ``nth`` call (1-based; an int or an iterable of ints) of
#: endpoint ``target`` (a kind such as ``"batches.results"``, its route such as
#: ``"GET /v1/messages/batches/{id}/results"``, or ``"*"`` for any API call) gets ``action``.
ScheduleEntry = tuple[str, int | Iterable[int], Action]


@dataclass(frozen=True)
class Processing:
    """How fast batches are worked through, on the simulated clock.

    Request ``i`` (0-based, in the order sent) of a batch created at ``t0`` starts at
    ``t0 + fixed_latency + (i // concurrency) * per_request`` and finishes ``per_request``
    later; the batch ends when its last request finishes (or at ``expires_at``). The default
    ends a batch of 300 requests 2.5 s after creation and one of 100,000 after about 8 minutes.

    Attributes:
        fixed_latency: simulated seconds from create until the first requests start.
        per_request: simulated seconds each request takes.
        concurrency: requests of one batch processed at the same time.
        cancel_latency: simulated seconds a cancel takes to settle (the batch shows
            ``canceling`` meanwhile) when no request is in flight.
    """

    fixed_latency: float = 1.0
    per_request: float = 0.5
    concurrency: int = 100
    cancel_latency: float = 0.5

    def __post_init__(self) -> None:
        if self.fixed_latency < 0 or self.per_request < 0 or self.cancel_latency < 0:
            raise ValueError("Processing times must be >= 0")
        if self.concurrency < 1:
            raise ValueError("Processing.concurrency must be >= 1")

    @classmethod
    def instant(cls) -> Processing:
        """Every batch ends the moment after it is created (for benchmarks and fast tests)."""
        return cls(fixed_latency=0.0, per_request=0.0, concurrency=1 << 40, cancel_latency=0.0)


@dataclass(frozen=True)
class Faults:
    """Injected failures, by rate or by schedule, reproducible from ``SimConfig.seed``.

    Per-request result faults (``errored_rate``, ``expired_rate``) draw from a hash of
    ``(seed, batch id, custom_id)``, so the same batch replays identically and a retry of a
    ``custom_id`` in a new batch draws again. HTTP faults (``http_error_rate``,
    ``drop_results_rate``) draw from one PRNG seeded by ``seed`` in call order.

    Attributes:
        errored_rate: error type → share of batch requests that come back ``errored`` with
            it (``api_error``, ``overloaded_error``, ``invalid_request_error``).
        expired_rate: share of batch requests that come back ``expired``. These do not
            hold the batch open for 24 h (a genuine expiry does).
        http_error_rate: HTTP status → share of API calls answered with that error
            (429 ``rate_limit_error``, 500 ``api_error``, 529 ``overloaded_error``, …).
        drop_results_rate: share of results downloads whose connection drops mid-body.
        slow: wall seconds every API response is delayed by.
        rpm: requests per minute allowed on ``POST /v1/messages`` (token bucket on the
            simulated clock); over it → 429 with ``retry-after``.
        tpm: input tokens per minute allowed on ``POST /v1/messages``.
        retry_after: ``retry-after`` seconds sent with injected 429/500/529 responses (the
            SDK sleeps exactly this long; keep it tiny). ``None`` omits the header.
        schedule: ``(target, nth, action)`` entries; see :data:`ScheduleEntry`.
    """

    errored_rate: Mapping[str, float] = field(default_factory=dict)
    expired_rate: float = 0.0
    http_error_rate: Mapping[int, float] = field(default_factory=dict)
    drop_results_rate: float = 0.0
    slow: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    retry_after: float | None = 0.05
    schedule: tuple[ScheduleEntry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "errored_rate", dict(self.errored_rate))
        object.__setattr__(self, "http_error_rate",
                           {int(k): float(v) for k, v in self.http_error_rate.items()})
        object.__setattr__(self, "schedule", tuple(self.schedule))
        allowed = {"api_error", "overloaded_error", "invalid_request_error"}
        unknown = set(self.errored_rate) - allowed
        if unknown:
            raise ValueError(f"errored_rate types must be among {sorted(allowed)}, got {sorted(unknown)}")
        if sum(self.errored_rate.values()) + self.expired_rate > 1.0:
            raise ValueError("errored_rate and expired_rate add up to more than 1")
        if sum(self.http_error_rate.values()) > 1.0:
            raise ValueError("http_error_rate adds up to more than 1")
        for status in self.http_error_rate:
            if not 400 <= status <= 599:
                raise ValueError(f"http_error_rate status must be 4xx or 5xx, got {status}")
        if self.retry_after is not None and self.retry_after <= 0:
            raise ValueError("retry_after must be > 0 (or None to omit the header)")
        for entry in self.schedule:
            _check_schedule_entry(entry)

    @property
    def any_request_faults(self) -> bool:
        return bool(self.expired_rate) or any(self.errored_rate.values())


def _check_schedule_entry(entry: ScheduleEntry) -> None:
    if len(entry) != 3:
        raise ValueError(f"a schedule entry is (target, nth, action), got {entry!r}")
    target, _nth, action = entry
    if target != "*" and target not in ENDPOINT_KINDS and target not in ENDPOINT_KINDS.values():
        raise ValueError(
            f"unknown schedule target {target!r}; use '*', a kind ({', '.join(ENDPOINT_KINDS)}) "
            "or its route"
        )
    if isinstance(action, bool):
        raise TypeError(f"bad schedule action {action!r}")
    if isinstance(action, int):
        if not 400 <= action <= 599:
            raise ValueError(f"scheduled status must be 4xx or 5xx, got {action}")
    elif action != "drop" and not (isinstance(action, str) and action.startswith("slow:")):
        raise ValueError(f"schedule action must be a status, 'drop' or 'slow:SECONDS', got {action!r}")
    elif isinstance(action, str) and action.startswith("slow:"):
        float(action[5:])


@dataclass(frozen=True)
class SimConfig:
    """Everything about one simulator instance except its responder.

    Attributes:
        time_scale: simulated seconds per wall second (3600 → an hour per second).
        start_time: simulated clock at start, as a Unix timestamp; ``None`` → the wall clock.
        seed: seeds ids and fault draws.
        processing: how fast batches proceed (:class:`Processing`).
        faults: injected failures (:class:`Faults`).
        api_keys: accepted keys; ``None`` accepts any non-empty key.
        reject_sampling_params: reject ``temperature``/``top_p``/``top_k`` on API version
            ``2026-10-21`` (as the real API does).
        cache_miss_rate: extra share of cache lookups that miss although a prefix is cached.
        min_cacheable_tokens: model id prefix → minimum cacheable prefix length, replacing
            :data:`DEFAULT_MIN_CACHEABLE` where given.
        models: model ids the simulator serves; ``None`` → its built-in catalogue.
        max_batch_body_bytes: create bodies above this get 413 (256 MB = 256,000,000 bytes).
        max_message_body_bytes: ``/v1/messages`` and ``count_tokens`` bodies above this get 413.
        max_requests_per_batch: more requests than this in one create → 400.
        expiry_seconds: simulated seconds from create to ``expires_at`` (24 h).
        archive_seconds: simulated seconds from create until results are archived (29 days).
    """

    time_scale: float = 1.0
    start_time: float | None = None
    seed: int = 0
    processing: Processing = field(default_factory=Processing)
    faults: Faults = field(default_factory=Faults)
    api_keys: frozenset[str] | None = None
    reject_sampling_params: bool = True
    cache_miss_rate: float = 0.0
    min_cacheable_tokens: Mapping[str, int] = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    max_batch_body_bytes: int = 256_000_000
    max_message_body_bytes: int = 32_000_000
    max_requests_per_batch: int = 100_000
    expiry_seconds: float = 24 * 3600.0
    archive_seconds: float = 29 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if not 0.0 <= self.cache_miss_rate <= 1.0:
            raise ValueError("cache_miss_rate must be within [0, 1]")
        if self.api_keys is not None:
            object.__setattr__(self, "api_keys", frozenset(self.api_keys))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "min_cacheable_tokens", dict(self.min_cacheable_tokens))

    def min_cacheable(self, model: str) -> int:
        """The minimum cacheable prefix length for ``model`` (longest matching id prefix)."""
        table = {**DEFAULT_MIN_CACHEABLE, **self.min_cacheable_tokens}
        best = None
        for prefix, tokens in table.items():
            if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, tokens)
        return best[1] if best else DEFAULT_MIN_CACHEABLE_OTHER
