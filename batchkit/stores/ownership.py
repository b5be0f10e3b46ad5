"""Ownership of units of work, as verbs: claim, renew, release, take over from a dead owner.

Every unit of work (a row of ``batches``: a Message Batch, or a set of keys a realtime backend
sends one by one) has exactly one owner at a time, whatever backend sends it. The verbs, in the
order a unit meets them:

====================================  =====================================================================
claim                                 creating a unit claims it:
                                      :meth:`~batchkit.stores.transaction.Transaction.add_unit` writes
                                      ``owner=me()`` with a fresh lease, and the process starts
                                      renewing its leases in that store
renew                                 :meth:`Ownership.renew_leases`: a keeper thread of each process
                                      (:mod:`batchkit.stores.leases`) extends every lease it holds
                                      on a unit still awaiting its results
decide                                :func:`owns` (this process owns it), :func:`owner_alive` (its owner,
                                      whoever, still holds it: the one rule, in :mod:`batchkit.stores.leases`)
take over                             :meth:`Ownership.take_over`: a unit whose owner is dead becomes this
                                      process's, by a compare-and-set on its owner, so of several processes
                                      that find the same dead owner exactly one wins
release                               :meth:`Ownership.release_unit`: an owner gives a unit it still holds
                                      up, so another process may take it over at once (without waiting for
                                      the lease to run out or the process to end)
====================================  =====================================================================

A process that finds a unit owned by another *live* process waits for its answers: it never
sends the unit's requests again nor collects it as empty. A unit that has left the states
awaiting results (:data:`batchkit.core.states.AWAITING_RESULTS`) keeps its last owner's name as a
record; nobody claims it any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from batchkit.core.states import AWAITING_RESULTS

from .connection import StoreCore
from .leases import keep_leases, lease_until, me
from .leases import owner_alive as _owner_alive

__all__ = ["Ownership", "me", "owner_alive", "owns"]

_AWAITING = tuple(AWAITING_RESULTS)
_HELD = f"owner = ? AND state IN ({','.join('?' * len(_AWAITING))})"


def owns(unit: Mapping[str, Any]) -> bool:
    """Whether this process owns ``unit`` (a record of :meth:`~batchkit.stores.units.Units.batches`)."""
    return bool(unit["owner"] == me())


def owner_alive(unit: Mapping[str, Any]) -> bool:
    """Whether ``unit``'s owner — this process or another — still holds it, by the one rule of
    :func:`batchkit.stores.leases.owner_alive` (its process on this host; its lease elsewhere)."""
    return _owner_alive(unit["owner"], unit.get("lease_until"))


class Ownership(StoreCore):
    """Who owns a unit, as store verbs (part of :class:`~batchkit.stores.store.Store`)."""

    def claim_unit(
        self, unit_id: int, owner: str, *, was: str | None, states: Iterable[str] = AWAITING_RESULTS
    ) -> bool:
        """Take unit ``unit_id`` over from ``was`` (its owner as last read), if it still is
        theirs and in one of ``states``: a compare-and-set, so of several processes taking over
        the same dead owner's unit exactly one wins. The winner holds it with a fresh lease."""
        wanted = tuple(states)
        with self._atomic() as conn:
            cur = conn.execute(
                f"UPDATE batches SET owner = ?, lease_until = ? WHERE id = ? AND owner IS ?"
                f" AND state IN ({','.join('?' * len(wanted))})",
                (owner, lease_until(), unit_id, was, *wanted),
            )
            won = cur.rowcount == 1
        if won:
            keep_leases(self)
        return won

    def take_over(self, unit: Mapping[str, Any], *, states: Iterable[str] = AWAITING_RESULTS) -> bool:
        """Make ``unit`` (a record as read) this process's if its owner is dead and it is still in
        one of ``states``; whether it now is. A unit this process owns already is not written to;
        one a live process owns is left to it (False)."""
        if owns(unit):
            return True
        if owner_alive(unit):
            return False
        return self.claim_unit(int(unit["id"]), me(), was=unit["owner"], states=states)

    def release_unit(self, unit_id: int, owner: str | None = None) -> bool:
        """Give up a unit ``owner`` (default: this process) still holds, so another process may
        take it over at once; whether it was held. A unit that is no longer awaiting results
        keeps its owner's name."""
        with self._atomic() as conn:
            cur = conn.execute(
                f"UPDATE batches SET owner = NULL, lease_until = NULL WHERE id = ? AND {_HELD}",
                (unit_id, owner or me(), *_AWAITING),
            )
            return cur.rowcount == 1

    def renew_leases(self, owner: str, until: str) -> int:
        """Extend every lease ``owner`` holds on a unit still in flight; how many (a closed or
        read-only store, or one where ``owner`` holds nothing, is not written to)."""
        if (
            self._closed
            or self.readonly
            or not self._rows(f"SELECT 1 FROM batches WHERE {_HELD} LIMIT 1", (owner, *_AWAITING))
        ):
            return 0
        with self._atomic() as conn:
            return int(
                conn.execute(f"UPDATE batches SET lease_until = ? WHERE {_HELD}", (until, owner, *_AWAITING)).rowcount
            )
