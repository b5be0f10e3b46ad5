"""The read side of a job: what its rows got back, as columns, counts and dollars.

:class:`ResultReader` is the part of :class:`batchkit.Job` that only reads the store, and owns
the caches that make reading cheap: the rows' outcomes as arrays over the job's distinct request
keys (a :class:`View`, kept current from newly stored results only), the keys still pending
(:class:`Pending`, what the worker waits for), each row's answer and status as plain arrays
(:meth:`~ResultReader.answers`, :meth:`~ResultReader.statuses`: what every front end builds its
columns from), the merged pandas frame, per-row outcomes, the summary and the actual cost. The
job's handle (:mod:`batchkit.engine.jobs`) holds one and answers its users' reads from it; the
worker (:mod:`batchkit.engine.worker`) asks it what is pending.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from batchkit._crash import crashpoint
from batchkit.backends.errors import AUTO_RETRY_ERRORS
from batchkit.core.options import JobSpec
from batchkit.core.results import ANSWERED, CODE_STATUS, STATUS_CODE, USAGE_FIELDS, Summary
from batchkit.core.states import JobState, SendMode
from batchkit.costs.accounting import EstimateRange, JobCost, request_costs
from batchkit.costs.pricing import CostBreakdown, kind_costs
from batchkit.errors import JobStateError, UnknownModelError
from batchkit.stores.digests import digests_of, members
from batchkit.stores.results import unpack

if TYPE_CHECKING:
    from batchkit.core.structured import OutputSpec
    from batchkit.stores.store import Store

__all__ = ["JobDigests", "Pending", "ResultReader", "View"]

_ERRORED, _INVALID = STATUS_CODE["errored"], STATUS_CODE["invalid_output"]
_EXPIRED = STATUS_CODE["expired"]
_SUCCEEDED = STATUS_CODE["succeeded"]


class View(NamedTuple):
    """A job's results at one version of the store: arrays over its distinct request keys."""

    codes: np.ndarray
    """Status code of each key's best result; 0 where none has come back yet."""
    positions: np.ndarray
    results_ids: np.ndarray
    attempts: np.ndarray


class JobDigests:
    """The digests of a job's distinct keys (:func:`batchkit.stores.digests.digests_of`), in
    their order and sorted, made when first asked: which units may carry them, in bulk.

    Shared by a job's reader and its :class:`Pending` keys, and holding nothing but the keys, so
    neither refers back to the reader: a job nobody holds is freed at once, not at the garbage
    collector's next full collection (a partitioned run lets go of a job per partition).
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys
        self._lock = threading.Lock()
        self._made: tuple[np.ndarray, np.ndarray] | None = None

    def get(self, *, ordered: bool = False) -> np.ndarray:
        with self._lock:
            if self._made is None:
                digests = digests_of(self.keys)
                self._made = (digests, np.sort(digests))
            return self._made[1] if ordered else self._made[0]


class Pending:
    """The keys a job still waits for, as a mask over its distinct keys.

    The worker asks every round whether anything is pending and, only for batches of other
    jobs, whether they carry a pending key: first by the keys' digests (a unit that carries none
    of the pending keys' digests carries none of the keys), then, only when one may, key by key —
    the set of keys is built for that alone.
    """

    def __init__(self, keys: Sequence[str], mask: np.ndarray, digests: JobDigests | None = None) -> None:
        self._keys = keys
        self._mask = mask
        self._set: set[str] | None = None
        self._all_digests = digests
        self._digests: np.ndarray | None = None

    def __bool__(self) -> bool:
        return bool(self._mask.any())

    def isdisjoint(self, other: Iterable[str]) -> bool:
        if self._set is None:
            keys = self._keys
            self._set = set(compress(keys, self._mask.tolist()))
        return self._set.isdisjoint(other)

    def may_share(self, unit: np.ndarray) -> bool:
        """Whether a unit whose keys have the sorted digests ``unit`` may carry a pending key
        (False: certainly none)."""
        if self._all_digests is None:
            return True
        if self._digests is None:
            self._digests = np.sort(self._all_digests.get()[self._mask])
        return bool(members(self._digests, unit).any())


class ResultReader:
    """Reading one job's results, with the caches that keep it cheap.

    ``record`` is the job's stored row, shared with its handle and worker (its ``status`` and
    ``row_keys`` change in place; :meth:`forget_layout` after new row keys).
    """

    def __init__(
        self, job_id: str, store: Store, record: dict[str, Any], spec: JobSpec, output_spec: OutputSpec | None
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.record = record
        self.output_spec = output_spec
        self.max_retries: int = spec.run.max_retries
        self.max_invalid_retries: int = spec.run.max_invalid_retries
        self._read_lock = threading.RLock()
        self._layout_cache: tuple[list[str], np.ndarray] | None = None
        self._digests_cache: JobDigests | None = None
        # (index version, layout keys, packed outcomes, view, key → position or None)
        self._view_cache: tuple[int, list[str], np.ndarray, View, dict[str, int] | None] | None = None
        self._pending_cache: tuple[View, str, Pending] | None = None
        self._summary_cache: tuple[View, str, Summary] | None = None
        self._cost_parts: dict[int, tuple[CostBreakdown, float, int, str]] = {}

    @property
    def model(self) -> str:
        return str(self.record["model"])

    @property
    def output(self) -> str:
        return str(self.record["output"])

    @property
    def row_keys(self) -> list[str | None]:
        row_keys: list[str | None] = self.record["row_keys"]
        return row_keys

    @property
    def skipped(self) -> dict[int, str]:
        skipped: dict[int, str] = self.record["skipped"]
        return skipped

    def forget_layout(self) -> None:
        """The job's row keys changed (a retry of truncated rows): lay them out again."""
        self._layout_cache = None

    def layout(self) -> tuple[list[str], np.ndarray]:
        """The job's distinct keys, and for each row the position of its key (-1 if skipped)."""
        with self._read_lock:  # the worker and a progress view ask at the same moment
            if self._layout_cache is None:
                positions, keys = pd.factorize(np.array(self.row_keys, dtype=object))  # None → -1
                self._layout_cache = (keys.tolist(), positions.astype(np.int64, copy=False))
            return self._layout_cache

    def key_digests(self) -> JobDigests:
        """The digests of the job's distinct keys, in :meth:`layout` order or sorted."""
        with self._read_lock:
            keys, _ = self.layout()
            if self._digests_cache is None or self._digests_cache.keys is not keys:
                self._digests_cache = JobDigests(keys)
            return self._digests_cache

    def view(self) -> View:
        """The job's results as arrays, brought up to date from results stored since last time.

        Built from the store's index; after that only the keys of newly stored batch results are
        looked at (unless they are a good part of the job, when one pass over the index is
        cheaper), so a job of N rows over B batches costs O(N), not O(N·B).
        """
        if self.store.index_on_disk:
            return self._view_on_disk()
        with self._read_lock:
            index = self.store.index()
            version = self.store.index_version
            keys, _ = self.layout()
            cache = self._view_cache
            new: list[tuple[int, int]] | None = None  # (id, size) of each batch stored since
            if cache is not None and cache[1] is keys:
                if cache[0] == version:
                    return cache[3]
                new = self.store.results_since(cache[0], version)
            if cache is None or new is None or sum(n for _, n in new) * 4 > len(keys):
                packed = np.fromiter(map(index.get, keys, repeat(0)), dtype=np.int64, count=len(keys))
                position = cache[4] if cache is not None and new is not None else None
            else:
                _, _, packed, _, position = cache
                if position is None:
                    position = dict(zip(keys, range(len(keys)), strict=True))
                for results_id, _ in new:
                    mine = [k for k in self.store.result_keys(results_id) if k in position]
                    if mine:
                        packed[[position[k] for k in mine]] = [index[k] for k in mine]
            self._view_cache = (version, keys, packed, View(*unpack(packed)), position)
            return self._view_cache[3]

    def _view_on_disk(self) -> View:
        """:meth:`_view` from the store's on-disk index (a partitioned run's jobs): the job's keys
        are looked up once; after that only those among the keys of newly stored results."""
        with self._read_lock:
            version = self.store.sync_index()
            keys, _ = self.layout()
            cache = self._view_cache
            position = None
            if cache is not None and cache[1] is keys:
                if cache[0] == version:
                    return cache[3]
                _, _, packed, _, position = cache
                if position is None:
                    position = dict(zip(keys, range(len(keys)), strict=True))
                self._take_new_results(packed, position, cache[0], version)
            else:
                packed = self.store.lookup(keys)
            self._view_cache = (version, keys, packed, View(*unpack(packed)), position)
            return self._view_cache[3]

    def _take_new_results(self, packed: np.ndarray, position: dict[str, int], since: int, version: int) -> None:
        """Bring ``packed`` (the job's outcomes as of index version ``since``) up to ``version``: a key
        whose first result came since takes it as it came (no lookup: a partition's own batch is
        most of its keys); only a key with an earlier result is looked up again, merged."""
        keys = self.layout()[0]
        again: set[str] = set()
        for results_id, unit, intent_at in self.store.results_units_since(since, version):
            if intent_at is not None and not self.may_carry({"id": unit, "intent_at": intent_at}):
                continue  # another job's unit, carrying none of this job's keys
            result_keys, outcomes = self.store.first_outcomes(results_id)
            rows = np.fromiter(map(position.get, result_keys, repeat(-1)), dtype=np.int64, count=len(result_keys))
            mine = rows >= 0
            rows, outcomes = rows[mine], outcomes[mine]
            first = packed[rows] == 0
            packed[rows[first]] = outcomes[first]
            again.update(keys[i] for i in rows[~first].tolist())
        if again:
            mine_again = list(again)
            packed[[position[k] for k in mine_again]] = self.store.lookup(mine_again)

    def may_carry(self, unit: Mapping[str, Any]) -> bool:
        """Whether ``unit`` (its id and intent time) may carry one of the job's keys (False: certainly none)."""
        return bool(members(self.key_digests().get(ordered=True), self.store.unit_digests(unit)).any())

    def gather(self, view: View, select: np.ndarray, what: str) -> np.ndarray:
        """One field (``answers``, ``stop_reasons``, ``messages`` or ``usage``) per distinct key.

        Only keys where ``select`` is true are read; the others get None (or zero usage).
        """
        n = len(view.codes)
        out: np.ndarray
        if what == "usage":
            out = np.zeros((n, len(USAGE_FIELDS)), dtype=np.int64)
        else:
            out = np.full(n, None, dtype=object)
        select = select & (view.codes != 0)
        for results_id in np.unique(view.results_ids[select]):
            rows = np.flatnonzero(select & (view.results_ids == results_id))
            positions = view.positions[rows]
            cols = self.store.columns(int(results_id))
            if what == "usage":
                out[rows] = cols.usage[positions]
            elif what == "messages":
                out[rows] = [cols.errors.get(int(p), (None, None))[1] for p in positions]
            else:
                values = np.empty(len(cols), dtype=object)
                values[:] = getattr(cols, what)
                out[rows] = values[positions]
        return out

    def summary(self) -> Summary:
        """Rows by status, and failed rows by error type."""
        view = self.view()
        cached = self._summary_cache
        if cached is not None and cached[0] is view and cached[1] == self.record["status"]:
            return cached[2]  # nothing came back since: a progress view asks every second
        summary = self._summarize(view)
        self._summary_cache = (view, self.record["status"], summary)
        return summary

    def _summarize(self, view: View) -> Summary:
        keys, row_pos = self.layout()
        sent = row_pos[row_pos >= 0]
        rows_per_key = np.bincount(sent, minlength=len(keys))
        by_code = np.bincount(view.codes, weights=rows_per_key, minlength=256)
        canceled = self.record["status"] == JobState.CANCELED
        by_status: dict[str, int] = {}
        for code in np.flatnonzero(by_code):
            status = "pending" if code == 0 else CODE_STATUS[int(code)]
            if status == "pending" and canceled:
                status = "canceled"
            by_status[status] = by_status.get(status, 0) + int(by_code[code])
        if self.skipped:
            by_status["skipped"] = len(self.skipped)
        errors: Counter[str] = Counter()
        error_type = self.store.error_type
        for i in np.flatnonzero(np.isin(view.codes, (_ERRORED, _INVALID))):
            errors[error_type(keys[i]) or "unknown_error"] += int(rows_per_key[i])
        return Summary(len(row_pos), by_status, dict(errors.most_common()))

    def failure_counts(self) -> list[tuple[str, str, str, int]]:
        """``(status, error type, message, rows)`` of the rows that failed, most rows first.

        Errored and ``invalid_output`` rows by their error; expired rows as one group.
        """
        keys, row_pos = self.layout()
        view = self.view()
        rows_per_key = np.bincount(row_pos[row_pos >= 0], minlength=len(keys))
        failed = np.isin(view.codes, (_ERRORED, _INVALID, _EXPIRED))
        if not failed.any():
            return []
        messages = self.gather(view, failed & (view.codes != _EXPIRED), "messages")
        counts: Counter[tuple[str, str, str]] = Counter()
        error_type = self.store.error_type
        for i in np.flatnonzero(failed):
            code = int(view.codes[i])
            if code == _EXPIRED:
                group = ("expired", "expired", "the batch ended (24 h) before this request was processed")
            else:
                group = (CODE_STATUS[code], error_type(keys[i]) or "unknown_error", str(messages[i] or ""))
            counts[group] += int(rows_per_key[i])
        return [(*group, n) for group, n in counts.most_common()]

    def answers(self) -> np.ndarray:
        """Each row's usable answer text, in row order: an object array of ``str``, None where the
        row has none (skipped, failed, not back yet; for ``classify``/``extract`` also an
        answer that failed its schema). Structured answers are their JSON text.

        What every front end builds its output column(s) from (:meth:`to_frame` for pandas);
        :meth:`statuses` says why a row has none.
        """
        _, row_pos = self.layout()
        view = self.view()
        usable = (_SUCCEEDED,) if self.output_spec is not None else tuple(ANSWERED)
        answers = self.gather(view, np.isin(view.codes, usable), "answers")
        per_row: np.ndarray = np.append(answers, [None])[row_pos]  # -1 (skipped) picks the trailing None
        return per_row

    def statuses(self) -> np.ndarray:
        """Each row's status, in row order, as an object array of strings: ``succeeded``,
        ``truncated``, ``errored``, ``expired``, ``canceled``, ``invalid_output``, ``skipped``, or
        ``pending`` while its request has no result yet (``canceled`` once the job was)."""
        _, row_pos = self.layout()
        view = self.view()
        names = np.full(256, None, dtype=object)
        for code, status in CODE_STATUS.items():
            names[code] = status
        names[0] = "canceled" if self.record["status"] == JobState.CANCELED else "pending"
        per_row: np.ndarray = np.append(names[view.codes], ["skipped"])[row_pos]
        return per_row

    def output_values(self) -> dict[str, list[Any]]:
        """Each output column's value per row, in row order, None where a row has no usable
        answer: ``{output: answer texts}`` for free text; for ``classify``/``extract`` each
        field's parsed value (:meth:`~batchkit.core.structured.OutputSpec.values`). A front end types
        these in its own library's dtypes.
        """
        answers = self.answers()
        if self.output_spec is None:
            return {self.output: answers.tolist()}
        return self.output_spec.values(answers.tolist())

    def to_frame(self, frame: pd.DataFrame | None) -> pd.DataFrame:
        """``frame`` with the output column(s) added (a new frame; the input is untouched); with
        no frame, the columns on a plain row-number index. The pandas front end's view of :meth:`answers`."""
        _, row_pos = self.layout()
        self.view()  # results read before the merge point (crash tests stop there)
        crashpoint("merging")
        if frame is None:
            index: pd.Index = pd.RangeIndex(len(row_pos), name="row")
            out = pd.DataFrame(index=index)
        else:
            if len(frame) != len(row_pos):
                raise JobStateError(
                    f"job {self.job_id} has {len(row_pos):,} rows but this frame has {len(frame):,}", job_id=self.job_id
                )
            index = frame.index
            out = frame.copy(deep=False)
        per_row = self.answers()
        out.attrs = {**out.attrs, **self.attrs()}  # a new dict: the caller's frame keeps its own
        if self.output_spec is None:
            out[self.output] = pd.array(per_row, dtype="string")
            return out
        for name, column in self.output_spec.frame(list(per_row), index).items():
            out[name] = column.array
        return out

    def attrs(self) -> dict[str, str]:
        """What a returned frame carries in ``attrs`` to find its job again (:meth:`Job.of`).

        Two short strings: pandas copies ``attrs`` on most operations and writes them to Parquet,
        so nothing else (no object, no connection) is put there.
        """
        return {"batchkit_job_id": self.job_id, "batchkit_store": str(self.store.path)}

    def cost(self, answered_twice: int = 0) -> JobCost:
        """What this job's batches were billed, from the usage in every result they returned.

        Counts every billed result of the job's own batches (answers, truncated answers, and
        answers that failed validation — the model did produce them); errored, expired and
        canceled requests are not billed. Rows answered from the store cost nothing.
        """
        mine = self.store.results_of_job(self.job_id)
        breakdown, standard, paid = CostBreakdown(), 0.0, 0
        by_mode: dict[str, tuple[float, int]] = {}
        unpriced = [r for r in mine if r not in self._cost_parts]
        modes = self.store.results_modes(unpriced) if unpriced else {}
        for results_id in mine:
            part = self._cost_parts.get(results_id)
            if part is None:  # stored results never change: price each batch once
                part = self._cost_parts[results_id] = self.price_results(results_id, modes.get(results_id, "batch"))
            breakdown, standard, paid = breakdown + part[0], standard + part[1], paid + part[2]
            dollars, count = by_mode.get(part[3], (0.0, 0))
            by_mode[part[3]] = (dollars + part[0].total, count + part[2])
        view = self.view()
        answered = np.isin(view.codes, tuple(ANSWERED))
        reused = int((answered & ~np.isin(view.results_ids, mine)).sum())
        lost = len(self.store.lost_responses(self.job_id))
        realtime_dollars, realtime_count = by_mode.get(SendMode.REALTIME, (0.0, 0))
        return JobCost(
            self.model,
            breakdown,
            paid,
            reused,
            standard,
            EstimateRange.from_json(self.record["spec"].get("estimate")),
            by_mode={m: by_mode[m] for m in sorted(by_mode)},
            answered_twice=answered_twice,
            lost_responses=lost,
            lost_cost=lost * realtime_dollars / realtime_count if realtime_count else 0.0,
        )

    def price_results(self, results_id: int, mode: str = SendMode.BATCH) -> tuple[CostBreakdown, float, int, str]:
        """(price by kind at the mode it was paid at, standard-API price, billed requests, mode) of one
        stored result set."""
        billed = (STATUS_CODE["succeeded"], STATUS_CODE["truncated"], _INVALID)
        statuses, usage = self.store.result_usage(results_id)
        usage = usage[np.isin(statuses, billed)]
        if not len(usage):
            return CostBreakdown(), 0.0, 0, mode
        paid = kind_costs(usage, self.model, batch=mode == SendMode.BATCH).sum(axis=0)
        prompt = usage[:, [0, 2, 3, 4]].sum(axis=1)  # every prompt token at the input price, no discount
        plain = np.column_stack([prompt, usage[:, 1], np.zeros((len(usage), 3), dtype=usage.dtype)])
        standard = float(request_costs(plain, self.model, batch=False).sum())
        return CostBreakdown(*map(float, paid)), standard, len(usage), mode

    def key_modes(self, view: View) -> np.ndarray:
        """The mode each key's answer was paid at (``batch``/``realtime``; None: no result yet)."""
        out = np.full(len(view.codes), None, dtype=object)
        has = view.codes != 0
        if not has.any():
            return out
        ids = view.results_ids[has]
        unique = np.unique(ids)
        found = self.store.results_modes(int(i) for i in unique)
        table = np.array([found.get(int(i), "batch") for i in unique], dtype=object)
        out[has] = table[np.searchsorted(unique, ids)]
        return out

    def outcomes(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per input row: status, error, stop reason, tokens, attempts, cost and request key.

        ``cost`` is in dollars, on the first row that asked each request this job paid for (rows
        that repeat a request, or whose answer was already in the store, show 0), so the column
        sums to what the job paid for its answers. ``frame``: the caller's, whose index the rows take.
        """
        keys, row_pos = self.layout()
        view = self.view()
        canceled = self.record["status"] == JobState.CANCELED
        key_status = np.array(
            [("canceled" if canceled else "pending") if c == 0 else CODE_STATUS[int(c)] for c in view.codes],
            dtype=object,
        )
        failed = np.isin(view.codes, (_ERRORED, _INVALID))
        error_types = np.full(len(keys), None, dtype=object)
        error_types[failed] = [self.store.error_type(keys[i]) for i in np.flatnonzero(failed)]
        everything = np.ones(len(keys), dtype=bool)
        messages = self.gather(view, failed, "messages")
        usage = self.gather(view, everything, "usage")
        skipped_rows = row_pos < 0
        pick = np.where(skipped_rows, 0, row_pos)

        def per_row(values: np.ndarray, fill: Any) -> np.ndarray:
            out = values[pick] if len(values) else np.full(len(row_pos), fill, dtype=values.dtype)
            if skipped_rows.any():
                out = out.copy()
                out[skipped_rows] = fill
            return out

        key_modes = self.key_modes(view)
        first = np.zeros(len(row_pos), dtype=bool)  # a request's cost goes on the first row that asked it
        sent_rows = np.flatnonzero(row_pos >= 0)
        first[sent_rows[np.unique(row_pos[sent_rows], return_index=True)[1]]] = True
        out = pd.DataFrame(
            {
                "status": per_row(key_status, "skipped"),
                "error_type": per_row(error_types, None),
                "error_message": per_row(messages, None),
                "stop_reason": per_row(self.gather(view, everything, "stop_reasons"), None),
                **{name: per_row(usage[:, i], 0) for i, name in enumerate(USAGE_FIELDS)},
                "attempts": per_row(view.attempts, 0),
                "cost": np.where(first, per_row(self._key_costs(view, usage, key_modes), 0.0), 0.0),
                "mode": per_row(key_modes, None),
                "request_key": per_row(np.array(keys, dtype=object), None),
            }
        )
        if self.skipped:
            reasons = out["error_message"].to_numpy(copy=True)
            for pos, reason in self.skipped.items():
                reasons[pos] = reason
            out["error_message"] = reasons
        if frame is not None and len(frame) == len(out):
            out.index = frame.index
        out.attrs = self.attrs()
        return out

    def _key_costs(self, view: View, usage: np.ndarray, key_modes: np.ndarray) -> np.ndarray:
        """What this job paid for each key's answer, at the mode it was paid at (0 for answers it
        did not pay for; NaN for a model with no price)."""
        own = self.store.results_of_job(self.job_id)
        mine = np.isin(view.results_ids, own) & (view.codes != 0)
        try:
            key_cost = request_costs(usage, self.model)
            realtime = key_modes == SendMode.REALTIME
            if realtime.any():
                key_cost[realtime] = request_costs(usage[realtime], self.model, batch=False)
            return np.where(mine, key_cost, 0.0)
        except UnknownModelError:
            return np.full(len(view.codes), np.nan)

    # ------------------------------------------------------------------ what is pending

    def retry_mask(self, view: View) -> np.ndarray:
        """Which keys the worker should resubmit by itself (transient failures, expiries, invalid)."""
        mask = np.zeros(len(view.codes), dtype=bool)
        if self.record["status"] != JobState.RUNNING:
            return mask
        mask |= (view.codes == _INVALID) & (view.attempts <= self.max_invalid_retries)
        mask |= (view.codes == _EXPIRED) & (view.attempts <= self.max_retries)
        errored = np.flatnonzero((view.codes == _ERRORED) & (view.attempts <= self.max_retries))
        if len(errored):
            keys, _ = self.layout()
            error_type = self.store.error_type
            mask[[i for i in errored if error_type(keys[i]) in AUTO_RETRY_ERRORS]] = True
        return mask

    def pending(self) -> Pending:
        """Keys still waiting for a final result: none yet, or one the worker will resubmit."""
        view = self.view()
        cached = self._pending_cache
        if cached is not None and cached[0] is view and cached[1] == self.record["status"]:
            return cached[2]
        keys, _ = self.layout()
        pending = Pending(keys, (view.codes == 0) | self.retry_mask(view), self.key_digests())
        self._pending_cache = (view, self.record["status"], pending)
        return pending
