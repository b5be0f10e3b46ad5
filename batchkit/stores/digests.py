"""A compact summary of the stored request keys: which keys are certainly not stored, in bulk.

A partitioned run asks the store, for every partition, which of its keys are already answered —
usually none of them: a new partition's keys are new. Asking SQLite's on-disk index costs about
2 µs a key, and keeping that index filled about 3.5 µs a stored result; this summary answers
"certainly not stored" for a whole partition at once with numpy, so a partition of new keys never
touches the on-disk index, and the on-disk index is filled only when a lookup finds a possible hit
(:meth:`batchkit.stores.results.Results.lookup`).

The summary is each stored key's 64-bit digest, kept as a few sorted numpy arrays (8 bytes a key:
40 MB at 5,000,000 stored results), merged as they grow up to :data:`MERGE_LIMIT` digests an array
(each digest is copied about log₂ of the number of arrays times). A request key is 32 hex digits
of a BLAKE2b digest, so its digest is its first 16 hex digits, read straight from the keys' bytes;
any other string (a key written by hand) gets a BLAKE2b digest of its own. A digest found is only a
*possible* hit — two keys may share one — and is confirmed against the real key on disk; a digest
not found means the key was never stored.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable, Hashable, Sequence

import numpy as np

__all__ = ["MERGE_LIMIT", "KeyDigests", "UnitDigests", "digests_of", "digests_of_blob", "members"]

_WIDTH = 32
"""Characters of a request key (:func:`batchkit.core.keys.request_key`)."""
_HEX_DIGITS = frozenset("0123456789abcdef")
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i


def _digest(key: str) -> int:
    """One key's digest: the first 16 hex digits of a request key, else a BLAKE2b digest of the key."""
    if len(key) == _WIDTH and _HEX_DIGITS.issuperset(key[:16]):
        return int(key[:16], 16)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def digests_of_blob(blob: bytes, n: int) -> np.ndarray:
    """The digests (uint64) of ``n`` keys joined by newlines, as stored (:func:`batchkit.core.keys.encode_keys`).

    Request keys are read as one ``(n, 33)`` byte array — no Python step per key; a blob with any
    other key is taken a key at a time (:func:`_digest`), with the same result for each key.
    """
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if len(blob) == n * (_WIDTH + 1) - 1:
        rows = np.frombuffer(blob + b"\n", dtype=np.uint8).reshape(n, _WIDTH + 1)
        nibbles = _NIBBLE[rows[:, :16]]
        if (rows[:, _WIDTH] == 10).all() and (nibbles != 255).all():
            packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # (n, 8) bytes, most significant first
            return np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)
    return np.fromiter(map(_digest, blob.decode().split("\n")), dtype=np.uint64, count=n)


def digests_of(keys: Sequence[str]) -> np.ndarray:
    """The digests (uint64) of ``keys``."""
    return digests_of_blob("\n".join(keys).encode(), len(keys))


MERGE_LIMIT = 1 << 20
"""Digests an array of :class:`KeyDigests` grows to by merging (8 MB). A merge holds both arrays and
the merged one for a moment: without a limit, a run's last merges (3,200,000 digests at 5,000,000
stored keys) made transient peaks that grow with the store, where a run's memory should not. Asking
a few more arrays costs about 4 ms a partition of 100,000 keys for each 1,000,000 stored keys."""


class KeyDigests:
    """The digests of a set of keys, as sorted arrays: add in bulk, ask in bulk.

    >>> summary = KeyDigests()
    >>> summary.add(digests_of(["0123456789abcdef0123456789abcdef"]))
    >>> summary.may_contain(digests_of(["0123456789abcdef0123456789abcdef", "x"])).tolist()
    [True, False]
    """

    def __init__(self, merge_limit: int = MERGE_LIMIT) -> None:
        self.merge_limit = merge_limit
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        """Digests held (a key added twice counts twice)."""
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self._runs)

    def add(self, digests: np.ndarray) -> None:
        """Take in more digests. The arrays are kept from largest to smallest; a new one is merged
        with those no larger than it while the merged array stays within ``merge_limit`` digests,
        so there are about log₂(limit / smallest addition) small ones and one per ``merge_limit``
        keys beyond that."""
        run = np.sort(digests.astype(np.uint64, copy=False))
        while self._runs and len(self._runs[-1]) <= len(run) and len(self._runs[-1]) + len(run) <= self.merge_limit:
            # Two sorted arrays one after the other: a stable sort (timsort) merges them in one
            # pass, in place (the two are let go first: at most twice the merged size is held).
            run = np.concatenate((self._runs.pop(), run))
            run.sort(kind="stable")
        if len(run):
            self._runs.append(run)

    def may_contain(self, digests: np.ndarray) -> np.ndarray:
        """For each digest, whether it was added (True: possibly a stored key; False: certainly not)."""
        found = np.zeros(len(digests), dtype=bool)
        if not len(digests) or not self._runs:
            return found
        order = np.argsort(digests)
        wanted = digests[order]  # in order, each search starts where the last ended: ~3x quicker
        hit = np.zeros(len(digests), dtype=bool)
        for run in self._runs:
            hit |= members(wanted, run)
        found[order] = hit
        return found


def members(wanted: np.ndarray, held: np.ndarray) -> np.ndarray:
    """For each digest of ``wanted`` (sorted), whether the sorted array ``held`` has it."""
    if not len(held) or not len(wanted):
        return np.zeros(len(wanted), dtype=bool)
    at = np.searchsorted(held, wanted)
    at[at == len(held)] = len(held) - 1
    found: np.ndarray = held[at] == wanted
    return found


class UnitDigests:
    """The sorted digests of units' keys: "does this unit carry any of these keys?" in bulk, with
    no Python step per key.

    A unit's keys never change, so they are digested once (about 10 ms for 100,000 keys, where
    decoding them into a set of strings took 22 ms every time it was asked) and kept for the units
    used last, up to ``limit`` digests in all (8 bytes each; a run's units in flight, and those
    whose results its jobs read). A unit is named by its id and the time of its intent: an id given
    out again after a rolled-back transaction names another unit.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self._held: collections.OrderedDict[Hashable, np.ndarray] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, unit: Hashable, keys_blob: Callable[[], bytes]) -> np.ndarray:
        """The sorted digests of ``unit``'s keys (``keys_blob``: its keys joined by newlines, read once)."""
        with self._lock:
            found = self._held.get(unit)
            if found is not None:
                self._held.move_to_end(unit)
                return found
        blob = keys_blob()
        found = np.sort(digests_of_blob(blob, blob.count(b"\n") + 1 if blob else 0))
        with self._lock:
            if unit not in self._held:
                self._held[unit] = found
                self._size += len(found)
            while self._size > self.limit and len(self._held) > 1:
                self._size -= len(self._held.popitem(last=False)[1])
        return found
