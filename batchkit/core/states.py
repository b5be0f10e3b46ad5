"""The vocabulary: every state, status and mode the package passes around, said once. Pure.

Each is a :class:`~enum.StrEnum`, so a member *is* its string: it compares equal to the text the
store holds and the API sends (``UnitState.ENDED == "ended"``), serializes as that text, and a
value read back from the store can be turned into a member with ``UnitState(text)``. The sets
below name the groups the engine, the store and the views ask about, so no module keeps its own.

==================  ==========================================================================
:class:`JobState`   a job (one ``df.claude`` call): ``running`` → ``ended`` | ``canceled`` |
                    ``failed``
:class:`UnitState`  a unit of work (a row of the store's ``batches``: one Message Batch, or a set
                    of keys sent in realtime)
:class:`RowStatus`  what one row ended with (``job.outcomes()["status"]``; :data:`PENDING` before)
:class:`RunState`   a partitioned run: ``running`` → ``ended`` | ``failed`` | ``detached``
:class:`SendMode`   how a unit's requests reach Claude
:class:`Mode`       what a call asks for: a send mode, or ``auto`` (the rule of thumb decides)
:class:`PriceMode`  a price line of an estimate
==================  ==========================================================================
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AWAITING_RESULTS",
    "FINISHED_UNITS",
    "PENDING",
    "SENT_UNITS",
    "JobState",
    "Mode",
    "PriceMode",
    "RowStatus",
    "RunState",
    "SendMode",
    "UnitState",
]


class JobState(StrEnum):
    """Where a job is: still working, or how it stopped."""

    RUNNING = "running"
    ENDED = "ended"
    CANCELED = "canceled"
    FAILED = "failed"


class UnitState(StrEnum):
    """Where a unit of work is, as the store records it."""

    SUBMITTING = "submitting"
    """Intent recorded, ``create`` not yet answered: the unit may or may not exist at the API."""
    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"
    """Every request has an outcome at the API; its results are not yet in the store."""
    COLLECTED = "collected"
    """Every result is in the store."""
    FAILED = "failed"
    """Never created (refused), or stopped for good; its rows were not answered by it."""
    ABANDONED = "abandoned"
    """Dropped before it was created (a cancel, a hedge): nothing was sent."""
    LOST = "lost"
    """The API no longer knows it (a 404 to its owner): its rows have no answer from it."""


# The groups are tuples, in the order a unit passes through them: the store binds them as SQL
# parameters (``state IN (?,?,…)``), which takes a sequence, not a set.
AWAITING_RESULTS = (UnitState.SUBMITTING, UnitState.IN_PROGRESS, UnitState.CANCELING, UnitState.ENDED)
"""Units whose requests have no stored result yet (``ended`` = not yet collected)."""

SENT_UNITS = (UnitState.IN_PROGRESS, UnitState.CANCELING, UnitState.ENDED)
"""Units that exist at the API and are not yet collected."""

FINISHED_UNITS = (UnitState.ENDED, UnitState.COLLECTED, UnitState.FAILED, UnitState.ABANDONED, UnitState.LOST)
"""Units that will answer nothing more (``ended``: its answers are known, only not yet stored)."""


class RowStatus(StrEnum):
    """What a row ended with. Per-row outcomes are data, not exceptions."""

    SUCCEEDED = "succeeded"
    TRUNCATED = "truncated"
    """The answer stopped at ``max_tokens``."""
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    """Not sent: a value the prompt refers to is missing (or a media file could not be read)."""
    INVALID_OUTPUT = "invalid_output"
    """Structured output that failed validation."""


PENDING = "pending"
"""A row's status while its request has no answer yet — not a :class:`RowStatus`, which says how a row
ended (``job.outcomes()`` shows it for rows still waiting, or ``canceled`` once the job is canceled)."""


class RunState(StrEnum):
    """Where a partitioned run (:class:`batchkit.Run`) is."""

    RUNNING = "running"
    ENDED = "ended"
    FAILED = "failed"
    DETACHED = "detached"
    """Planning stopped (a KeyboardInterrupt, or ``run.detach()``); what was planned keeps running."""


class SendMode(StrEnum):
    """How a unit's requests reach Claude."""

    BATCH = "batch"
    REALTIME = "realtime"


class Mode(StrEnum):
    """What a call asks for: one of the send modes, or ``auto``."""

    BATCH = "batch"
    REALTIME = "realtime"
    AUTO = "auto"


class PriceMode(StrEnum):
    """A price line: the standard API, Message Batches, and batches with prompt caching by TTL."""

    STANDARD = "standard"
    BATCH = "batch"
    BATCH_5M = "batch+5m"
    BATCH_1H = "batch+1h"
