"""How requests reach Claude: the interface the job engine drives, and its implementations.

The engine (:mod:`batchkit.engine.jobs`) plans, sends, tracks, collects and retries; it knows request
keys, planned *units* of work (a row of the store's ``batches`` table: some request keys and
their pre-serialized body, with an intent written down before anything is sent) and outcomes.
*How* a unit's requests reach Claude is a :class:`Backend`:

========================  ====================================================================
:mod:`.batches`           Message Batches: a unit is one batch (≤ 100,000 requests / 256 MB),
                          half price, minutes to 24 h, counts only when it ends
`.realtime.Realtime`      ``POST /v1/messages``: a unit is a set of keys sent concurrently
                          within the rate limits, answers handed over as they arrive
========================  ====================================================================

:func:`.choice.backend_for` is the one place a backend is chosen for a mode, from the table that
:func:`.choice.register_backend` fills: a third way of sending is a module ``backends/<name>.py``
with a class that has every member of :class:`Backend`, and one line in :mod:`.choice`.

**Everything the engine asks of a backend is declared in** :class:`Backend` — what it sends
(:meth:`Backend.send` with the unit's :class:`UnitPlan`), whether its answers come one by one
(:attr:`~Backend.streams`), whether its handles die with the process (:attr:`~Backend.local`), the
workspace's processing queue it waits on (:attr:`~Backend.queue`), whether it is still sending
(:attr:`~Backend.busy`) and how to stop it (:meth:`~Backend.stop_all`): the engine never asks which
class a backend is.

Every SDK error a backend meets is turned into a :class:`~.errors.Decision` by the one map in
:mod:`.errors` and raised as :class:`~.errors.CallFailed`; the engine acts on the decision
(retry next round, reconcile, fail the rows, stop the job) and never sees an SDK type.

Nothing here imports pandas, the store or the engine: a backend moves bytes and reports states.
It may import :mod:`batchkit.core`, :mod:`batchkit.errors` and, only when the simulator is already
loaded, the public surface of :mod:`batchkit.simulator` (:func:`~batchkit.simulator.wired_simulator`,
``Simulator.async_client``). Not :mod:`batchkit.costs`: its price table brings pandas.

Modules: :mod:`.batches` and :mod:`.realtime` (the two backends); :mod:`.sender` and
:mod:`.dispatch` (realtime's concurrent sender and one run of it), :mod:`.twins` (its async
clients); :mod:`.ratelimit` (the governor) and :mod:`.limits` (rate-limit groups and the limits
learned in this process: what the engine reads); :mod:`.queue` (the workspace's batch processing queue);
:mod:`.errors` (the one SDK-error map); :mod:`.betas` (the output betas a unit is planned with);
:mod:`.clients` and :mod:`.identity` (which client, and whether it talks to the simulator);
:mod:`.tokens` (token counting); :mod:`.choice` (which backend sends a mode).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchkit.core.results import ResultColumns
from batchkit.core.states import SendMode, UnitState

from .errors import RESULTS_CUT, Action, CallFailed, Decision, decide
from .queue import QueueView

__all__ = [
    "RESULTS_CUT",
    "TRACKED_STATES",
    "Action",
    "Backend",
    "CallFailed",
    "Decision",
    "QueueView",
    "SendMode",
    "Tracked",
    "UnitPlan",
    "UnitState",
    "decide",
]

TRACKED_STATES = frozenset({UnitState.IN_PROGRESS, UnitState.CANCELING, UnitState.ENDED})
"""The states a backend reports of a sent unit (:attr:`Tracked.state`): still working, being
canceled, or ended (every request has an outcome). The others of
:class:`~batchkit.core.states.UnitState` (``submitting``, ``collected``, ``failed``…) are the
engine's and the store's."""


@dataclass(frozen=True)
class Tracked:
    """A unit as the backend last saw it."""

    id: str
    """The backend's handle for it (a batch id ``msgbatch_…``), stored as the unit's ``api_id``."""
    state: UnitState
    """One of :data:`TRACKED_STATES`."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """What the store keeps about it: ``created_at``, ``ended_at``, ``expires_at`` (ISO-8601 UTC)
    and ``request_counts`` (``processing``/``succeeded``/``errored``/``canceled``/``expired``)."""


@dataclass(frozen=True)
class UnitPlan:
    """What a planned unit carries besides its body, as the engine hands it to :meth:`Backend.send`.

    Every backend takes it; each uses what concerns it (realtime needs none of it).
    """

    n_requests: int | None = None
    """How many requests its body holds (None: counted in the body)."""
    order: int | None = None
    """Its place among planned units (the store's unit id): an earlier one goes first when the
    workspace's queue has room for one only."""
    owner: str = ""
    """The job asking (see :meth:`QueueView.withdraw`)."""
    betas: tuple[str, ...] | None = None
    """The ``anthropic-beta`` values it was planned with (:func:`batchkit.core.models.unit_betas`;
    ``()``: none). None: a unit planned before betas were stored with units; the backend then
    derives them from the body as it did then."""
    wake: Callable[[], None] | None = None
    """Called when room may have appeared for a send held for want of it (wakes the worker)."""


class Backend(Protocol):
    """What the job engine needs from a way of sending requests to Claude.

    The engine calls these from its worker thread, one call at a time per job; every method
    may raise :class:`~.errors.CallFailed`, whose ``decision`` says what to do.

    The verbs, and what they mean for each backend:

    * **send these request keys** — :meth:`send` takes a unit's body (the keys' request lines,
      joined as ``{"requests": [...]}``, exactly as planned and stored before the call) and its
      :class:`UnitPlan`, and starts the work. Batches: one ``create``, returning the batch.
      Realtime: queue the unit's requests on the sender's private event loop and return at once
      with a handle of its own; the requests go out concurrently within the rate limits. ``send``
      must never make the same paid work twice: when its fate is unknown it fails with
      ``reconcile``, and the engine asks :meth:`find_sent` before trying again.
    * **what is in flight** — :meth:`track` says where a unit is: ``in_progress`` while any of
      its requests has no outcome, ``canceling``, then ``ended``. Batches: a ``retrieve``
      (counts only at the end). Realtime: from the sender's own books (no network call);
      requests it still holds or has on the wire are in flight.
    * **collect what has ended** — :meth:`collect` returns the unit's outcomes as
      :class:`~batchkit.core.results.ResultColumns` keyed by request key (in any order). Batches:
      the results file of an ended batch, streamed and parsed as it downloads. Realtime: the
      answers that arrived, each with its usage; a backend that answers one by one
      (:attr:`streams`) may hand over part of a unit while the rest is in flight, and the engine
      stores each part as it comes so a dead process loses only what was on the wire.
    * **cancel** — :meth:`cancel` stops a unit: requests not started end ``canceled``, answers
      already produced are kept (and were paid for). Batches cancel whole batches; realtime
      stops sending and lets the requests on the wire finish.
    * **recover** — :meth:`find_sent` finds a unit a dead process sent but did not record (the
      engine claims the intent first). Batches: the batch list around the intent's time.
      Realtime: nothing survives its process (:attr:`local`), so it returns None and the engine
      re-sends only the keys with no stored answer.
    * **stop everything** — :meth:`stop_all` (Ctrl-C): a backend that sends from this process
      stops sending; :attr:`busy` says whether it still is.
    """

    @property
    def mode(self) -> SendMode:
        """The price its answers are paid at (``batch``: the batch discount); stored with each answer."""
        ...

    @property
    def streams(self) -> bool:
        """Whether it hands over a unit's answers while the rest are in flight (the engine stores
        each group as it comes, and sends a unit a dead process had started without the keys
        already answered)."""
        ...

    @property
    def local(self) -> bool:
        """Whether its units' handles live in the sending process only: such a unit is followed
        by its sender alone while that process lives, and ends with it."""
        ...

    @property
    def queue(self) -> QueueView | None:
        """The workspace's batch processing queue its sends wait on (shared by every job of the
        process); None for a backend no such queue limits."""
        ...

    @property
    def busy(self) -> bool:
        """Whether a unit is still being sent by this process (False for a backend whose units
        run at the API on their own)."""
        ...

    def send(self, body: bytes, plan: UnitPlan | None = None) -> Tracked:
        """Start the work of one planned unit (``plan`` None: a :class:`UnitPlan` of defaults);
        its handle and state."""
        ...

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        """A unit of ``n_requests`` sent just after ``intent_at`` and not in ``claimed``; None if none."""
        ...

    def track(self, unit_id: str) -> Tracked:
        """Where a sent unit is now."""
        ...

    def collect(self, unit_id: str) -> ResultColumns:
        """The outcomes of a unit that has ended (or, for a streaming backend, of those that have)."""
        ...

    def cancel(self, unit_id: str) -> Tracked:
        """Cancel a unit; its state after the request."""
        ...

    def stop_all(self) -> None:
        """Stop sending every unit this process sends (Ctrl-C); what came back is kept. Nothing
        to do for a backend whose units run at the API on their own."""
        ...

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        """Seconds between the engine's rounds: fixed when the user set ``poll_interval``, else a backoff."""
        ...
