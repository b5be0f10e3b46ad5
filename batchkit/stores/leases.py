"""Who owns a unit of work, and for how long: one rule for every process sharing a store.

A *unit* (a row of the store's ``batches`` table: a Message Batch, or a set of keys sent one by
one in realtime) has exactly one owner at a time. The owner is the process that planned it, or
that took it over; it is written on the unit as ``host:pid:nonce`` together with a **lease**, a
time (ISO-8601 UTC) until which the claim holds. While a process lives, a keeper thread of its
own renews the leases of every unit it owns, every :data:`RENEW_EVERY` seconds, so a live owner
keeps its units however long one of its calls takes; a dead owner stops renewing and loses them.

The rule (:func:`owner_alive`), for a unit another process owns:

* on this host, the owner's process id is looked up: a process that is gone has lost its units
  at once (a killed kernel's units are taken over by the next process that needs them, without
  waiting for the lease to run out), and a process that runs keeps them, whatever its lease
  says (a laptop that slept, or a store held busy by a long ``VACUUM``, must not make a live
  owner look dead);
* on another host (a store shared between machines), a lease that has run out is lost;
* otherwise the owner is alive, and a process that needs the unit's answers waits for them: it
  never sends the unit's requests again nor collects it as empty.

Taking a unit over is a compare-and-set on its owner
(:meth:`batchkit.stores.ownership.Ownership.take_over`), so of several processes that find the same
dead owner, exactly one wins. The verbs (claim, renew, release, take over): :mod:`batchkit.stores.ownership`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
import weakref
from pathlib import Path
from typing import Protocol

_log = logging.getLogger("batchkit")


class _Holder(Protocol):
    """A store this process may hold units in (:class:`batchkit.stores.store.Store`)."""

    path: Path

    def renew_leases(self, owner: str, until: str) -> int: ...


__all__ = ["LEASE_SECONDS", "RENEW_EVERY", "keep_leases", "lease_until", "me", "owner_alive"]

LEASE_SECONDS = 120.0
"""How long a claim holds without renewal: a live process renews far more often than this."""

RENEW_EVERY = 20.0
"""Seconds between a process's renewals of the leases it holds."""


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_ME = _identity()


def _forked() -> None:  # a forked child is a new owner: it holds none of its parent's units
    global _ME
    _ME = _identity()
    _KEEPER.forget_after_fork()


def me() -> str:
    """This process, as written on the units it owns."""
    return _ME


def lease_until(seconds: float = LEASE_SECONDS) -> str:
    """The lease a claim made now holds until, as stored (ISO-8601 UTC, comparable as text)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return until.isoformat(timespec="microseconds").replace("+00:00", "Z")


def owner_alive(owner: str | None, lease: str | None = None) -> bool:
    """Whether the process that wrote ``owner`` (with its ``lease``) still owns its unit.

    A unit with no lease was planned by a batchkit from before leases: its owner is judged by
    its process id alone (alive on this host while the process runs; on another host, dead).
    """
    if not owner:
        return False
    if owner == _ME:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        # Another machine: its lease says (a live owner renews it far more often than it runs out).
        return lease is not None and lease > lease_until(0)
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # an earlier life of this pid (or the parent of a fork), not this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Keeper:
    """The thread that renews this process's leases in every store it has units in."""

    def __init__(self) -> None:
        self._stores: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def keep(self, store: _Holder) -> None:
        with self._lock:
            self._stores.add(store)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="batchkit-leases", daemon=True)
                self._thread.start()

    def forget_after_fork(self) -> None:
        self._stores = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread = None
        self._wake = threading.Event()

    def _run(self) -> None:
        while not self._wake.wait(RENEW_EVERY):
            with self._lock:
                stores = list(self._stores)
            for store in stores:
                # A store that is busy now is renewed next time (a lease outlasts several
                # renewals); a closed one holds nothing of ours any more.
                try:
                    store.renew_leases(_ME, lease_until())
                except Exception as exc:  # said, not raised: this thread has no caller
                    _log.warning("batchkit could not renew its leases in %s: %s", getattr(store, "path", "?"), exc)


_KEEPER = _Keeper()
os.register_at_fork(after_in_child=_forked)


def keep_leases(store: _Holder) -> None:
    """Renew this process's leases in ``store`` for as long as the process lives."""
    _KEEPER.keep(store)
