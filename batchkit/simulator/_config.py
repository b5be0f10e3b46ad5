"""Configuration of the simulator: :class:`SimConfig`, :class:`Processing`, :class:`Faults`, and
for ``POST /v1/messages`` :class:`Latency`, :class:`RateLimits` and :class:`SpendLimit`.

All are small frozen dataclasses with named defaults, so a configuration can be shared
between tests, printed, and turned into command-line flags (:func:`batchkit.simulator.spawn`
does exactly that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Union

__all__ = [
    "DEFAULT_MIN_CACHEABLE",
    "DEFAULT_MIN_CACHEABLE_OTHER",
    "DEFAULT_PRICES",
    "ENDPOINT_KINDS",
    "OUTPUT_300K_BETA",
    "OUTPUT_300K_MODELS",
    "OUTPUT_300K_TOKENS",
    "Faults",
    "Latency",
    "Processing",
    "RateLimits",
    "ScheduleEntry",
    "SimConfig",
    "SpendLimit",
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

#: The beta that raises ``max_tokens`` to :data:`OUTPUT_300K_TOKENS` on the Batches API only.
OUTPUT_300K_BETA = "output-300k-2026-03-24"
OUTPUT_300K_TOKENS = 300_000
#: Model ids the 300K-output beta covers (the reference's §16: Opus 4.6, 4.7, 4.8, 5, 5.5;
#: Sonnet 4.6, 5 — not Haiku, not Sonnet <= 4.5 or 5.5, not Fable/Mythos), each also with a
#: ``-YYYYMMDD`` / ``-latest`` suffix. ``SimConfig(output_300k_models=...)`` replaces the list.
OUTPUT_300K_MODELS: tuple[str, ...] = (
    "claude-opus-4-6",
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-opus-5",
    "claude-opus-5-5",
    "claude-sonnet-4-6",
    "claude-sonnet-5",
)

#: Standard (not batch) USD per million input / output tokens, by model id prefix (longest
#: match wins; the reference's §13), used only to meter a :class:`SpendLimit`. Cache writes
#: cost 1.25× (5 minutes) or 2× (1 hour) input, cache reads 0.1×.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    "claude-sonnet": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-opus": (5.0, 25.0),
    "claude-opus-4-0": (15.0, 75.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4-2025": (15.0, 75.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-fable": (10.0, 50.0),
    "claude-mythos": (10.0, 50.0),
}
_PRICE_OTHER = (3.0, 15.0)
_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")

#: What a scheduled fault does: an HTTP status (``429``, ``500``, ``529``, any 4xx/5xx),
#: ``"drop"`` (close the connection; mid-body for results), ``"lose"`` (do the call — answer
#: and charge a message — then close the connection before the response: the answer is lost
#: on the way back), ``"slow:SECONDS"``, or ``"midstream:STATUS"`` (a streamed
#: ``/v1/messages`` answer starts, then fails with an ``error`` event of that status's type;
#: anything else gets the status).
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
        rpm: shorthand for ``RateLimits.requests_per_minute`` (it replaces that value).
        tpm: shorthand for ``RateLimits.input_tokens_per_minute`` (it replaces that value).
        overloaded_bursts: ``(period, length)`` in simulated seconds: in every ``period``, a
            window of ``length`` seconds (at an offset drawn from the seed) answers
            ``POST /v1/messages`` with 529 ``overloaded_error`` (no ``retry-after``), as load
            across all users does. ``None``: no bursts. (Single 529s by rate or schedule:
            ``http_error_rate={529: …}``, ``schedule``.)
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
    overloaded_bursts: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.overloaded_bursts is not None:
            period, length = (float(x) for x in self.overloaded_bursts)
            if period <= 0 or not 0 <= length <= period:
                raise ValueError(
                    "overloaded_bursts is (period, length) with period > 0 and "
                    "0 <= length <= period (simulated seconds)"
                )
            object.__setattr__(self, "overloaded_bursts", (period, length))
        object.__setattr__(self, "errored_rate", dict(self.errored_rate))
        object.__setattr__(self, "http_error_rate", {int(k): float(v) for k, v in self.http_error_rate.items()})
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
            f"unknown schedule target {target!r}; use '*', a kind ({', '.join(ENDPOINT_KINDS)}) or its route"
        )
    if isinstance(action, bool):
        raise TypeError(f"bad schedule action {action!r}")
    if isinstance(action, int):
        if not 400 <= action <= 599:
            raise ValueError(f"scheduled status must be 4xx or 5xx, got {action}")
    elif action not in ("drop", "lose") and not (
        isinstance(action, str) and action.startswith(("slow:", "midstream:"))
    ):
        raise ValueError(
            f"schedule action must be a status, 'drop', 'lose', 'slow:SECONDS' or 'midstream:STATUS', got {action!r}"
        )
    elif isinstance(action, str) and action.startswith("slow:"):
        float(action[5:])
    elif isinstance(action, str) and action.startswith("midstream:"):
        status = action[10:]
        if not (status.isdigit() and 400 <= int(status) <= 599):
            raise ValueError(f"a midstream status must be 4xx or 5xx, got {action!r}")


@dataclass(frozen=True)
class Latency:
    """How long ``POST /v1/messages`` takes to answer, on the simulated clock.

    An answer of ``n`` output tokens takes ``first_token + n * per_output_token`` simulated
    seconds, times a factor drawn in ``[1 - jitter, 1 + jitter]`` from the seed and the
    request. The simulator sleeps that long (divided by ``time_scale``) after answering and
    before responding, each request in its own thread, so concurrent requests overlap as they
    do on the API. The default answers at once.

    Attributes:
        first_token: simulated seconds to the first token.
        per_output_token: simulated seconds per output token.
        jitter: relative spread of each request's latency, in [0, 1).
    """

    first_token: float = 0.0
    per_output_token: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.first_token < 0 or self.per_output_token < 0:
            raise ValueError("Latency times must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("Latency.jitter must be within [0, 1)")

    @classmethod
    def typical(cls) -> Latency:
        """About what the API takes: 0.6 s to the first token, then 80 tokens per second."""
        return cls(first_token=0.6, per_output_token=0.0125, jitter=0.25)

    def seconds(self, output_tokens: int, u: float = 0.5) -> float:
        """Simulated seconds for an answer of ``output_tokens``; ``u`` in [0, 1) picks the jitter."""
        base = self.first_token + output_tokens * self.per_output_token
        return base * (1.0 + self.jitter * (2.0 * u - 1.0))


@dataclass(frozen=True)
class RateLimits:
    """Per-minute limits on ``POST /v1/messages``, one rate-limit group for every model.

    Each limit is a token bucket on the simulated clock holding one minute's worth and
    refilling continuously. A request is admitted when a request is left and the input bucket
    holds its estimated input tokens (reserved), and the output bucket is not empty; once
    answered, the input reserved is settled to what counts (``input_tokens`` +
    ``cache_creation_input_tokens``; cache reads do not count) and the output tokens produced
    are taken (the output bucket may go below zero, delaying later requests). Over a limit:
    429 ``rate_limit_error`` with ``retry-after`` (seconds to wait, in wall time); a request
    whose input alone exceeds the input limit gets 429 with ``x-should-retry: false``.
    Every ``/v1/messages`` response carries ``anthropic-ratelimit-{requests,input-tokens,
    output-tokens,tokens}-{limit,remaining,reset}``; ``reset`` is the RFC 3339 time the bucket
    is full again. ``None`` turns a limit off (and its headers).

    The defaults are generous (figures in the range the docs give for an established
    organisation), so nothing but a deliberate test meets them.

    Attributes:
        requests_per_minute: requests per minute.
        input_tokens_per_minute: input tokens per minute (uncached input + cache writes).
        output_tokens_per_minute: output tokens per minute (as produced).
    """

    requests_per_minute: int | None = 4_000
    input_tokens_per_minute: int | None = 2_000_000
    output_tokens_per_minute: int | None = 400_000

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"RateLimits.{name} must be >= 1 (or None for no limit)")

    @classmethod
    def off(cls) -> RateLimits:
        """No limits at all (and no rate-limit headers)."""
        return cls(None, None, None)


@dataclass(frozen=True)
class SpendLimit:
    """A spend limit that refuses ``POST /v1/messages`` once reached.

    Spend is metered on ``/v1/messages`` answers at standard prices (:data:`DEFAULT_PRICES`);
    batches are not metered (the API lets them overshoot a limit slightly). Once ``dollars``
    have been spent or ``requests`` answered, every further call is refused:

    - ``kind="monthly"`` (the organisation's monthly spend cap): 429 ``rate_limit_error``
      **without** ``retry-after``, ``x-should-retry: false``, and
      ``error.details.error_code = "enforced_spend_limit_reached"`` (the SDK raises
      ``anthropic.EnforcedSpendLimitReachedError``); it lifts on the 1st of next month.
    - ``kind="workspace"`` (a user-set workspace limit): 400 ``invalid_request_error``
      "You have reached your specified workspace API usage limits. …".

    Attributes:
        dollars: budget in USD; ``None``: no dollar budget.
        requests: number of answers allowed; ``None``: no request budget.
        kind: ``"monthly"`` or ``"workspace"``.
    """

    dollars: float | None = None
    requests: int | None = None
    kind: Literal["monthly", "workspace"] = "monthly"

    def __post_init__(self) -> None:
        if self.kind not in ("monthly", "workspace"):
            raise ValueError(f"SpendLimit.kind must be 'monthly' or 'workspace', got {self.kind!r}")
        if self.dollars is not None and self.dollars < 0:
            raise ValueError("SpendLimit.dollars must be >= 0")
        if self.requests is not None and self.requests < 0:
            raise ValueError("SpendLimit.requests must be >= 0")


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
        latency: how long ``/v1/messages`` takes (:class:`Latency`; default: at once).
        rate_limits: per-minute limits on ``/v1/messages`` (:class:`RateLimits`).
        spend_limit: a spend limit on ``/v1/messages`` (:class:`SpendLimit`); ``None``: none.
        max_queued_batch_requests: the workspace's limit on batch requests waiting in the
            processing queue (not yet finished); a create that would go over it is refused
            with 429 ``rate_limit_error`` and a ``retry-after`` until there is room (at most
            60 s). ``None``: no limit.
        output_300k_models: model ids the ``output-300k-2026-03-24`` beta covers
            (:data:`OUTPUT_300K_MODELS`).
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
    latency: Latency = field(default_factory=Latency)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    spend_limit: SpendLimit | None = None
    max_queued_batch_requests: int | None = None
    output_300k_models: tuple[str, ...] = OUTPUT_300K_MODELS

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if self.max_queued_batch_requests is not None and self.max_queued_batch_requests < 1:
            raise ValueError("max_queued_batch_requests must be >= 1 (or None for no limit)")
        object.__setattr__(self, "output_300k_models", tuple(self.output_300k_models))
        if self.faults.rpm is not None or self.faults.tpm is not None:  # the older shorthands win
            limits = self.rate_limits
            object.__setattr__(
                self,
                "rate_limits",
                RateLimits(
                    limits.requests_per_minute if self.faults.rpm is None else self.faults.rpm,
                    limits.input_tokens_per_minute if self.faults.tpm is None else self.faults.tpm,
                    limits.output_tokens_per_minute,
                ),
            )
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

    def covered_by_300k(self, model: str) -> bool:
        """Whether the ``output-300k-2026-03-24`` beta covers ``model`` (an id in the list,
        optionally with a ``-YYYYMMDD`` / ``-latest`` suffix)."""
        return model in self.output_300k_models or _SUFFIX.sub("", model) in self.output_300k_models

    def prices(self, model: str) -> tuple[float, float]:
        """Standard USD per million input / output tokens for ``model`` (longest id prefix)."""
        best = max((p for p in DEFAULT_PRICES if model.startswith(p)), key=len, default=None)
        return DEFAULT_PRICES[best] if best else _PRICE_OTHER
