"""One view per workspace of its batch processing queue, shared by every job of the process.

A workspace may hold only so many batch requests waiting to be processed (e.g. 200,000); a
create that would go over is refused with 429. A million-row job is ten batches of which two fit
at once, and a partitioned run is many jobs: if each kept its own books, each would knock on the
API for room. So the process keeps **one** :class:`QueueView` per workspace — per API key and
base URL (per simulator, for one wired in process) — which every :class:`~.batches.MessageBatches`
of that workspace consults before it calls ``create``:

* **The limit** comes from a setting (``queue_limit=``, :meth:`QueueView.set_limit`) or is
  *learned* from a refusal whose message states it ("… your workspace's limit of 200,000 …").
  The API documents no header carrying it, so none is read. Until it is known, creates go out
  one at a time per workspace (two sent together could both be refused) and a refusal teaches it.
* **In flight** are the requests of batches created and not yet ended: the view is told on
  create (:meth:`QueueView.admit` → :meth:`QueueView.created`), on end (:meth:`QueueView.ended`,
  when a poll sees it), and re-synced from the job store's batches table
  (:meth:`QueueView.sync`), so batches created by another process or before a restart count.
* **Held locally.** A create that would take the queue over a known limit is not sent: it fails
  at once with a ``retry`` decision and no call, and is sent when room appears — earlier-planned
  batches first (the lowest ``order``, the store's batch id), so a run's partitions finish in
  order. A batch alone larger than the limit is refused before any call (``stop``), naming
  the limit and ``chunk_size=``; the engine plans batches no larger than a known limit in the
  first place.
* **After a refusal** (429 with ``retry-after``) no create of the workspace is sent until that
  time; a 429 that does not say when holds creates :data:`DEFAULT_ROOM_WAIT` seconds, doubling
  per refusal in a row up to :data:`MAX_ROOM_WAIT`.

Counting a batch whole until it ends is conservative (the API frees a batch's requests as they
are processed), so with a known limit the API has no reason to refuse a create of this process.

Nothing here imports the store: :func:`batchkit.display.queues.snapshot` reads the store for the
progress view.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import Action, CallFailed, Decision
from .identity import wired_simulator

__all__ = [
    "DEFAULT_ROOM_WAIT",
    "MAX_ROOM_WAIT",
    "LimitSource",
    "QueueState",
    "QueueView",
    "forget_views",
    "known_view",
    "view_for",
]

DEFAULT_ROOM_WAIT = 30.0
"""Seconds a create refused with 429 but no ``retry-after`` is held (doubling per refusal in a row)."""
MAX_ROOM_WAIT = 300.0
"""The longest such hold."""
STALE_AFTER = 900.0
"""Seconds after which a held create nobody asked about again no longer keeps later ones waiting
(its job stopped without saying so)."""

LimitSource = Literal["setting", "learned"]
"""Where a view's limit comes from: the ``queue_limit=`` option, or a refusal's message."""

_LIMIT_IN_MESSAGE = re.compile(r"limit of ([\d,]+)(?: batch)? requests?", re.IGNORECASE)
_LIMIT_LOOSE = re.compile(
    r"processing queue.*?limit of ([\d,]+)|limit of ([\d,]+).*?processing queue", re.IGNORECASE | re.DOTALL
)


def limit_in(message: str) -> int | None:
    """The workspace's queue limit a refusal's message states, if it states one.

    >>> limit_in("Number of batch requests in the processing queue would exceed your workspace's "
    ...          "limit of 200,000 (150,000 queued, 100,000 more requested)")
    200000
    >>> limit_in("Rate limited") is None
    True
    """
    found = _LIMIT_IN_MESSAGE.search(message) if "queue" in message.lower() else None
    if found is None:
        loose = _LIMIT_LOOSE.search(message)
        text = (loose.group(1) or loose.group(2)) if loose else None
    else:
        text = found.group(1)
    if not text:
        return None
    value = int(text.replace(",", ""))
    return value if value >= 1 else None


@dataclass(frozen=True)
class QueueState:
    """What a :class:`QueueView` knows at one moment. Plain data."""

    limit: int | None
    """Batch requests the workspace's processing queue may hold; None until set or learned."""
    source: LimitSource | None
    """Where :attr:`limit` comes from."""
    in_flight: int
    """Requests of batches created (or being created) and not yet seen to end."""
    in_flight_batches: int
    held: int
    """Requests of creates held locally, waiting for room."""
    held_batches: int
    refused: int
    """Creates the API refused for want of room (429), in this process."""
    room_in: float
    """Seconds until a refusal's ``retry-after`` has passed (0: creates may go)."""

    @property
    def limit_text(self) -> str:
        """``"200,000 requests (setting)"``, ``"… (learned from a refusal)"`` or ``"unknown …"``."""
        if self.limit is None:
            return "unknown until the API refuses a create (or set queue_limit=)"
        how = "setting: queue_limit=" if self.source == "setting" else "learned from a refusal"
        return f"{self.limit:,} requests ({how})"


class QueueView:
    """The processing queue of one workspace, as this process knows it. Thread-safe.

    Use :func:`view_for` to get the one view of a client's workspace.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        """Which workspace: the base URL (the key is never kept)."""
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.source: LimitSource | None = None
        self._in_flight: dict[str, tuple[int, str | None]] = {}  # batch id -> (requests, store it was synced from)
        self._reserved: dict[int, int] = {}  # ticket -> requests, between admit and created/release
        self._waiting: dict[tuple[str, int], tuple[int, float]] = {}  # (owner, order) -> (requests, last asked)
        self._wakers: dict[str, Callable[[], None]] = {}
        self._tickets = itertools.count(1)
        self.refused = 0
        self._room_at = 0.0  # time.monotonic() before which no create is sent
        self._refused_in_a_row = 0
        self._room_wait: Decision | None = None

    # -- the limit

    def set_limit(self, limit: int, source: LimitSource = "setting") -> None:
        """Take ``limit`` as the workspace's queue limit; a setting is never replaced by a learned one."""
        with self._lock:
            if source == "learned" and self.source == "setting":
                return
            self.limit, self.source = int(limit), source
        self._wake_all()

    # -- creates

    def admit(
        self, n_requests: int, *, order: int | None = None, owner: str = "", wake: Callable[[], None] | None = None
    ) -> int:
        """Room for a create of ``n_requests``: a ticket to pass to :meth:`created` or :meth:`release`.

        Args:
            n_requests: the batch's requests.
            order: where it stands among planned batches (the store's batch id): while an
                earlier one waits for room, later ones wait too. None: no place in line.
            owner: who asks (a job id), so :meth:`withdraw` can let its batches go.
            wake: called when room may have appeared for this owner's held create.

        Raises:
            CallFailed: ``retry`` (held locally, nothing sent) while the queue has no room or a
                refusal's ``retry-after`` has not passed; ``stop`` when the batch alone is larger
                than the limit.
        """
        with self._lock:
            now = time.monotonic()
            key = (owner, order if order is not None else -1)
            limit = self.limit
            if limit is not None and n_requests > limit:
                self._waiting.pop(key, None)
                raise self._never_fits(n_requests, limit)
            if wake is not None and owner:
                self._wakers[owner] = wake
            if self._room_at > now and self._room_wait is not None:
                if order is not None:
                    self._waiting[key] = (n_requests, now)
                held = self._room_wait
                raise CallFailed(
                    Decision(Action.RETRY, held.error_type, held.message, held.status, self._room_at - now)
                )
            if limit is None:  # not known yet: one create in the air at a time, and let a refusal teach it
                if not self._reserved:
                    self._waiting.pop(key, None)
                    return self._reserve(n_requests)
                if order is not None:
                    self._waiting[key] = (n_requests, now)
                raise CallFailed(
                    Decision(
                        Action.RETRY,
                        "queue_probe",
                        "held locally until another create of this workspace is answered: the processing "
                        "queue's limit is not known yet, and two creates sent together could both be refused",
                    )
                )
            for stale in [k for k, (_, seen) in self._waiting.items() if now - seen > STALE_AFTER]:
                del self._waiting[stale]
            if order is not None:
                self._waiting[key] = (n_requests, now)
            first = min(self._waiting, key=lambda k: k[1], default=None)
            used = self._used()
            if used + n_requests <= limit and (order is None or first == key):
                self._waiting.pop(key, None)
                return self._reserve(n_requests)
            if used + n_requests <= limit:
                why = f"a batch planned earlier (#{first[1] if first else '?'}) goes first"
            else:
                why = f"it holds {used:,} of {limit:,} requests"
            raise CallFailed(
                Decision(
                    Action.RETRY,
                    "queue_full",
                    f"held locally until the workspace's processing queue has room for this batch's "
                    f"{n_requests:,} requests: {why} (limit {self._source_text()})",
                )
            )

    def _never_fits(self, n_requests: int, limit: int) -> CallFailed:
        """The ``stop`` of a batch alone larger than the queue's limit."""
        return CallFailed(
            Decision(
                Action.STOP,
                "queue_limit",
                f"this batch's {n_requests:,} requests alone exceed the workspace's processing queue "
                f"limit of {limit:,} requests ({self._source_text()}); it can never be sent whole — "
                f"pass chunk_size={limit} or lower",
            )
        )

    def created(self, ticket: int, batch_id: str, n_requests: int | None = None) -> None:
        """The create of ``ticket`` made batch ``batch_id``: its requests are in flight until it ends."""
        with self._lock:
            reserved = self._reserved.pop(ticket, 0)
            self._refused_in_a_row = 0
            self._in_flight.setdefault(batch_id, (n_requests if n_requests is not None else reserved, None))
        self._wake_all()  # a create held while this one was in the air may go now

    def release(self, ticket: int) -> None:
        """The create of ``ticket`` did not happen: give its room back."""
        with self._lock:
            freed = self._reserved.pop(ticket, None)
        if freed:
            self._wake_all()

    def refused_create(self, decision: Decision) -> None:
        """A create was refused: a 429 holds every create of the workspace until its ``retry-after``
        (or a backoff), and teaches the limit when its message states it."""
        if decision.status != 429:
            return
        learned = limit_in(decision.message)
        if learned is not None:
            self.set_limit(learned, "learned")
        if decision.action is not Action.RETRY:
            return
        with self._lock:
            self.refused += 1
            self._refused_in_a_row += 1
            wait = decision.retry_after
            if wait is None:  # no word on when: back off, 30 s doubling to 5 min
                wait = min(MAX_ROOM_WAIT, DEFAULT_ROOM_WAIT * 2 ** (self._refused_in_a_row - 1))
            self._room_at = time.monotonic() + wait
            self._room_wait = decision

    def withdraw(self, owner: str, *, keep: Collection[int] = ()) -> None:
        """``owner`` will not ask again for its held creates but those in ``keep`` (its job stopped,
        finished, or gave some up, e.g. to a deadline hedge): they no longer keep later ones waiting."""
        with self._lock:
            gone = [k for k in self._waiting if k[0] == owner and k[1] not in keep]
            for key in gone:
                del self._waiting[key]
            if not keep:
                self._wakers.pop(owner, None)
        if gone:
            self._wake_all()

    # -- ends

    def ended(self, batch_id: str) -> None:
        """Batch ``batch_id`` has ended: its requests leave the queue."""
        with self._lock:
            gone = self._in_flight.pop(batch_id, None)
        if gone is not None:
            self._wake_all()

    def sync(self, source: str, in_flight: Mapping[str, int]) -> None:
        """What the store at ``source`` says is in flight (created, not ended): batches it listed
        before and no longer lists have ended."""
        with self._lock:
            before = len(self._in_flight)
            for batch_id in [b for b, (_, s) in self._in_flight.items() if s == source and b not in in_flight]:
                del self._in_flight[batch_id]
            freed = len(self._in_flight) < before
            for batch_id, n in in_flight.items():
                self._in_flight[batch_id] = (int(n), source)
        if freed:
            self._wake_all()

    # -- reading

    def seconds_until_room(self) -> float:
        """Seconds until a create refused for want of room may be sent again (0: now)."""
        return max(0.0, self._room_at - time.monotonic())

    def state(self) -> QueueState:
        """The view's numbers now."""
        with self._lock:
            now = time.monotonic()
            held = [n for n, seen in self._waiting.values() if now - seen <= STALE_AFTER]
            return QueueState(
                limit=self.limit,
                source=self.source,
                in_flight=self._used(),
                in_flight_batches=len(self._in_flight) + len(self._reserved),
                held=sum(held),
                held_batches=len(held),
                refused=self.refused,
                room_in=max(0.0, self._room_at - now),
            )

    def __repr__(self) -> str:
        s = self.state()
        return (
            f"<QueueView {self.name or '?'}: {s.in_flight:,} requests in flight, {s.held:,} held; limit {s.limit_text}>"
        )

    # -- internals (under the lock)

    def _used(self) -> int:
        return sum(n for n, _ in self._in_flight.values()) + sum(self._reserved.values())

    def _reserve(self, n_requests: int) -> int:
        ticket = next(self._tickets)
        self._reserved[ticket] = n_requests
        return ticket

    def _source_text(self) -> str:
        return "set by queue_limit=" if self.source == "setting" else "learned from the API's refusal"

    def _wake_all(self) -> None:
        with self._lock:
            wakers = list(self._wakers.values()) if self._waiting else []
        for wake in wakers:
            wake()


# --------------------------------------------------------------------------- one view per workspace

_views: dict[tuple[str, str], QueueView] = {}
_in_process: weakref.WeakKeyDictionary[Any, QueueView] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


def _workspace(client: Any) -> tuple[tuple[str, str], Any]:
    """The workspace a client talks to: (a digest of its key, its base URL), and the simulator it is
    wired to in process, if any (every in-process simulator has the same URL and key)."""
    key = getattr(client, "api_key", None) or getattr(client, "auth_token", None) or ""
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:16]  # never the key itself
    url = str(getattr(client, "base_url", "")).rstrip("/")
    return (digest, url), wired_simulator(client)


def view_for(client: Any) -> QueueView:
    """The one :class:`QueueView` of ``client``'s workspace in this process (made on first use).

    Clients with the same API key and base URL share it — copies made by ``with_options`` too.
    """
    ident, app = _workspace(client)
    with _views_lock:
        if app is not None:
            found = _in_process.get(app)
            if found is None:
                found = _in_process[app] = QueueView(ident[1])
            return found
        found = _views.get(ident)
        if found is None:
            found = _views[ident] = QueueView(ident[1])
        return found


def known_view(client: Any) -> QueueView | None:
    """``client``'s workspace view if this process has made one (None: it has created nothing yet)."""
    ident, app = _workspace(client)
    with _views_lock:
        return _in_process.get(app) if app is not None else _views.get(ident)


def forget_views() -> None:
    """Drop every workspace's view (limits learned, batches in flight): the next create starts afresh."""
    with _views_lock:
        _views.clear()
        _in_process.clear()
