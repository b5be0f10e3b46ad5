"""Removing jobs from the job store (:meth:`batchkit.Store.forget`, :meth:`~batchkit.Store.prune`).

What a job holds: its ``jobs`` row (with its fingerprint, by which a re-run finds it), its units
(rows of ``batches``: Message Batches, realtime units and the groups of answers they stored),
their request bodies (``batch_requests``), their results (``batch_results``) and its place in
partitioned runs (``run_parts``; a run left with no partition goes too). All of it goes, in one
transaction, except what another job still needs:

- **Answers are shared by request key.** A job that found its answers in the store (a re-run
  with an edited prompt, a run over overlapping rows) holds none of its own: they sit in the
  results of the job that paid for them. So the results of a removed job that a remaining job's
  rows need are *kept*: their unit (and, for a group of realtime answers, the unit holding the
  bodies) passes to that remaining job, which from then on counts them as its own — in
  ``job.cost`` too, since nobody else is left to have paid for them. :class:`Removal` says so.
- **In flight** is a unit in an active state (:data:`~batchkit.stores.schema.ACTIVE_STATES`, which the
  store passes in: planned or being created, in progress, canceling, ended but not yet collected). A job with one is
  refused unless forced; forced, the batch keeps running at the API (and is billed) and its
  answers are never collected.

Everything here works on one connection inside the caller's transaction; the store then makes
the file smaller (``VACUUM``) outside it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchkit.core.states import SendMode, UnitState
from batchkit.errors import InvalidOptionError, JobStateError, OptionTypeError

__all__ = ["Plan", "Removal", "apply", "in_flight_error", "parse_age", "plan"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "w": 7 * 86400}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*", re.IGNORECASE)
_GROUP_OF = re.compile(r"answers of unit (\d+)")


def parse_age(value: str | dt.timedelta) -> dt.timedelta:
    """An age from ``"30d"``, ``"12h"``, ``"90m"`` (also ``w`` and ``s``) or a ``timedelta``.

    Raises:
        InvalidOptionError: not such a duration, or not more than zero.
        OptionTypeError: neither a string nor a ``timedelta``.
    """
    fix = "give a duration such as 30d, 12h or 90m (days, hours, minutes; also w and s)"
    if isinstance(value, dt.timedelta):
        age = value
    elif isinstance(value, str):
        match = _AGE.fullmatch(value)
        if match is None:
            raise InvalidOptionError(f"older_than={value!r} is not a duration: {fix}", option="older_than")
        number = float(match.group(1))
        if not math.isfinite(number) or number * _UNITS[match.group(2).lower()] > dt.timedelta.max.total_seconds():
            raise InvalidOptionError(f"older_than={value!r} is too long: {fix}", option="older_than")
        age = dt.timedelta(seconds=number * _UNITS[match.group(2).lower()])
    else:
        raise OptionTypeError(
            f"older_than must be a string or a timedelta, not {type(value).__name__}: {fix}", option="older_than"
        )
    if age <= dt.timedelta(0):
        raise InvalidOptionError(f"older_than={value!r} is not more than zero: {fix}", option="older_than")
    return age


@dataclass
class Plan:
    """What removing some jobs takes away, and what it leaves for the jobs that remain."""

    jobs: list[str]
    units: dict[int, tuple[str, str | None, str]] = field(default_factory=dict)
    """Every unit of the removed jobs: id → (job id, API id, state)."""
    in_flight: dict[str, list[tuple[int, str | None, str, str]]] = field(default_factory=dict)
    """Job id → its units in an active state: (id, API id, state, mode)."""
    kept: dict[int, str] = field(default_factory=dict)
    """Units that stay because a remaining job needs their results: id → that job."""
    kept_results: dict[str, int] = field(default_factory=dict)
    """Remaining job → how many of its requests have results kept that way."""
    results_removed: int = 0
    payload_bytes: int = 0
    """Bytes of the bodies, keys and results that go (what the file can shrink by, roughly)."""
    runs: list[str] = field(default_factory=list)
    """Partitioned runs every part of which goes."""


def plan(conn: sqlite3.Connection, job_ids: Sequence[str], *, active: Iterable[str]) -> Plan:
    """What removing ``job_ids`` would take away (read only: nothing is written); ``active``: the
    states of a unit in flight."""
    gone = set(job_ids)
    out = Plan(jobs=list(job_ids))
    if not gone:
        return out
    awaiting = frozenset(active)
    groups = _units(conn, gone, awaiting, out)
    # Each key of the removed results → the results that hold it.
    results: dict[int, tuple[int, int]] = {}  # results id → (unit, number of results)
    holders: dict[str, list[int]] = {}
    for results_id, unit, n, blob in _select_in(
        conn, "SELECT id, batch_id, length(statuses), keys FROM batch_results WHERE batch_id IN ({})", list(out.units)
    ):
        results[results_id] = (unit, n)
        for key in bytes(blob).decode().split("\n") if blob else ():
            holders.setdefault(key, []).append(results_id)
    keep = _kept_results(conn, gone, holders, out) if holders else {}
    for results_id, job_id in keep.items():
        unit = results[results_id][0]
        out.kept[unit] = job_id
        body_unit = groups.get(unit)
        if body_unit in out.units and out.units[body_unit][2] not in (*awaiting, UnitState.FAILED):
            out.kept.setdefault(body_unit, job_id)  # its request bodies: what a retry re-sends
    out.results_removed = sum(n for results_id, (_, n) in results.items() if results_id not in keep)
    out.payload_bytes = _payload(conn, out, [r for r in results if r not in keep])
    parts: dict[str, bool] = {}  # run → whether every part of it goes
    for run_id, job_id in conn.execute("SELECT run_id, job_id FROM run_parts"):
        parts[run_id] = parts.get(run_id, True) and job_id in gone
    out.runs = sorted(run_id for run_id, every in parts.items() if every)
    return out


def _units(conn: sqlite3.Connection, gone: set[str], active: frozenset[str], out: Plan) -> dict[int, int]:
    """Fill in the removed jobs' units (and those in flight); a group of realtime answers → the
    unit holding its bodies."""
    groups: dict[int, int] = {}
    for unit, job_id, api_id, state, mode, error in _select_in(
        conn, "SELECT id, job_id, api_id, state, mode, error FROM batches WHERE job_id IN ({}) ORDER BY id", list(gone)
    ):
        out.units[unit] = (job_id, api_id, state)
        if state in active:
            out.in_flight.setdefault(job_id, []).append((unit, api_id, state, mode))
        found = _GROUP_OF.fullmatch(error or "")
        if found:
            groups[unit] = int(found.group(1))
    return groups


def _kept_results(conn: sqlite3.Connection, gone: set[str], holders: dict[str, list[int]], out: Plan) -> dict[int, str]:
    """The results a remaining job's rows need: they stay, and pass to it (the oldest such job)."""
    keep: dict[int, str] = {}
    for job_id, blob in conn.execute("SELECT job_id, row_keys FROM jobs ORDER BY created_at"):
        if job_id in gone:
            continue
        used = holders.keys() & set(bytes(blob).decode().split("\n"))  # a skipped row's '' is no key
        if used:
            out.kept_results[job_id] = len(used)
        for key in used:
            for results_id in holders[key]:
                keep.setdefault(results_id, job_id)
    return keep


_CHUNK = 500
"""Ids per ``IN (…)`` query (under SQLite's oldest variable limit, 999)."""


def _select_in(conn: sqlite3.Connection, sql: str, ids: Sequence[object]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` (one ``IN ({})``) for every id of ``ids``, a few hundred per query."""
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        yield from conn.execute(sql.format(",".join("?" * len(part))), part)


def _payload(conn: sqlite3.Connection, out: Plan, results_removed: Sequence[int]) -> int:
    """Bytes of the job rows, request bodies and results that go."""
    size = 0
    for (n,) in _select_in(conn, "SELECT length(row_keys) + length(spec) FROM jobs WHERE job_id IN ({})", out.jobs):
        size += int(n or 0)
    units = [unit for unit in out.units if unit not in out.kept]
    sql = "SELECT length(keys) + length(body) FROM batch_requests WHERE batch_id IN ({})"
    for (n,) in _select_in(conn, sql, units):
        size += int(n or 0)
    sql = (
        "SELECT length(keys) + length(statuses) + length(answers) + length(stop_reasons) + length(usage)"
        " + length(errors) FROM batch_results WHERE id IN ({})"
    )
    for (n,) in _select_in(conn, sql, results_removed):
        size += int(n or 0)
    return size


def apply(conn: sqlite3.Connection, removal: Plan) -> None:
    """Remove what ``removal`` plans, inside the caller's transaction."""
    conn.executemany(
        "UPDATE batches SET job_id = ? WHERE id = ?", [(job_id, unit) for unit, job_id in removal.kept.items()]
    )
    going = [(unit,) for unit in removal.units if unit not in removal.kept]
    # Ids are never given out again (SQLite would reuse the highest ones removed): a process
    # still holding one must not take a new unit or result set for the one it knew.
    for table, sql in (
        ("batches", "SELECT max(id) FROM batches"),
        ("batch_results", "SELECT max(id) FROM batch_results"),
    ):
        top = conn.execute(sql).fetchone()[0]
        if top is not None:
            conn.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET"
                " value = max(CAST(value AS INTEGER), excluded.value)",
                (f"{table}_id_floor", top),
            )
    # Child rows first, by hand: the same whether or not the connection enforces foreign keys.
    conn.executemany("DELETE FROM batch_results WHERE batch_id = ?", going)
    conn.executemany("DELETE FROM batch_requests WHERE batch_id = ?", going)
    conn.executemany("DELETE FROM batches WHERE id = ?", going)
    jobs = [(job_id,) for job_id in removal.jobs]
    conn.executemany("DELETE FROM run_parts WHERE job_id = ?", jobs)
    conn.executemany("DELETE FROM jobs WHERE job_id = ?", jobs)
    conn.executemany("DELETE FROM runs WHERE run_id = ?", [(run_id,) for run_id in removal.runs])
    if going:  # every process lets go of what it remembers of stored results (Store._after_removals)
        conn.execute(
            "INSERT INTO meta VALUES ('removals', '1') ON CONFLICT(name) DO UPDATE SET"
            " value = CAST(value AS INTEGER) + 1"
        )
    if going and conn.execute("SELECT 1 FROM result_index LIMIT 1").fetchone():
        # The on-disk key index points into the results that went: rebuilt from the rest when
        # next needed (:meth:`Store.sync_index`), in the order it was built.
        conn.execute("DELETE FROM result_index")
        conn.execute("DELETE FROM meta WHERE name = 'result_index_upto'")


def in_flight_error(removal: Plan, *, command: str) -> JobStateError:
    """Why jobs with units in flight are not removed, and the fixes (``command``: what was asked)."""

    def described(units: Iterable[tuple[int, str | None, str, str]]) -> str:
        return ", ".join(
            f"{api_id} {state}"
            if api_id
            else f"realtime unit {unit} {state}"
            if mode == SendMode.REALTIME
            else f"unit {unit} {state} (not created yet)"
            for unit, api_id, state, mode in units
        )

    jobs = removal.in_flight
    first = next(iter(jobs))
    if len(jobs) == 1:
        units = jobs[first]
        what = f"job {first} has {len(units)} batch{'es' * (len(units) != 1)} still in flight ({described(units)})"
        wait = f"wait for it (`batchkit wait {first}`), cancel it (`batchkit cancel {first}`)"
    else:
        what = f"{len(jobs)} jobs have batches still in flight: " + "; ".join(
            f"{job_id} ({described(units)})" for job_id, units in jobs.items()
        )
        wait = "wait for them (`batchkit wait JOB`), cancel them (`batchkit cancel JOB`)"
    return JobStateError(
        f"cannot {command}: {what}, and nothing was removed. {wait[0].upper()}{wait[1:]}, or pass --force "
        "(force=True) to remove it anyway: those batches keep running at the API (and are billed), and "
        "their answers are no longer collected",
        job_id=first,
    )


@dataclass(frozen=True)
class Removal:
    """What :meth:`~batchkit.stores.store.Store.forget` or :meth:`~batchkit.stores.store.Store.prune` removed
    (with ``dry_run``: would remove). ``str()`` of it is the report ``batchkit forget``/``prune`` print.
    """

    jobs: tuple[str, ...]
    """The jobs removed."""
    units: int
    """Their units removed (batches, realtime units and groups of realtime answers)."""
    results: int
    """Stored results removed (one per request: an answer, or how it failed)."""
    kept: dict[str, int]
    """Remaining job → how many of its requests have their results kept (they sat in a removed job's units)."""
    adopted: dict[str, int]
    """Remaining job → units of removed jobs kept for it (their results count as its own from then on,
    in ``job.cost`` too)."""
    abandoned: tuple[str, ...]
    """Units that were still in flight (``force=True``): API ids, or ``unit N`` if never created."""
    runs: tuple[str, ...]
    """Partitioned runs removed (every partition's job went)."""
    bytes_before: int
    """Size of the store's files (main file and ``-wal``) before."""
    bytes_after: int
    """… and after (``dry_run``: before, less what goes — an estimate)."""
    dry_run: bool = False
    path: str = ""
    in_flight: tuple[str, ...] = ()
    """``dry_run``: jobs among ``jobs`` that have batches in flight (removing them needs ``force``)."""
    not_shrunk: str | None = None
    """Why the file could not be made smaller after the removal (e.g. no room on the disk for
    ``VACUUM``'s copy), or None. What was removed stays removed; SQLite reuses its space."""

    @property
    def bytes_freed(self) -> int:
        return max(self.bytes_before - self.bytes_after, 0)

    def __str__(self) -> str:
        n = len(self.jobs)
        if not n:
            return "no job to remove: the store is unchanged"
        verb = "would remove" if self.dry_run else "removed"
        jobs = ", ".join(self.jobs[:5]) + (f", … ({n - 5:,} more)" if n > 5 else "")
        lines = [
            f"{verb} {n:,} job{'s' * (n != 1)} ({jobs}): {self.units:,} unit{'s' * (self.units != 1)} "
            f"(batches and realtime rounds), {self.results:,} stored result{'s' * (self.results != 1)}"
            + (f", {len(self.runs):,} partitioned run{'s' * (len(self.runs) != 1)}" if self.runs else "")
        ]
        for job_id, count in self.kept.items():
            lines.append(
                f"{'would keep' if self.dry_run else 'kept'} the stored results of {count:,} request"
                f"{'s' * (count != 1)} that job {job_id} still uses"
            )
        for job_id, count in self.adopted.items():
            passed = "would pass" if self.dry_run else "passed"
            lines.append(
                f"{count:,} unit{'s' * (count != 1)} holding them {passed} to job {job_id}: they count "
                "as its own from then on (its cost includes them)"
            )
        if self.abandoned:
            lines.append(
                f"{'would give' if self.dry_run else 'gave'} up on {len(self.abandoned)} unit"
                f"{'s' * (len(self.abandoned) != 1)} still in flight ({', '.join(self.abandoned)}): "
                "they keep running at the API and their answers are no longer collected"
            )
        if self.in_flight:
            lines.append(
                f"still in flight, so removing {'it' if len(self.in_flight) == 1 else 'them'} needs "
                f"--force: {', '.join(self.in_flight)}"
            )
        mb = 1e6
        if self.not_shrunk:
            lines.append(
                f"the file was not made smaller: {self.not_shrunk}. The space is reused by new jobs; "
                "Store.vacuum() (or the next forget or prune) shrinks it once there is room"
            )
        elif self.dry_run:
            lines.append(
                f"the store at {self.path} ({self.bytes_before / mb:,.1f} MB) would shrink by about "
                f"{self.bytes_freed / mb:,.1f} MB"
            )
        else:
            lines.append(
                f"the store at {self.path}: {self.bytes_before / mb:,.1f} MB → "
                f"{self.bytes_after / mb:,.1f} MB ({self.bytes_freed / mb:,.1f} MB freed)"
            )
        return "\n".join(lines)
