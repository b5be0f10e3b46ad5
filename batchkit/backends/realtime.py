"""The realtime backend: a unit of work is a set of request keys sent as ``POST /v1/messages`` calls.

:class:`Realtime` is the :class:`~batchkit.backends.Backend` the engine drives for ``realtime``
units: standard price, answers in seconds, within the workspace's rate limits. Each unit is sent
by a :class:`~batchkit.backends.sender.RealtimeSender` in a thread of its own; the answers are
handed over as they arrive (``streams``) so the engine stores them in small groups, and a unit's
handle lives in this process only (``local``): a unit whose process died has nothing more to
collect, and the engine sends its unanswered keys again.

When a unit's sender ends, the rate limits its answers' headers gave are kept for the process
(:func:`~batchkit.backends.limits.learned_limits`): what ``auto`` and the estimate time realtime by.

The sender, one run of it and its async clients live in :mod:`.sender`, :mod:`.dispatch` and
:mod:`.twins`.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import uuid
from typing import Any

import anthropic
import msgspec

from batchkit.core.results import ResultColumns, parse_result_stream
from batchkit.core.states import SendMode, UnitState

from ..errors import SpendLimitError
from . import QueueView, Tracked, UnitPlan
from .dispatch import Progress
from .errors import CallFailed, decide
from .limits import learn
from .sender import RealtimeSender

__all__ = ["Realtime"]


class _Line(msgspec.Struct):
    custom_id: str
    params: msgspec.Raw


class _Body(msgspec.Struct):
    requests: list[_Line]


_decode_body = msgspec.json.Decoder(_Body).decode

REALTIME_INITIAL_CONCURRENCY = 32
"""Requests in flight when a realtime unit starts (then growing while free of 429s): enough for
a sample of a few dozen rows to come back in about one request's latency."""
REALTIME_ROUND = 0.1
"""Seconds between the engine's rounds over a realtime unit: how often answers are stored."""


class _Unit:
    """One realtime unit being sent: its sender's thread, the answers not yet collected, the end."""

    def __init__(self) -> None:
        self.chunks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.created_at = _utcnow()
        self.ended_at: str | None = None
        self.sender: RealtimeSender | None = None


class Realtime:
    """:class:`~batchkit.backends.Backend` over ``POST /v1/messages``: a unit is a set of request
    keys sent concurrently, within the rate limits, by a :class:`RealtimeSender`.

    :meth:`send` starts the unit's sender in a thread of its own and returns at once;
    :meth:`collect` hands over the answers that have arrived since the last call (the engine
    stores each such group in a small transaction, so a dead process loses only the requests on
    the wire); :meth:`track` says ``in_progress`` until every request has its answer. A spend
    limit or an account refusal ends the unit: once what came back is collected, :meth:`collect`
    raises :class:`~.errors.CallFailed` with the ``stop`` decision of :func:`~.errors.decide`.

    Handles live in this process only (``local``): a unit whose process died is ``ended`` with
    nothing more to collect, and the engine sends its unanswered keys again.
    """

    mode = SendMode.REALTIME
    streams = True
    """Hands over a unit's answers while the rest are in flight."""
    local = True
    """Its units' handles do not survive the process that sent them."""
    queue: QueueView | None = None
    """No batch processing queue: the rate limits pace it (:mod:`.ratelimit`)."""

    def __init__(self, client: anthropic.Anthropic, *, sender_options: dict[str, Any] | None = None) -> None:
        self.client = client
        self.sender_options = {"initial_concurrency": REALTIME_INITIAL_CONCURRENCY, **(sender_options or {})}
        self._units: dict[str, _Unit] = {}
        self._lock = threading.Lock()

    def send(self, body: bytes, plan: UnitPlan | None = None) -> Tracked:
        """Start sending a planned unit's requests; returns at once (``plan``: nothing of it
        concerns realtime — no queue, no betas)."""
        requests = [(line.custom_id, bytes(line.params)) for line in _decode_body(body).requests]
        unit = _Unit()
        unit_id = f"realtime_{uuid.uuid4().hex[:20]}"
        sender = RealtimeSender(self.client, **self.sender_options)
        unit.sender = sender

        def run() -> None:
            try:
                sender.send(requests, unit.chunks.put, stop=unit.stop)
            except BaseException as exc:  # handed to the engine by collect()
                unit.error = exc
            finally:
                unit.ended_at = _utcnow()
                governor = sender.governor
                if governor is not None:
                    learn(self.client, {group: governor.limits(group) for group in governor.groups()})

        unit.thread = threading.Thread(target=run, name=f"batchkit-{unit_id}", daemon=True)
        with self._lock:
            self._units[unit_id] = unit
        unit.thread.start()
        return Tracked(unit_id, UnitState.IN_PROGRESS, {"created_at": unit.created_at})

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        return None  # nothing survives the process that sent it: unanswered keys are sent again

    def track(self, unit_id: str) -> Tracked:
        unit = self._units.get(unit_id)
        if unit is None:  # sent by a process that is gone
            return Tracked(unit_id, UnitState.ENDED, {"ended_at": _utcnow()})
        if unit.thread is not None and unit.thread.is_alive():
            return Tracked(unit_id, UnitState.CANCELING if unit.stop.is_set() else UnitState.IN_PROGRESS, {})
        return Tracked(unit_id, UnitState.ENDED, {"created_at": unit.created_at, "ended_at": unit.ended_at})

    def collect(self, unit_id: str) -> ResultColumns:
        """The answers that arrived since the last call (all that are left once it has ended).

        Raises:
            CallFailed: the unit ended on a refusal (spend limit, key, permission); raised once
                every answer that came back before it has been collected.
        """
        unit = self._units.get(unit_id)
        if unit is None:
            return parse_result_stream([])
        ended = unit.thread is None or not unit.thread.is_alive()
        chunks = []
        while True:
            try:
                chunks.append(unit.chunks.get_nowait())
            except queue.Empty:
                break
        lost = _drain_lost(unit)
        if chunks or lost:  # responses lost on the way back are written down, even with no answer yet
            columns = parse_result_stream(chunks)
            columns.lost = lost
            return columns
        if ended:
            with self._lock:
                self._units.pop(unit_id, None)
            error = unit.error
            if error is not None:
                cause = (error.__cause__ if isinstance(error, SpendLimitError) else error) or error
                if not isinstance(cause, (anthropic.APIError, OSError)):
                    raise error  # not an answer of the API (a bug, an interrupt): the caller hears it
                raise CallFailed(decide(cause, call="message")) from error
        return parse_result_stream([])

    def cancel(self, unit_id: str) -> Tracked:
        """Stop sending; the requests on the wire finish and their answers are kept."""
        unit = self._units.get(unit_id)
        if unit is None:
            return Tracked(unit_id, UnitState.ENDED, {})
        unit.stop.set()
        return self.track(unit_id)

    @property
    def busy(self) -> bool:
        """Whether a unit is still being sent."""
        return any(u.thread is not None and u.thread.is_alive() for u in list(self._units.values()))

    def stop_all(self) -> None:
        """Stop sending every unit of this backend (Ctrl-C): what came back is kept."""
        for unit in list(self._units.values()):
            unit.stop.set()

    def progress(self) -> list[Progress]:
        """The live counters of the units being sent."""
        return [u.sender.progress for u in list(self._units.values()) if u.sender is not None]

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        return (REALTIME_ROUND,)


def _drain_lost(unit: _Unit) -> list[str]:
    """The keys whose responses were lost since the last call (one entry per lost response)."""
    lost: list[str] = []
    if unit.sender is not None:
        keys = unit.sender.progress.lost_keys
        while keys:
            lost.append(keys.popleft())
    return lost


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
