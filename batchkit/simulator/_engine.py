"""The engine: batches, their lifecycle on the simulated clock, the prompt cache, and stats.

Processing model (a discrete-event simulation on the simulated clock):

- A batch created at ``t0`` with ``n`` requests is worked through in waves of
  ``Processing.concurrency`` requests, in the order sent. Wave ``w`` starts at
  ``t0 + fixed_latency + w * per_request`` and finishes ``per_request`` later.
- Catching up to the simulated "now" starts every wave whose start time has passed, across all
  batches in global start order (prompt caching depends on that order), a slice of requests at
  a time. Endpoints catch up (a poll only as far as its batch needs; a create not at all), and
  a served simulator's background worker catches up as waves come due. A request's answer,
  usage and result line are fixed when it starts; its cache writes become readable when it
  finishes. So who does the work, and when, never changes what comes back.
- The batch ends when its last request finishes. A request that would finish after
  ``expires_at`` (created + 24 h) is ``expired``, and then the batch ends at ``expires_at``.
- Cancel at ``t``: the batch shows ``canceling`` (``cancel_initiated_at`` = t); requests already
  started still finish; the rest become ``canceled``. It ends at the later of the last started
  request's finish and ``t + cancel_latency``.
- ``request_counts`` stay all in ``processing`` until the batch ends, then flip at once;
  ``ended_at`` and ``results_url`` appear together.
- 29 days after ``created_at`` the batch is archived: ``archived_at`` is set and its results
  endpoint answers ``404 not_found_error`` (the batch itself can still be retrieved).

Prompt caching (exact-prefix, per model, tools → system → messages):

- Breakpoints are blocks with ``cache_control`` (tools, system blocks, message content blocks)
  plus the last block when the request has a top-level ``cache_control``; at most 4.
- A breakpoint whose prefix is shorter than the model's minimum cacheable length is ignored.
- At its start time a request reads the longest breakpoint prefix that a request *finished*
  writing earlier and whose TTL (5m default, or 1h) has not run out; the read refreshes the TTL.
  It writes every eligible breakpoint after that. So requests that run at the same moment all
  miss and all write; later waves hit.
- Usage: ``cache_read_input_tokens`` = the prefix read; ``cache_creation_input_tokens`` = the
  tokens written past it (split by TTL in ``cache_creation``); ``input_tokens`` = the rest.
- ``SimConfig.cache_miss_rate`` turns that share of would-be hits into misses (drawn per
  request like the faults).
- ``POST /v1/messages`` reads and writes the same cache at the current time.
"""

from __future__ import annotations

import gc
import heapq
import operator
import re
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import accumulate, compress
from typing import Any, Self

import msgspec

from ._catalogue import Catalogue
from ._clock import IdFactory, SimClock, rfc3339
from ._config import ENDPOINT_KINDS, OUTPUT_300K_BETA, SimConfig
from ._faults import FaultPlan, request_draw
from ._json import DECODE_ERRORS, MAX_JSON_DEPTH, decode, encode, encoder, too_deep
from ._output import SMALLEST_CAP, OutputCaps
from ._params import CUSTOM_ID_RE, Analysis, ApiError, analyze, analyze_simple
from ._plain import BETA_TAIL, PLAIN_LINE, PlainLines, cut_plain
from ._responder import (
    answer_mode,
    default_answer,
    default_responder,
    plain_answer,
    responder_caller,
    shape_answer,
    shape_thought,
)
from ._state import StateFile
from ._thinking import thinking_on

__all__ = ["Batch", "BatchItem", "Engine", "QueueFull", "decode_body"]

_KIND_KEYS = tuple(ENDPOINT_KINDS)

SLICE = 2_000
"""Requests processed per hold of the engine's lock (a few tens of milliseconds of work)."""
_ALLOWED_ITEM_KEYS = frozenset({"custom_id", "params"})


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _error_bands(rates: Mapping[str, float]) -> tuple[float, list[tuple[float, str]]]:
    """``(total, [(upper edge, kind), …])``: a request's draw ``u`` below an edge (and above the
    one before) errors with that kind; the bands cover ``[0, total)``."""
    bands: list[tuple[float, str]] = []
    total = 0.0
    for kind in ("api_error", "overloaded_error", "invalid_request_error"):
        rate = rates.get(kind, 0.0)
        if rate:
            total += rate
            bands.append((total, kind))
    return total, bands


def _too_deep() -> ApiError:
    return _bad(f"body: JSON nests more than {MAX_JSON_DEPTH} levels deep")


_DEEP_PARAMS_BYTES = 2 * (MAX_JSON_DEPTH - 3) - 1
"""Params this long or shorter cannot nest more than ``MAX_JSON_DEPTH - 3`` levels deep."""


def _decode_params(raw: msgspec.Raw) -> Any:
    """A request's params, decoded when it is processed. The body was well-formed JSON, but a
    value may still not be: a number out of range, a string that is not UTF-8 (the request
    then comes back ``errored``)."""
    try:
        return decode(raw)
    except DECODE_ERRORS as exc:
        raise ApiError(400, "invalid_request_error", f"params: Invalid JSON: {exc}") from None


def _requests_of(body: Any, limit: int) -> list:
    """The create body's envelope: only ``requests``, a list of 1 to ``limit`` items (the
    items are checked by :meth:`Engine.validate_envelope`)."""
    if not isinstance(body, dict):
        raise _bad("body: Input should be a valid dictionary")
    for key in body:
        if key != "requests":
            raise _bad(f"{key}: Extra inputs are not permitted")
    requests = body.get("requests")
    if requests is None:
        raise _bad("requests: Field required")
    if not isinstance(requests, list):
        raise _bad("requests: Input should be a valid list")
    if not requests:
        raise _bad("requests: List should have at least 1 item after validation, not 0")
    if len(requests) > limit:
        raise _bad(f"requests: List should have at most {limit} items after validation, not {len(requests)}")
    return requests


def decode_body(data: bytes) -> Any:
    """A request body's JSON (``None`` when empty); 400 when it is not JSON."""
    try:
        return decode(data) if data else None
    except DECODE_ERRORS as exc:
        raise ApiError(400, "invalid_request_error", f"body: Invalid JSON: {exc}") from None


class BatchItem(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One request of a create body: its ``custom_id`` and the ``params`` as sent (checked
    later, when the request is processed).

    ``params`` stay undecoded JSON (a slice of the body) until then: a million waiting
    requests are a million small structs, not tens of millions of objects for the garbage
    collector to walk.
    """

    custom_id: str
    params: msgspec.Raw


class _CreateBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    requests: list[BatchItem]


_decode_create = msgspec.json.Decoder(_CreateBody).decode
_decode_saved = msgspec.json.Decoder(list[BatchItem]).decode


# Messages as msgspec structs: they encode about twice as fast as the same dicts (field names
# are encoded once per class, not once per object). Field order is the JSON key order.


class CacheCreation(msgspec.Struct, gc=False):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class Usage(msgspec.Struct, gc=False):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: CacheCreation
    server_tool_use: None
    service_tier: str
    output_tokens_details: None
    speed: None
    inference_geo: None


class Message(msgspec.Struct, gc=False):
    """A ``Message`` as the API returns it (``content`` blocks are dicts)."""

    id: str
    type: str
    role: str
    model: str
    content: list
    stop_reason: str
    stop_sequence: str | None
    stop_details: None
    container: None
    diagnostics: None
    usage: Usage


class BetaMessage(Message, gc=False):
    """The beta namespace's ``Message``: one more field, last."""

    context_management: None = None


class _Succeeded(msgspec.Struct, gc=False, tag_field="type", tag="succeeded"):
    message: Message


class _SucceededLine(msgspec.Struct, gc=False):
    custom_id: str
    result: _Succeeded


_json_str = msgspec.json.encode
_custom_id = operator.attrgetter("custom_id")
_params_of = operator.attrgetter("params")
_ANSWERED_ONCE = (1 << 32) + 1
"""``Engine._answered``'s value for a custom_id processed once, and answered."""


# every custom_id valid, checked at once on the ids joined by "\n" (with exactly n - 1 of them);
# one regex over the joined text costs about a fifth of matching every id on its own
_JOINED_IDS_RE = re.compile(r"(?:[a-zA-Z0-9_-]{1,64}\n)*[a-zA-Z0-9_-]{1,64}")


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work.

    Parsing and answering 100,000 requests allocates millions of objects that stay alive; each
    automatic collection would walk all of them again. Nothing in this bulk work creates
    reference cycles. Threads share one pause (a create parsed while a batch is processed):
    the collector is resumed, if it was running, only when the last of them is done.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


class _YieldingLock:
    """The engine's lock (re-entrant), which long work lets go of when someone waits for it.

    Processing a big batch takes the lock a slice at a time. A thread that lets go of a lock
    and takes it again at once nearly always beats a waiting thread to it, so
    :meth:`Engine.advance` checks :attr:`waiting` between slices and pauses while others go
    first: a create arriving meanwhile waits one slice, not the whole batch.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0
        self.waiting = 0

    def __enter__(self) -> Self:
        if not self._lock.acquire(blocking=False):
            self.waiting += 1
            try:
                self._lock.acquire()
            finally:
                self.waiting -= 1
        self._owner = threading.get_ident()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = None
        self._lock.release()

    def others_waiting(self) -> bool:
        """Someone waits for the lock, and this thread does not hold it (and could let go)."""
        return bool(self.waiting) and self._owner != threading.get_ident()


class Batch:
    """One message batch. Times are Unix timestamps on the simulated clock."""

    __slots__ = (
        "archive_at",
        "betas",
        "cancel_at",
        "counts",
        "created",
        "end_time",
        "expires",
        "finalized",
        "id",
        "lines",
        "n",
        "n_live",
        "n_started_at_cancel",
        "next_index",
        "requests",
        "seq",
        "stem",
        "version",
    )

    def __init__(
        self,
        batch_id: str,
        seq: int,
        created: float,
        requests: list,
        version: str,
        betas: tuple[str, ...],
        stem: str,
        config: SimConfig,
    ) -> None:
        self.id = batch_id
        self.seq = seq
        self.created = created
        self.expires = created + config.expiry_seconds
        self.archive_at = created + config.archive_seconds
        self.n = len(requests)
        self.requests: list | None = requests
        self.version = version
        self.betas = betas
        self.next_index = 0
        self.cancel_at: float | None = None
        self.n_started_at_cancel = self.n
        self.lines: list[bytes] | None = []
        self.counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        self.finalized = False
        self.stem = stem
        p = config.processing
        self.n_live = min(self.n, self._fit(p))
        last_wave = (self.n - 1) // p.concurrency
        natural_end = self.wave_start(last_wave, p) + p.per_request
        # never ended at the instant of creation: the create response always says in_progress
        self.end_time = max(natural_end if self.n_live == self.n else self.expires, created + 1e-6)

    def _fit(self, p: Any) -> int:
        """How many requests finish before ``expires_at``."""
        budget = self.expires - self.created - p.fixed_latency - p.per_request
        if budget < 0:
            return 0
        if p.per_request == 0:
            return self.n
        waves = int(budget // p.per_request) + 1
        return min(self.n, waves * p.concurrency)

    def wave_start(self, wave: int, p: Any) -> float:
        return self.created + p.fixed_latency + wave * p.per_request

    def unfinished(self, now: float, p: Any) -> int:
        """Requests of this batch still in the processing queue at ``now`` (not finished,
        not canceled)."""
        if self.end_time <= now or self.finalized:
            return 0
        total = self.n if self.cancel_at is None else self.n_live
        first_end = self.created + p.fixed_latency + p.per_request
        if now < first_end:
            return total
        waves = self.n_live if p.per_request == 0 else int((now - first_end) // p.per_request) + 1
        return max(0, total - min(self.n_live, waves * p.concurrency))

    def status(self, now: float) -> str:
        if self.end_time <= now:
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"


class Engine:
    """All state of one simulator: batches, cache, counters. Thread-safe (one lock)."""

    def __init__(
        self, config: SimConfig, responder: Callable[..., Any] | None, clock: SimClock, state: StateFile | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.catalogue = Catalogue(config.models)
        self.ids = IdFactory(config.seed)
        self._lock = _YieldingLock()
        self._responder = responder_caller(responder or default_responder)
        self._default_responder = responder is None or responder is default_responder
        self._batches: dict[str, Batch] = {}
        self._order: list[str] = []  # creation order, including deleted ids
        self._seq_of: dict[str, int] = {}
        self._deleted: set[str] = set()
        self._heap: list[tuple[float, int, int, Batch]] = []
        self._partial: tuple[Batch, int, int, float] | None = None  # (batch, next, end, start) of a wave under way
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self._worker_wake = threading.Event()
        self._open: dict[str, Batch] = {}
        self._cache: dict[bytes, list[float]] = {}
        self._min_cache: dict[str, int] = {}
        self._answered: dict[int, int] = {}  # hash(custom_id) → processed << 32 | succeeded
        self.output_caps = OutputCaps(self.catalogue, config)
        self.plan = FaultPlan(config.faults, config.seed)
        self._counters: Counter[str] = Counter()
        self._faults_seen: Counter[str] = Counter()
        self._started = time.monotonic()
        self._state = state
        if state is not None:
            self._restore(state)

    def _restore(self, state: StateFile) -> None:
        """Take up the batches written in ``state``: each is worked through again from its
        requests, on the clock, as if the simulator had never stopped."""
        p = self.config.processing
        now = self.clock.timestamp()
        for saved in state.batches():
            self._order.append(saved.id)
            self._seq_of[saved.id] = saved.seq
            if saved.deleted_at is not None:
                self._deleted.add(saved.id)
                continue
            archived = (
                saved.counts is not None
                and saved.ended_at is not None
                and saved.created + self.config.archive_seconds <= now
            )
            requests = [] if archived else _decode_saved(saved.requests)
            batch = Batch(
                saved.id, saved.seq, saved.created, requests, saved.version, saved.betas, saved.stem, self.config
            )
            if archived:  # nothing to work through: its results are gone, its counts are kept
                assert saved.counts is not None and saved.ended_at is not None
                batch.n = sum(saved.counts.values())
                batch.counts = dict(saved.counts)
                batch.cancel_at = saved.cancel_at
                batch.end_time = saved.ended_at
                batch.requests = batch.lines = None
                batch.finalized = True
                self._batches[batch.id] = batch
                if saved.requests:
                    state.archived(batch.id)
                continue
            if saved.cancel_at is not None:
                self._settle_cancel(batch, saved.cancel_at)
            self._batches[batch.id] = batch
            self._open[batch.id] = batch
            if batch.n_live:
                heapq.heappush(self._heap, (batch.wave_start(0, p), batch.seq, 0, batch))

    def close(self) -> None:
        """Stop the background worker and let go of the state file (idempotent)."""
        self.stop_worker()
        if self._state is not None:
            with self._lock:
                self._state.close()

    # ------------------------------------------------------------------ bookkeeping

    def count_call(self, kind: str) -> None:
        with self._lock:
            self._counters[kind] += 1

    def count_fault(self, what: str) -> None:
        with self._lock:
            self._faults_seen[what] += 1

    def model_known(self, model: str) -> bool:
        return self.catalogue.known(model)

    def _min_cacheable(self, model: str) -> int:
        value = self._min_cache.get(model)
        if value is None:
            value = self._min_cache[model] = self.config.min_cacheable(model)
        return value

    # ------------------------------------------------------------------ the clock

    def advance(self, until: Batch | None = None) -> float:
        """Catch up with the simulated now (or only as far as ``until`` needs); returns now.

        Due work is done a slice of at most :data:`SLICE` requests at a time, always the
        earliest first (a wave is finished before the next one starts, as in one pass).
        Between slices the lock is let go — unless the caller holds it — so other requests
        (a create above all) go on while a big batch is worked through. With ``until``, work
        stops once that batch is settled: a poll of the first batch need not wait for the
        ninth to be processed.
        """
        with paused_gc():  # for the whole catch-up: resumed between slices, it would walk everything
            while True:
                with self._lock:
                    now = self.clock.timestamp()
                    worked = (until is None or self._has_due_work(until, now)) and self._work_slice(now)
                if worked:
                    for _ in range(100):  # let others go first, for up to 50 ms
                        if not self._lock.others_waiting():
                            break
                        time.sleep(0.0005)
                    continue
                with self._lock:
                    for batch in [b for b in self._open.values() if b.end_time <= now]:
                        if not self._has_due_work(batch, now):
                            self._finalize(batch)
                    for batch in self._batches.values():
                        if batch.lines is not None and batch.archive_at <= now:
                            batch.lines = None  # archived: results are gone
                    if len(self._cache) > 200_000:
                        self._cache = {k: e for k, e in self._cache.items() if e[1] >= now}
                    if self._state is not None:
                        self._state.clock(now, self.clock.time_scale)
                    return now

    def _has_due_work(self, batch: Batch, now: float) -> bool:
        """Whether requests of ``batch`` that have started by ``now`` are still unprocessed."""
        if batch.finalized or batch.next_index >= batch.n_live:
            return False
        return batch.wave_start(batch.next_index // self.config.processing.concurrency, self.config.processing) <= now

    def work_due(self, now: float) -> bool:
        """Whether batch work is due by ``now`` (a wave under way, or one whose start has come).

        Read without the lock, for a served simulator choosing where to answer a message (which
        catches up first): a wrong guess costs a thread hop, or one request doing a slice of work
        on the event loop, nothing else."""
        if self._partial is not None:
            return True
        heap = self._heap
        try:
            return bool(heap) and heap[0][0] <= now
        except IndexError:  # emptied meanwhile
            return False

    def _work_slice(self, now: float) -> bool:
        """Process the next slice of the earliest due wave; False when nothing is due."""
        p = self.config.processing
        if self._partial is None:
            heap = self._heap
            while heap and heap[0][0] <= now:
                start, _seq, wave, batch = heapq.heappop(heap)
                lo = wave * p.concurrency
                if batch.finalized or lo >= batch.n_live:
                    continue
                hi = min(batch.n_live, lo + p.concurrency)
                if hi < batch.n_live:
                    heapq.heappush(heap, (batch.wave_start(wave + 1, p), batch.seq, wave + 1, batch))
                self._partial = (batch, lo, hi, start)
                break
            else:
                return False
        batch, lo, hi, start = self._partial
        cut = min(hi, lo + SLICE)
        if not batch.finalized:
            self._run_wave(batch, lo, cut, start, start + p.per_request)
        self._partial = None if cut >= hi or batch.finalized else (batch, cut, hi, start)
        return True

    @contextmanager
    def caught_up(self, batch_id: str | None = None) -> Iterator[float]:
        """Hold the lock, caught up with the simulated now (yielded). The bulk of the due work
        is done before taking the lock, so a create goes on meanwhile; with ``batch_id``, only
        as far as that batch needs (404 if there is no such batch)."""
        until = None
        if batch_id is not None:
            with self._lock:
                until = self.get(batch_id)
        self.advance(until)
        with self._lock:
            yield self.advance(until)

    # ------------------------------------------------------------------ background work

    def start_worker(self) -> None:
        """Work batches through in a background thread as they come due, as the API does,
        rather than when the next request arrives (idempotent). Results and timings are the
        same either way: they follow from the simulated clock, not from when the work is done."""
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker_stop.clear()
            self._worker = threading.Thread(target=self._work, name="batchkit-sim-worker", daemon=True)
            self._worker.start()

    def stop_worker(self) -> None:
        self._worker_stop.set()
        self._worker_wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def wake(self) -> None:
        """Tell the worker there may be work due (a batch was created, the clock moved)."""
        self._worker_wake.set()

    def _work(self) -> None:
        while not self._worker_stop.is_set():
            self._worker_wake.clear()  # a wake during this round makes the next wait return at once
            now = self.advance()
            with self._lock:
                due = self._heap[0][0] if self._heap else None
            wait = 1.0 if due is None else min(1.0, max(0.0, self.clock.wall_seconds(due - now)))
            self._worker_wake.wait(wait)

    # ------------------------------------------------------------------ create

    def parse_create(self, data: bytes) -> list[BatchItem]:
        """Decode a create body and run the synchronous checks on it; returns its requests.

        A valid body is decoded and checked in one typed pass (the envelope's shape and each
        ``custom_id`` by msgspec, then uniqueness and the count); anything else is decoded
        generically and :meth:`validate_envelope` names the first problem.
        """
        try:
            requests = _decode_create(data).requests
        except DECODE_ERRORS:
            requests = []
        n = len(requests)
        if 0 < n <= self.config.max_requests_per_batch:
            ids = list(map(_custom_id, requests))
            joined = "\n".join(ids)
            if joined.count("\n") == n - 1 and _JOINED_IDS_RE.fullmatch(joined) is not None and len(set(ids)) == n:
                # The body is {"requests": [{"custom_id": …, "params": P}, …]}: it nests 3 levels
                # more than its deepest P, and a P nests at most half its length deep. So only
                # the longer ones are looked at (each a whole JSON value: joined, they nest as
                # deep as the deepest of them).
                raws = list(map(_params_of, requests))
                sizes = list(map(len, raws))
                if max(sizes) > _DEEP_PARAMS_BYTES:  # (C-level passes: no Python step a request)
                    deep_enough = b"".join(compress(raws, map(_DEEP_PARAMS_BYTES.__lt__, sizes)))
                    if too_deep(deep_enough, MAX_JSON_DEPTH - 3):
                        raise _too_deep()
                return requests
        if too_deep(data):
            raise _too_deep()
        return [
            BatchItem(item["custom_id"], msgspec.Raw(encode(item["params"])))
            for item in self.validate_envelope(decode_body(data))
        ]

    def validate_envelope(self, body: Any) -> list:
        """The synchronous checks of a decoded create body; returns the request list."""
        requests = _requests_of(body, self.config.max_requests_per_batch)
        seen: set[str] = set()
        match = CUSTOM_ID_RE.fullmatch
        for i, item in enumerate(requests):
            if type(item) is not dict:
                raise _bad(f"requests.{i}: Input should be a valid dictionary")
            cid = item.get("custom_id")
            if type(cid) is not str:
                raise _bad(
                    f"requests.{i}.custom_id: "
                    + ("Field required" if cid is None else "Input should be a valid string")
                )
            if match(cid) is None:
                if len(cid) > 64:
                    raise _bad(f"requests.{i}.custom_id: String should have at most 64 characters")
                raise _bad(f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if cid in seen:
                raise _bad(
                    f"requests.{i}.custom_id: Duplicate custom_id {cid!r}; every custom_id "
                    "must be unique within a batch"
                )
            seen.add(cid)
            if "params" not in item:
                raise _bad(f"requests.{i}.params: Field required")
            if len(item) != 2:
                extra = next(k for k in item if k not in _ALLOWED_ITEM_KEYS)
                raise _bad(f"requests.{i}.{extra}: Extra inputs are not permitted")
        return requests

    def create(self, requests: list[BatchItem], version: str, betas: tuple[str, ...]) -> Batch:
        # No catching up first: work already due keeps its place ahead of this batch's (it
        # starts no earlier than now), so a create never waits for another batch's processing.
        with self._lock:
            now = self.clock.timestamp()
            if self.config.max_queued_batch_requests is not None:
                self._check_queue_room(len(requests), now)
            batch_id = self.ids.batch_id()
            seq = len(self._order)
            batch = Batch(batch_id, seq, now, requests, version, betas, self.ids.token(14), self.config)
            if self._state is not None:  # written down before it exists, and so before it is answered
                self._state.created(seq, batch_id, now, version, betas, batch.stem, encoder.encode(requests))
                self._state.clock(now, self.clock.time_scale)
            self._batches[batch_id] = batch
            self._order.append(batch_id)
            self._seq_of[batch_id] = seq
            self._open[batch_id] = batch
            if batch.n_live:
                heapq.heappush(self._heap, (batch.wave_start(0, self.config.processing), seq, 0, batch))
            self._counters["batches_created"] += 1
            self._counters["batch_requests_received"] += batch.n
        self.wake()
        return batch

    def queued(self, now: float) -> int:
        """Batch requests waiting in the processing queue at ``now`` (not yet finished)."""
        p = self.config.processing
        return sum(b.unfinished(now, p) for b in self._open.values())

    def _check_queue_room(self, n: int, now: float) -> None:
        """Raise :class:`QueueFull` if ``n`` more requests would overfill the queue."""
        limit = self.config.max_queued_batch_requests
        assert limit is not None
        queued = self.queued(now)
        if queued + n <= limit:
            return
        if n > limit:
            raise QueueFull(
                f"This batch's {n:,} requests alone exceed your workspace's limit of "
                f"{limit:,} batch requests in the processing queue; split it into smaller "
                "batches",
                None,
            )
        # the queue only shrinks as time passes: find when it has room, by bisection
        lo, hi = now, max((b.end_time for b in self._open.values()), default=now)
        for _ in range(50):
            mid = (lo + hi) / 2
            if self.queued(mid) + n <= limit:
                hi = mid
            else:
                lo = mid
        wait = min(60.0, max(0.001, self.clock.wall_seconds(hi - now)))
        raise QueueFull(
            f"Number of batch requests in the processing queue would exceed your "
            f"workspace's limit of {limit:,} ({queued:,} queued, {n:,} more requested); "
            "wait for earlier batches to finish",
            wait,
        )

    # ------------------------------------------------------------------ processing

    def _run_wave(self, batch: Batch, lo: int, hi: int, start: float, finish: float) -> None:
        requests = batch.requests
        assert requests is not None and batch.lines is not None
        config = self.config
        faults = config.faults
        seed = config.seed
        draw_faults = faults.any_request_faults
        acc, err_bands = _error_bands(faults.errored_rate)
        expired_edge = acc + faults.expired_rate
        append = batch.lines.append
        answered = self._answered
        model_json: dict[str, bytes] = {}
        plain_lines = None
        if self._default_responder:
            plain_lines = PlainLines(self.catalogue.known, batch.stem, bool(batch.betas)).lines(requests, lo, hi)
            if not draw_faults and self._all_plain(batch, lo, hi, plain_lines):
                return
        succeeded = duplicates = 0
        for i in range(lo, hi):
            item = requests[i]
            cid = item.custom_id
            key = hash(cid)
            seen = answered.get(key, 0)
            if draw_faults:
                u = request_draw(seed, f"#{batch.seq}", cid)
                if u < expired_edge:
                    kind = next((k for edge, k in err_bands if u < edge), None)
                    self._fault_line(batch, i, cid, kind)
                    if kind is not None:
                        answered[key] = seen + (1 << 32)
                    continue
            line = None if plain_lines is None else plain_lines[i - lo]
            if line is None:
                try:
                    line = self._general_line(batch, item, i, start, finish, (seen >> 32) + 1, model_json)
                except ApiError as exc:
                    self._error_line(batch, i, cid, exc.type, exc.message)
                    answered[key] = seen + (1 << 32)
                    continue
            append(line)
            succeeded += 1
            if (seen & 0xFFFFFFFF) == 1:
                duplicates += 1
            answered[key] = seen + (1 << 32) + 1
        batch.counts["succeeded"] += succeeded
        self._counters["requests_processed"] += succeeded
        self._counters["duplicate_custom_ids_answered"] += duplicates
        batch.next_index = hi

    def _general_line(
        self,
        batch: Batch,
        item: BatchItem,
        i: int,
        start: float,
        finish: float,
        attempt: int,
        model_json: dict[str, bytes],
    ) -> bytes:
        """The result line of request ``i`` of ``batch`` when it succeeds (:class:`ApiError`
        when it does not): params decoded, validated and answered in full."""
        try:
            params = decode(item.params)
        except DECODE_ERRORS as exc:  # as _decode_params, without a call per request
            raise ApiError(400, "invalid_request_error", f"params: Invalid JSON: {exc}") from None
        known = self.catalogue.known
        simple = analyze_simple(params, True, known)
        analysis = simple or analyze(
            params,
            version=batch.version,
            in_batch=True,
            reject_sampling=self.config.reject_sampling_params,
            model_known=known,
        )
        max_tokens = params["max_tokens"]
        if max_tokens > SMALLEST_CAP:
            beta_300k = OUTPUT_300K_BETA in batch.betas
            problem = self.output_caps.problem(params["model"], max_tokens, beta=beta_300k, in_batch=True)
            if problem is not None:
                raise ApiError(400, "invalid_request_error", problem)
        cid = item.custom_id
        beta = bool(batch.betas)
        if self._default_responder and simple is not None:
            tail = BETA_TAIL if beta else b""
            line = self._plain_line(
                params, analysis.input_tokens, max_tokens, cid, batch.stem.encode(), i, tail, model_json
            )
            if line is not None:
                return line
        stem = f"{batch.stem}{i:08d}"
        message = self._message(
            params, analysis, start, finish, "msg_01" + stem, "toolu_01" + stem, "batch", cid, batch.id, attempt, beta
        )
        return encoder.encode_lines((_SucceededLine(cid, _Succeeded(message)),))

    def _all_plain(self, batch: Batch, lo: int, hi: int, lines: list[bytes | None]) -> bool:
        """Settle ``batch.requests[lo:hi]`` at once when all of them are plain lines (``lines``)
        of custom ids never answered before (the usual case); False, having done nothing, else."""
        assert batch.requests is not None and batch.lines is not None
        if None in lines:
            return False
        keys = dict.fromkeys(map(hash, map(_custom_id, batch.requests[lo:hi])), _ANSWERED_ONCE)
        if len(keys) != hi - lo or not self._answered.keys().isdisjoint(keys):
            return False
        batch.lines.extend(lines)  # type: ignore[arg-type]  # no None in them
        self._answered.update(keys)
        batch.counts["succeeded"] += hi - lo
        self._counters["requests_processed"] += hi - lo
        batch.next_index = hi
        return True

    def _plain_line(
        self,
        params: dict,
        input_tokens: int,
        max_tokens: int,
        cid: str,
        stem: bytes,
        i: int,
        tail: bytes,
        model_json: dict[str, bytes],
    ) -> bytes | None:
        """The result line of a request of the simplest shape (string contents, no tools, output
        format, thinking, stop sequences or cache marks: what :func:`analyze_simple` accepts)
        answered by the default responder: what :meth:`_message` would encode, without the
        detour through ``answer_mode``, ``shape_answer`` and the structs. ``None`` when this
        path does not apply (the caller then takes the general one)."""
        try:
            text = plain_answer(params)
        except Exception:  # the general path turns it into the same error line
            return None
        if type(text) is not str:
            return None
        text, stop_reason, out = cut_plain(text, max_tokens)
        model = params["model"]
        encoded_model = model_json.get(model)
        if encoded_model is None:
            encoded_model = model_json[model] = _json_str(model)
        return PLAIN_LINE % (
            _json_str(cid),
            stem,
            i,
            encoded_model,
            _json_str(text),
            stop_reason,
            input_tokens,
            max(out, 1),
            tail,
        )

    def _fault_line(self, batch: Batch, i: int, cid: str, kind: str | None) -> None:
        """The line of a request a fault hit: ``errored`` with ``kind``, or ``expired`` (None)."""
        if kind is not None:
            self._error_line(batch, i, cid, kind, _FAULT_MESSAGES[kind])
            return
        assert batch.lines is not None
        batch.lines.append(encode({"custom_id": cid, "result": {"type": "expired"}}) + b"\n")
        batch.counts["expired"] += 1
        self._counters["requests_expired"] += 1

    def _error_line(self, batch: Batch, i: int, cid: str, kind: str, message: str) -> None:
        assert batch.lines is not None
        error = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"req_01{batch.stem}{i:08d}",
        }
        batch.lines.append(encode({"custom_id": cid, "result": {"type": "errored", "error": error}}) + b"\n")
        batch.counts["errored"] += 1
        self._counters["requests_errored"] += 1

    def _message(
        self,
        params: dict,
        analysis: Analysis,
        start: float,
        finish: float,
        msg_id: str,
        tool_id: str,
        tier: str,
        custom_id: str | None,
        batch_id: str | None,
        attempt: int,
        beta: bool = False,
    ) -> Message:
        """The answer to valid ``params``, with usage as of ``start``; batch requests have a
        ``custom_id`` and ``batch_id`` (``None`` for ``/v1/messages``)."""
        model = params["model"]
        if analysis.breakpoints:
            input_tokens, w5, w1, read = self._cache_usage(model, analysis, start, finish, batch_id, custom_id)
        else:
            input_tokens, w5, w1, read = analysis.input_tokens, 0, 0, 0
        try:
            mode: str | None
            if self._default_responder:
                mode = known = answer_mode(params)
                answer = default_answer(params, known)
            else:  # a custom responder may change params: its answer is shaped by what they are after
                mode = None
                answer = self._responder(params, custom_id, batch_id, attempt)
            if "thinking" in params and thinking_on(params):
                content, stop_reason, stop_sequence, out = shape_thought(params, answer, tool_id, mode)
            else:
                content, stop_reason, stop_sequence, out = shape_answer(params, answer, tool_id, mode)
        except Exception as exc:  # a user's responder failing is a simulated server error
            raise ApiError(500, "api_error", f"responder failed: {type(exc).__name__}: {exc}") from exc
        usage = Usage(input_tokens, out, w5 + w1, read, CacheCreation(w5, w1), None, tier, None, None, None)
        return (BetaMessage if beta else Message)(
            msg_id, "message", "assistant", model, content, stop_reason, stop_sequence, None, None, None, usage
        )

    def _cache_usage(
        self, model: str, analysis: Analysis, start: float, finish: float, batch_id: str | None, custom_id: str | None
    ) -> tuple[int, int, int, int]:
        """``(uncached input, 5m writes, 1h writes, reads)`` for a request starting at ``start``."""
        total = analysis.input_tokens
        bps = analysis.breakpoints
        if not bps:
            return total, 0, 0, 0
        min_len = self._min_cacheable(model)
        first = next((j for j, bp in enumerate(bps) if bp[0] >= min_len), None)
        if first is None:
            return total, 0, 0, 0
        keys = analysis.prefix_keys(model)
        cache = self._cache
        read_at = -1
        rate = self.config.cache_miss_rate
        forced_miss = (
            bool(rate)
            and batch_id is not None
            and custom_id is not None
            and request_draw(self.config.seed, f"#{self._seq_of.get(batch_id, batch_id)}", custom_id, "cache") < rate
        )
        if not forced_miss:
            for j in range(len(bps) - 1, first - 1, -1):
                entry = cache.get(keys[j])
                if entry is not None and entry[0] <= start <= entry[1]:
                    read_at = j
                    entry[1] = max(entry[1], start + bps[j][1])
                    break
        read = bps[read_at][0] if read_at >= 0 else 0
        # readable once written; strictly after the writer's start, so that requests running
        # at the same instant (instant processing, /v1/messages) never read each other
        ready = finish if finish > start else start + 1e-6
        prev = read
        w5 = w1 = 0
        for j in range(max(first, read_at + 1), len(bps)):
            prefix, ttl, _ = bps[j]
            segment = prefix - prev
            prev = prefix
            if ttl > 300:
                w1 += segment
            else:
                w5 += segment
            entry = cache.get(keys[j])
            if entry is None or entry[1] < start:
                cache[keys[j]] = [ready, ready + ttl]
            else:
                entry[0] = min(entry[0], ready)
                entry[1] = max(entry[1], ready + ttl)
        return total - read - w5 - w1, w5, w1, read

    def _finalize(self, batch: Batch) -> None:
        """The batch has ended: settle leftovers as canceled/expired and flip the counts."""
        assert batch.requests is not None
        lines = batch.lines
        for i in range(batch.next_index, batch.n):
            cid = batch.requests[i].custom_id
            if batch.cancel_at is not None and i >= batch.n_started_at_cancel:
                kind = "canceled"
            else:
                kind = "expired"
            if lines is not None:
                lines.append(encode({"custom_id": cid, "result": {"type": kind}}) + b"\n")
            batch.counts[kind] += 1
            self._counters["requests_" + kind] += 1
        batch.next_index = batch.n
        batch.requests = None
        batch.finalized = True
        del self._open[batch.id]
        if self._state is not None:
            self._state.ended(batch.id, batch.counts, batch.end_time)

    # ------------------------------------------------------------------ batch endpoints

    def get(self, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(
                404,
                "not_found_error",
                f"message_batch not found: {batch_id}" + (" (it was deleted)" if batch_id in self._deleted else ""),
            )
        return batch

    def cancel(self, batch_id: str) -> Batch:
        with self.caught_up() as now:
            batch = self.get(batch_id)
            if batch.finalized or batch.cancel_at is not None:
                return batch  # cancelling an ended or canceling batch changes nothing
            self._settle_cancel(batch, now)
            if self._state is not None:
                self._state.canceled(batch_id, now)
            if batch.end_time <= now:
                self._finalize(batch)
            return batch

    def _settle_cancel(self, batch: Batch, now: float) -> None:
        """Cancel ``batch`` at ``now``: requests started by then still finish, the rest will be
        ``canceled``; sets when the batch ends."""
        p = self.config.processing
        batch.cancel_at = now
        if now < batch.created + p.fixed_latency:
            started = 0
        elif p.per_request == 0:
            started = batch.n
        else:
            waves = int((now - batch.created - p.fixed_latency) // p.per_request) + 1
            started = min(batch.n, waves * p.concurrency)
        batch.n_started_at_cancel = started
        batch.n_live = min(batch.n_live, started)
        if batch.n_live:
            last_finish = batch.wave_start((batch.n_live - 1) // p.concurrency, p) + p.per_request
        else:
            last_finish = now
        batch.end_time = min(batch.expires, max(now + p.cancel_latency, last_finish))

    def delete(self, batch_id: str) -> None:
        with self.caught_up() as now:
            batch = self.get(batch_id)
            if batch.end_time > now:
                raise _bad(
                    f"Message batch {batch_id} is still {batch.status(now)}; "
                    "cancel it and wait for it to end before deleting it"
                )
            del self._batches[batch_id]
            self._deleted.add(batch_id)
            if self._state is not None:
                self._state.deleted(batch_id, now)

    def results(self, batch_id: str) -> list[bytes]:
        with self.caught_up(batch_id) as now:
            batch = self.get(batch_id)  # still there (not deleted meanwhile)
            if batch.end_time > now:
                raise _bad(
                    f"Message batch {batch_id} is still {batch.status(now)}; results are "
                    "available once processing has ended"
                )
            if batch.lines is None:
                raise ApiError(
                    404,
                    "not_found_error",
                    f"Results of message batch {batch_id} are no longer available: they "
                    f"were archived at {rfc3339(batch.archive_at)}, 29 days after creation",
                )
            return batch.lines

    def page(self, limit: int, after_id: str | None, before_id: str | None) -> tuple[list[Batch], bool]:
        """Newest first; ``after_id`` pages towards older batches, ``before_id`` towards newer."""
        with self.caught_up():
            live = [self._batches[i] for i in reversed(self._order) if i in self._batches]
            if after_id is not None:
                cut = self._cursor(after_id, "after_id")
                older = [b for b in live if b.seq < cut]
                return older[:limit], len(older) > limit
            if before_id is not None:
                cut = self._cursor(before_id, "before_id")
                newer = [b for b in live if b.seq > cut]
                return newer[-limit:], len(newer) > limit
            return live[:limit], len(live) > limit

    def _cursor(self, batch_id: str, name: str) -> int:
        seq = self._seq_of.get(batch_id)
        if seq is None:
            raise _bad(f"{name}: no message batch with id {batch_id!r}")
        return seq

    def render(self, batch: Batch, now: float, results_base: str) -> dict:
        ended = batch.end_time <= now
        if ended:
            counts = dict(batch.counts)
        else:
            counts = {"processing": batch.n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status(now),
            "request_counts": counts,
            "created_at": rfc3339(batch.created),
            "expires_at": rfc3339(batch.expires),
            "ended_at": rfc3339(batch.end_time) if ended else None,
            "cancel_initiated_at": None if batch.cancel_at is None else rfc3339(batch.cancel_at),
            "archived_at": rfc3339(batch.archive_at) if batch.archive_at <= now else None,
            "results_url": f"{results_base}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    # ------------------------------------------------------------------ messages

    def analyze_message(self, params: Any, version: str) -> Analysis:
        """Validate ``/v1/messages`` params (400/404 :class:`ApiError`) and estimate their input."""
        return analyze(
            params,
            version=version,
            in_batch=False,
            reject_sampling=self.config.reject_sampling_params,
            model_known=self.catalogue.known,
        )

    def message(self, params: Any, version: str, analysis: Analysis | None = None) -> Message:
        """The answer to ``/v1/messages`` params (``analysis``: from :meth:`analyze_message`)."""
        if analysis is None:
            analysis = self.analyze_message(params, version)
        # No batch open and nothing kept on disk: catching up would only archive old results
        # (any later call does it) and prune a small cache, so a realtime answer takes the
        # lock and the clock, not two rounds of catching up.
        if not self._open and self._partial is None and self._state is None and len(self._cache) <= 200_000:
            with self._lock:
                return self._answer_message(params, analysis, self.clock.timestamp())
        with self.caught_up() as now:
            return self._answer_message(params, analysis, now)

    def _answer_message(self, params: Any, analysis: Analysis, now: float) -> Message:
        token = self.ids.token(22)
        message = self._message(
            params, analysis, now, now, "msg_01" + token, "toolu_01" + token, "standard", None, None, 1
        )
        self._counters["messages_answered"] += 1
        return message

    def count_tokens(self, params: Any, version: str) -> int:
        return analyze(
            params,
            version=version,
            in_batch=False,
            count_only=True,
            reject_sampling=self.config.reject_sampling_params,
            model_known=self.catalogue.known,
        ).input_tokens

    # ------------------------------------------------------------------ stats

    def stats(self, catch_up: bool = True) -> dict:
        if catch_up:
            self.advance()
        with self._lock:
            now = self.advance() if catch_up else self.clock.timestamp()
            counters = self._counters
            out: dict[str, Any] = {kind: counters[kind] for kind in _KIND_KEYS}
            for name in (
                "batches_created",
                "batch_requests_received",
                "requests_processed",
                "requests_errored",
                "requests_expired",
                "requests_canceled",
                "duplicate_custom_ids_answered",
                "messages_answered",
            ):
                out[name] = counters[name]
            out["faults"] = dict(self._faults_seen)
            out["batches"] = [
                {"id": b.id, "request_count": b.n, "processing_status": b.status(now)}
                for b in (self._batches[i] for i in self._order if i in self._batches)
            ]
            out["clock"] = rfc3339(now)
            out["time_scale"] = self.clock.time_scale
            out["cpu_seconds"] = time.process_time()
            out["uptime_seconds"] = time.monotonic() - self._started
            return out

    def reset_stats(self) -> None:
        with self._lock:
            self._counters.clear()
            self._faults_seen.clear()
            self._answered.clear()


class QueueFull(ApiError):
    """A create that would put more batch requests in the processing queue than the workspace
    may hold (``SimConfig.max_queued_batch_requests``): 429, retry after ``wall_wait`` s
    (``None``: the batch alone is over the limit, so no wait helps)."""

    def __init__(self, message: str, wall_wait: float | None) -> None:
        super().__init__(429, "rate_limit_error", message)
        self.wall_wait = wall_wait


_FAULT_MESSAGES = {
    "api_error": "Internal server error (simulated fault)",
    "overloaded_error": "Overloaded (simulated fault)",
    "invalid_request_error": "Invalid request (simulated fault)",
}


def iter_chunks(lines: list[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Join result lines into chunks of about ``size`` bytes (each ends with the line that
    reaches ``size``): the lines' running lengths are summed in C, and a chunk is one slice and
    one join, not a step a line."""
    ends = list(accumulate(map(len, lines)))
    at, n = 0, len(lines)
    while at < n:
        stop = bisect_left(ends, (ends[at - 1] if at else 0) + size, at) + 1
        yield b"".join(lines[at:stop])
        at = stop
