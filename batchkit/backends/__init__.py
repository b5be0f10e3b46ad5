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

:func:`.choice.backend_for` is the one place a backend is chosen for a mode.

Every SDK error a backend meets is turned into a :class:`~.errors.Decision` by the one map in
:mod:`.errors` and raised as :class:`~.errors.CallFailed`; the engine acts on the decision
(retry next round, reconcile, fail the rows, stop the job) and never sees an SDK type.

Nothing here imports pandas or the store: a backend moves bytes and reports states.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from batchkit.core.results import ResultColumns

from .errors import Action, CallFailed, Decision, decide

__all__ = ["Action", "Backend", "CallFailed", "Decision", "Tracked", "UnitState", "decide"]

UnitState = Literal["in_progress", "canceling", "ended"]
"""Where a sent unit is: still working, being canceled, or ended (every request has an outcome)."""


@dataclass(frozen=True)
class Tracked:
    """A unit as the backend last saw it."""

    id: str
    """The backend's handle for it (a batch id ``msgbatch_…``), stored as the unit's ``api_id``."""
    state: UnitState
    fields: Mapping[str, Any] = field(default_factory=dict)
    """What the store keeps about it: ``created_at``, ``ended_at``, ``expires_at`` (ISO-8601 UTC)
    and ``request_counts`` (``processing``/``succeeded``/``errored``/``canceled``/``expired``)."""


class Backend(Protocol):
    """What the job engine needs from a way of sending requests to Claude.

    The engine calls these from its worker thread, one call at a time per job; every method
    may raise :class:`~.errors.CallFailed`, whose ``decision`` says what to do.

    The verbs, and what they mean for each backend:

    * **send these request keys** — :meth:`send` takes a unit's body (the keys' request lines,
      joined as ``{"requests": [...]}``, exactly as planned and stored before the call) and
      starts the work. Batches: one ``create``, returning the batch. Realtime: queue the unit's
      requests on the sender's private event loop and return at once with a handle of its own;
      the requests go out concurrently within the rate limits. ``send`` must never make the
      same paid work twice: when its fate is unknown it fails with ``reconcile``, and the
      engine asks :meth:`find_sent` before trying again.
    * **what is in flight** — :meth:`track` says where a unit is: ``in_progress`` while any of
      its requests has no outcome, ``canceling``, then ``ended``. Batches: a ``retrieve``
      (counts only at the end). Realtime: from the sender's own books (no network call);
      requests it still holds or has on the wire are in flight.
    * **collect what has ended** — :meth:`collect` returns the unit's outcomes as
      :class:`~batchkit.core.results.ResultColumns` keyed by request key (in any order). Batches:
      the results file of an ended batch, streamed and parsed as it downloads. Realtime: the
      answers that arrived, each with its usage; a backend that answers one by one may hand
      over part of a unit while the rest is in flight, and the engine stores each part as it
      comes so a dead process loses only what was on the wire.
    * **cancel** — :meth:`cancel` stops a unit: requests not started end ``canceled``, answers
      already produced are kept (and were paid for). Batches cancel whole batches; realtime
      stops sending and lets the requests on the wire finish.
    * **recover** — :meth:`find_sent` finds a unit a dead process sent but did not record (the
      engine claims the intent first). Batches: the batch list around the intent's time.
      Realtime: nothing survives its process, so it returns None and the engine re-sends only
      the keys with no stored answer.

    ``mode`` names the price its answers are paid at (``"batch"``: the batch discount).
    """

    mode: str

    def send(self, body: bytes) -> Tracked:
        """Start the work of one planned unit; its handle and state."""
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

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        """Seconds between the engine's rounds: fixed when the user set ``poll_interval``, else a backoff."""
        ...
