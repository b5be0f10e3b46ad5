"""A job's life over the Message Batches API: submit, poll, collect, retry, cancel.

A :class:`Job` is one call of ``df.claude.batch`` / ``submit`` written down in the store. Its
state lives in the store, not in this object, so a job can be re-attached from any process:
re-running the same call finds the job by its fingerprint (the hash of every row's request
key), and :meth:`Job.load` finds it by id.

Each job has at most one worker thread per process. The worker creates the batches the store
says are planned, polls them with backoff, streams each ended batch's results into the store
in one transaction, and resubmits transient failures. The caller's thread only plans (pure
work plus one store transaction) and waits, so a notebook cell stays interruptible and a
KeyboardInterrupt detaches without cancelling anything.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import anthropic
import numpy as np
import pandas as pd

from . import backend
from .errors import BatchkitWarning, JobNotFoundError, JobStateError, RequestTooLargeError
from .requests import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    Plan,
    RequestTemplate,
    build_template,
    chunk_requests,
    plan_requests,
    render_prompts,
)
from .results import (
    TRANSIENT_ERRORS,
    Outcome,
    Summary,
    answer_column,
    iter_lines,
    parse_result_line,
    summarize,
)
from .store import ACTIVE_STATES, Store, decode_keys
from .structured import OutputSpec

__all__ = ["Job", "fingerprint", "jobs", "open_job", "warn_failures"]

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process, as written on the batches it is about to create."""

RETRYABLE_STATUS = frozenset({"expired"})


def _crashpoint(name: str) -> None:
    """Die here, as a killed kernel would, when ``BATCHKIT_CRASH_AT`` names this point.

    A fault-injection hook for the recovery tests: they run a job in a child process that is
    SIGKILLed at each point of the lifecycle, then resume it from a fresh process.
    """
    if os.environ.get("BATCHKIT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _owner_alive(owner: str | None) -> bool:
    """Whether the process that wrote ``owner`` may still be creating its batch."""
    if not owner:
        return False
    if owner == OWNER:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: treat its intent as abandoned after reconciliation
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # an earlier life of this pid, not this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fingerprint(kind: str, output: str, row_keys: Sequence[str | None]) -> str:
    """The identity of a call: the same rows rendering the same requests, for the same output."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{kind}\x00{output}\x00{len(row_keys)}\x00".encode())
    h.update("\n".join(k or "" for k in row_keys).encode())
    return base64.b32encode(h.digest()).decode().lower()


class Job:
    """One ``df.claude`` call and everything it sent and got back.

    Create jobs with ``df.claude.submit(...)``; re-attach with :meth:`Job.load` or by
    re-running the same call.
    """

    _live: ClassVar[dict[tuple[str, str], Job]] = {}
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        job_id: str,
        *,
        store: Store,
        client: anthropic.Anthropic | None,
        frame: pd.DataFrame | None = None,
        bodies: Mapping[str, bytes] | None = None,
    ) -> None:
        record = store.load_job(job_id)
        if record is None:
            raise JobNotFoundError(f"no job {job_id!r} in the store at {store.path}", job_id=job_id)
        self.job_id = job_id
        self.store = store
        self._client = client
        self.frame = frame
        self._record = record
        self._bodies: dict[str, bytes] = dict(bodies or {})
        self._done = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._cache: dict[str, tuple[Any, ...]] = {}
        self._cache_version: tuple[int, int] | None = None
        spec = record["spec"]
        self._poll_interval: float | None = spec.get("poll_interval")
        self.max_retries: int = int(spec.get("max_retries", 2))
        self.max_invalid_retries: int = int(spec.get("max_invalid_retries", 1))
        self.output_spec = OutputSpec.from_json(spec["output_spec"]) if spec.get("output_spec") else None

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, resolved only when the job first needs the network."""
        if self._client is None:
            self._client = backend.resolve_client(None)
        return self._client

    # ------------------------------------------------------------------ identity

    @property
    def model(self) -> str:
        return str(self._record["model"])

    @property
    def output(self) -> str:
        return str(self._record["output"])

    @property
    def row_keys(self) -> list[str | None]:
        return self._record["row_keys"]

    @property
    def skipped(self) -> dict[int, str]:
        return self._record["skipped"]

    @property
    def created_at(self) -> str:
        return str(self._record["created_at"])

    def __repr__(self) -> str:
        return f"<batchkit.Job {self.job_id} {self.status}: {self.summary()}>"

    @classmethod
    def load(
        cls,
        job_id: str,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> Job:
        """Re-attach to a job by id, e.g. after a kernel restart.

        >>> job = Job.load("job_…")          # doctest: +SKIP
        >>> job.wait().to_frame(df)          # doctest: +SKIP
        """
        resolved = Store.resolve(store)
        live = cls._live.get((str(resolved.path), job_id))
        if live is not None:
            return live
        if resolved.load_job(job_id) is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in the store at {resolved.path}; batchkit.jobs() lists the jobs there",
                job_id=job_id,
            )
        return cls._attach(job_id, resolved, client)

    @classmethod
    def _attach(
        cls,
        job_id: str,
        store: Store,
        client: anthropic.Anthropic | None,
        *,
        frame: pd.DataFrame | None = None,
        bodies: Mapping[str, bytes] | None = None,
    ) -> Job:
        key = (str(store.path), job_id)
        with cls._live_lock:
            job = cls._live.get(key)
            if job is None:
                job = cls._live[key] = cls(job_id, store=store, client=client, frame=frame, bodies=bodies)
            elif frame is not None:
                job.frame = frame
        return job

    # ------------------------------------------------------------------ state

    def _records(self) -> dict[str, tuple[Any, ...]]:
        """The job's stored results by key, re-read only when the store has changed."""
        version = self.store.version()
        if self._cache_version != version:
            self._cache = self.store.results_for_job(self.job_id)
            self._cache_version = version
        return self._cache

    def summary(self) -> Summary:
        """Rows by status and failures by error type."""
        records = self._records()
        summary = summarize(self.row_keys, records, self.skipped)
        if self._record["status"] == "canceled" and summary.by_status.get("pending"):
            by_status = dict(summary.by_status)
            by_status["canceled"] = by_status.get("canceled", 0) + by_status.pop("pending")
            summary = Summary(summary.rows, by_status, summary.by_error)
        return summary

    @property
    def status(self) -> str:
        """``running`` while any row waits for an answer, then ``ended`` (or ``canceled``)."""
        stored = self.store.load_job(self.job_id)
        if stored is not None:
            self._record = stored
        return str(self._record["status"])

    @property
    def done(self) -> bool:
        return self.status != "running"

    def batches(self) -> pd.DataFrame:
        """The job's batches: API id, state, attempt, request count and timestamps."""
        rows = self.store.batches(job_id=self.job_id)
        frame = pd.DataFrame(
            rows,
            columns=[
                "id", "job_id", "api_id", "state", "owner", "attempt", "n_requests", "intent_at",
                "created_at", "ended_at", "expires_at", "request_counts", "error",
            ],
        )
        return frame.drop(columns=["job_id", "owner"])

    # ------------------------------------------------------------------ running

    def start(self) -> Job:
        """Run the worker in the background (idempotent). Returns the job."""
        with self._live_lock:
            if self._worker is not None and self._worker.is_alive():
                return self
            if self.status != "running":
                self._done.set()
                return self
            self._done.clear()
            self._error = None
            self._worker = threading.Thread(
                target=self._run, name=f"batchkit-{self.job_id}", daemon=True
            )
            self._worker.start()
        return self

    def _run(self) -> None:
        tick = 0
        schedule = backend.poll_schedule(self.client, self._poll_interval) if self._needs_network() else (0.0,)
        try:
            while True:
                if self._step():
                    break
                interval = schedule[min(tick, len(schedule) - 1)]
                tick += 1
                self._wake.wait(interval)
                self._wake.clear()
        except BaseException as exc:  # surfaced to the waiting thread
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> Job:
        """Block until every row has its final outcome. Returns the job.

        A KeyboardInterrupt detaches: the batches keep running and the worker keeps collecting;
        re-run the cell or call ``Job.load(job_id).wait()`` to pick up where it is.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the job keeps running).
        """
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._done.wait(0.1):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"job {self.job_id} is still running after {timeout} s; it keeps going — "
                        f"call .wait() again or batchkit.Job.load({self.job_id!r}) later"
                    )
        except KeyboardInterrupt:
            print(
                f"\nbatchkit: detached from job {self.job_id}. Its batches keep running and nothing "
                f"was cancelled. Re-run the cell, or batchkit.Job.load({self.job_id!r}).wait(), to "
                f"pick up the results; job.cancel() stops it.",
                file=sys.stderr,
            )
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self

    def cancel(self) -> Job:
        """Cancel every batch of the job still running; rows not yet answered end ``canceled``.

        Answers that came back before the cancel took effect are kept (and were paid for).
        """
        self.store.set_job_status(self.job_id, "canceled")
        self._record["status"] = "canceled"
        for batch in self.store.batches(job_id=self.job_id, states=("submitting", "in_progress")):
            if batch["api_id"]:
                canceled = backend.cancel_batch(self.client, batch["api_id"])
                self.store.update_batch(
                    batch["id"], state=_state_of(canceled), **backend.batch_fields(canceled)
                )
            elif batch["owner"] == OWNER or not _owner_alive(batch["owner"]):
                self._reconcile(batch, adopt_only=True)
        # Collect what the cancel left behind, so canceled rows are recorded as such.
        self._done.clear()
        self._worker = None
        self.start()
        self.wait()
        return self

    def retry(
        self,
        statuses: Iterable[str] = ("errored", "expired"),
        *,
        truncated: bool = False,
        max_tokens: int | None = None,
        wait: bool = True,
    ) -> Job:
        """Resubmit only the rows that ended with one of ``statuses``.

        ``truncated=True`` re-runs only the rows that stopped at ``max_tokens``, with the new
        ``max_tokens`` (required): those rows get new requests, so their old answers stay in
        the store untouched.
        """
        statuses = set(statuses)
        records = self._records()
        if truncated:
            if max_tokens is None:
                raise ValueError("retry(truncated=True) needs max_tokens=N, larger than the job's")
            return self._retry_truncated(records, max_tokens, wait=wait)
        keys = [k for k, r in records.items() if r[1] in statuses]
        if not keys:
            return self
        with self.store.atomic() as conn:
            in_flight = self.store.in_flight_keys(conn)
            keys = [k for k in keys if k not in in_flight]
            attempt = 1 + max((records[k][11] for k in keys), default=0)
            self._plan_batches(conn, keys, attempt)
            conn.execute("UPDATE jobs SET status = 'running' WHERE job_id = ?", (self.job_id,))
        self._record["status"] = "running"
        self._done.clear()
        self.start()
        return self.wait() if wait else self

    def _retry_truncated(self, records: Mapping[str, tuple[Any, ...]], max_tokens: int, *, wait: bool) -> Job:
        row_keys = list(self.row_keys)
        spec = self._record["spec"]
        if max_tokens <= int(spec.get("max_tokens", 0)):
            raise ValueError(f"max_tokens={max_tokens} is not more than the job's {spec.get('max_tokens')}")
        truncated_keys = {k for k, r in records.items() if r[1] == "truncated"}
        if not truncated_keys:
            return self
        old_bodies = self.store.request_bodies(sorted(truncated_keys))
        new_key_of: dict[str, str] = {}
        new_bodies: dict[str, bytes] = {}
        from .requests import request_key  # local: only this path re-keys requests

        import orjson

        for key, body in old_bodies.items():
            params = orjson.loads(body)
            params["max_tokens"] = max_tokens
            new_body = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
            new_key = request_key(new_body)
            new_key_of[key] = new_key
            new_bodies[new_key] = new_body
        row_keys = [new_key_of.get(k, k) if k else k for k in row_keys]
        with self.store.atomic() as conn:
            self.store.set_row_keys(conn, self.job_id, row_keys)
            self.store.add_requests(conn, new_bodies.items())
            answered = self._answered_in(conn, new_bodies)
            in_flight = self.store.in_flight_keys(conn)
            self._plan_batches(conn, [k for k in new_bodies if k not in answered and k not in in_flight], 1)
            conn.execute("UPDATE jobs SET status = 'running' WHERE job_id = ?", (self.job_id,))
        self._record = self.store.load_job(self.job_id) or self._record
        self._bodies.update(new_bodies)
        self._done.clear()
        self.start()
        return self.wait() if wait else self

    def _answered_in(self, conn: Any, keys: Iterable[str]) -> set[str]:
        return self.store.answered(keys)

    # ------------------------------------------------------------------ one round of work

    def _needs_network(self) -> bool:
        return bool(self._pending_keys()) or bool(self.store.batches(states=ACTIVE_STATES))

    def _step(self) -> bool:
        """Create planned batches, poll running ones, collect ended ones, plan retries."""
        self._create_planned()
        self._poll()
        if self._record["status"] == "running":
            self._plan_retries()
        return self._finish_if_done()

    def _job_keys(self) -> set[str]:
        return {k for k in self.row_keys if k is not None}

    def _pending_keys(self) -> set[str]:
        records = self._records()
        return {k for k in self._job_keys() if k not in records or self._retryable(records[k])}

    def _retryable(self, record: Sequence[Any]) -> bool:
        if self._record["status"] != "running":
            return False
        status, error_type, attempts = record[1], record[4], record[11]
        if status == "invalid_output":
            return int(attempts) <= self.max_invalid_retries
        if status in RETRYABLE_STATUS or (status == "errored" and error_type in TRANSIENT_ERRORS):
            return int(attempts) <= self.max_retries
        return False

    def _relevant(self, batch: Mapping[str, Any], pending: set[str]) -> bool:
        if batch["job_id"] == self.job_id:
            return True
        return not pending.isdisjoint(self.store.batch_keys(batch["id"]))

    def _create_planned(self) -> None:
        pending = self._pending_keys()
        priming = any(
            b["attempt"] == 0 and b["state"] in ACTIVE_STATES for b in self.store.batches(job_id=self.job_id)
        )
        for batch in self.store.batches(states=("submitting",)):
            if not self._relevant(batch, pending):
                continue
            if priming and batch["job_id"] == self.job_id and batch["attempt"] != 0:
                continue  # wait for the cache-priming batch to end
            if batch["owner"] == OWNER:
                if batch["job_id"] == self.job_id or batch["job_id"] not in _live_job_ids():
                    self._create(batch)
            elif not _owner_alive(batch["owner"]):
                if self._claim(batch):
                    self._reconcile(batch)

    def _claim(self, batch: Mapping[str, Any]) -> bool:
        """Take over a dead process's planned batch (compare-and-set on its owner)."""
        with self.store.atomic() as conn:
            cur = conn.execute(
                "UPDATE batches SET owner = ? WHERE id = ? AND state = 'submitting' AND owner IS ?",
                (OWNER, batch["id"], batch["owner"]),
            )
            return cur.rowcount == 1

    def _reconcile(self, batch: Mapping[str, Any], *, adopt_only: bool = False) -> None:
        """Adopt the batch a dead process may have created, or create it if it never was."""
        claimed = {b["api_id"] for b in self.store.batches() if b["api_id"]}
        intent = dt.datetime.fromisoformat(batch["intent_at"].replace("Z", "+00:00"))
        found = backend.find_created_batch(
            self.client, n_requests=batch["n_requests"], intent_at=intent, claimed=claimed
        )
        if found is not None:
            self.store.update_batch(
                batch["id"], api_id=found.id, state=_state_of(found), **backend.batch_fields(found)
            )
        elif adopt_only:
            self.store.update_batch(batch["id"], state="abandoned", error="canceled before it was created")
        else:
            self._create(batch, reconciled=True)

    def _body_of(self, keys: Sequence[str]) -> bytes:
        from .requests import batch_line

        missing = [k for k in keys if k not in self._bodies]
        if missing:
            self._bodies.update(self.store.request_bodies(missing))
        bodies = self._bodies
        return b'{"requests":[' + b",".join(batch_line(k, bodies[k]) for k in keys) + b"]}"

    def _create(self, batch: Mapping[str, Any], *, reconciled: bool = False) -> None:
        keys = self.store.batch_keys(batch["id"])
        body = self._body_of(keys)
        # No SDK retries on create: a retried create whose first attempt did reach the API would
        # be a second, paid batch. Failures are reconciled against the batch list instead.
        try:
            created = backend.create_batch(self.client.with_options(max_retries=0), body)
        except (anthropic.RateLimitError, anthropic.OverloadedError):
            return  # refused before anything was created: try again next round
        except (anthropic.APIConnectionError, anthropic.InternalServerError):
            if not reconciled:
                self._reconcile(batch)
            return
        except anthropic.APIStatusError as exc:
            self.store.update_batch(batch["id"], state="failed", error=f"{exc.status_code}: {exc.message}")
            raise JobStateError(
                f"the API refused to create a batch of job {self.job_id}: {exc.message}",
                job_id=self.job_id,
            ) from exc
        _crashpoint("after_create")
        self.store.update_batch(
            batch["id"], api_id=created.id, state=_state_of(created), **backend.batch_fields(created)
        )

    def _poll(self) -> None:
        pending = self._pending_keys()
        for batch in self.store.batches(states=("in_progress", "canceling", "ended")):
            if not batch["api_id"] or not self._relevant(batch, pending):
                continue
            if batch["state"] != "ended":
                _crashpoint("polling")
                current = backend.retrieve_batch(self.client, batch["api_id"])
                state = _state_of(current)
                if state != batch["state"] or state == "ended":
                    self.store.update_batch(batch["id"], state=state, **backend.batch_fields(current))
                if state != "ended":
                    continue
            self._collect(batch)

    def _collect(self, batch: Mapping[str, Any]) -> None:
        """Stream an ended batch's results into the store, all in one transaction."""
        api_id = batch["api_id"]
        try:
            records = []
            for n, line in enumerate(iter_lines(backend.result_chunks(self.client, api_id))):
                records.append(parse_result_line(line))
                if n == 0:
                    _crashpoint("streaming")
        except anthropic.NotFoundError as exc:
            # Results are gone (archived 29 days after creation): record that, do not loop.
            keys = self.store.batch_keys(batch["id"])
            message = f"results of batch {api_id} are no longer available: {exc.message}"
            records = [
                Outcome(k, "errored", None, None, "results_unavailable", message, 0, 0, 0, 0, 0) for k in keys
            ]
        except (anthropic.APIConnectionError, anthropic.APIStatusError, OSError):
            return  # a dropped stream: the batch stays "ended" and is read again next round
        if self.output_spec is not None:
            records = [self._checked(r) for r in records]
        with self.store.atomic() as conn:
            self.store.store_results(conn, api_id, self.model, records)
            self.store.update_batch_in(conn, batch["id"], state="collected")

    def _checked(self, record: Outcome) -> Outcome:
        """Mark a structured answer that does not parse or fails the schema ``invalid_output``."""
        if record.status != "succeeded" or self.output_spec is None:
            return record
        reason = self.output_spec.check(record.answer)
        if reason is None:
            return record
        return record._replace(status="invalid_output", error_type="invalid_output", error_message=reason)

    def _plan_retries(self) -> None:
        records = self._records()
        keys = [k for k, r in records.items() if self._retryable(r)]
        if not keys:
            return
        with self.store.atomic() as conn:
            in_flight = self.store.in_flight_keys(conn)
            keys = [k for k in keys if k not in in_flight]
            if keys:
                attempt = 1 + max(records[k][11] for k in keys)
                self._plan_batches(conn, keys, attempt)

    def _plan_batches(self, conn: Any, keys: Sequence[str], attempt: int) -> None:
        spec = self._record["spec"]
        max_requests = int(spec.get("chunk_size") or MAX_BATCH_REQUESTS)
        max_bytes = int(spec.get("chunk_bytes") or MAX_BATCH_BYTES)
        missing = [k for k in keys if k not in self._bodies]
        if missing:
            self._bodies.update(self.store.request_bodies(missing))
        for chunk in chunk_requests(
            {k: self._bodies[k] for k in keys}, max_requests=max_requests, max_bytes=max_bytes
        ):
            self.store.add_batch(conn, job_id=self.job_id, keys=chunk.keys, attempt=attempt, owner=OWNER)

    def _finish_if_done(self) -> bool:
        if self._record["status"] == "running" and self._pending_keys():
            return False
        job_keys = self._job_keys()
        for batch in self.store.batches(states=ACTIVE_STATES):
            if batch["job_id"] == self.job_id or not job_keys.isdisjoint(self.store.batch_keys(batch["id"])):
                if batch["state"] == "submitting" and self._record["status"] == "canceled":
                    continue
                return False
        if self._record["status"] == "running":
            self.store.set_job_status(self.job_id, "ended")
            self._record["status"] = "ended"
        return True

    # ------------------------------------------------------------------ results

    def to_frame(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """The caller's frame with the output column added (a new frame; the input is untouched).

        After :meth:`load` in a fresh process pass the original frame; without it the columns
        come on a plain row-number index.
        """
        frame = frame if frame is not None else self.frame
        records = self._records()
        _crashpoint("merging")
        if frame is None:
            index: pd.Index = pd.RangeIndex(len(self.row_keys), name="row")
            out = pd.DataFrame(index=index)
        else:
            if len(frame) != len(self.row_keys):
                raise JobStateError(
                    f"job {self.job_id} has {len(self.row_keys):,} rows but this frame has {len(frame):,}",
                    job_id=self.job_id,
                )
            index = frame.index
            out = frame.copy(deep=False)
        if self.output_spec is None:
            column = answer_column(self.row_keys, records, index, self.output)
            out[self.output] = column.array
            return out
        answers = []
        for key in self.row_keys:
            record = records.get(key) if key is not None else None
            answers.append(record[2] if record is not None and record[1] == "succeeded" else None)
        for name, column in self.output_spec.frame(answers, index).items():
            out[name] = column.array
        return out

    result = to_frame

    def outcomes(self) -> pd.DataFrame:
        """One row per input row: status, error, stop reason, tokens, attempts and request key."""
        records = self._records()
        canceled = self._record["status"] == "canceled"
        rows = []
        skipped = self.skipped
        for pos, key in enumerate(self.row_keys):
            if key is None:
                rows.append(("skipped", None, skipped.get(pos), None, 0, 0, 0, 0, 0, 0, None))
                continue
            r = records.get(key)
            if r is None:
                rows.append(("canceled" if canceled else "pending", None, None, None, 0, 0, 0, 0, 0, 0, key))
                continue
            rows.append((r[1], r[4], r[5], r[3], r[6], r[7], r[8], r[9], r[10], r[11], key))
        columns = [
            "status", "error_type", "error_message", "stop_reason", "input_tokens", "output_tokens",
            "cache_write_5m", "cache_write_1h", "cache_read", "attempts", "request_key",
        ]
        out = pd.DataFrame(rows, columns=columns)
        for name in ("input_tokens", "output_tokens", "cache_write_5m", "cache_write_1h", "cache_read", "attempts"):
            out[name] = out[name].astype(np.int64)
        if self.frame is not None and len(self.frame) == len(out):
            out.index = self.frame.index
        return out


def _state_of(batch: Any) -> str:
    return str(batch.processing_status)


def _live_job_ids() -> set[str]:
    return {job_id for (_, job_id) in Job._live}


# --------------------------------------------------------------------------- opening


def open_job(
    store: Store,
    client: anthropic.Anthropic | None,
    frame: pd.DataFrame,
    plan: Plan,
    template: RequestTemplate,
    *,
    kind: str,
    output: str,
    spec: dict[str, Any],
) -> Job:
    fp = fingerprint(kind, output, plan.row_keys)
    job_id = store.find_job(fp)
    if job_id is None:
        with store.atomic() as conn:
            job_id = store.find_job(fp)  # another process may have won the race
            if job_id is None:
                job_id = "job_" + fp[:16]
                store.insert_job(
                    conn, job_id=job_id, fingerprint=fp, model=template.model, kind=kind,
                    output=output, spec=spec, row_keys=plan.row_keys, skipped=plan.skipped,
                )
                answered = store.answered(plan.bodies)
                in_flight = store.in_flight_keys(conn)
                to_send = {k: b for k, b in plan.bodies.items() if k not in answered and k not in in_flight}
                store.add_requests(conn, to_send.items())
                if spec.get("cache") == "prime" and len(to_send) > 1:
                    # A one-request batch first writes the shared prefix to the cache; the rest
                    # are created only once it has ended, so they read it (attempt 0 = primer).
                    primer = next(iter(to_send))
                    store.add_batch(conn, job_id=job_id, keys=[primer], attempt=0, owner=OWNER)
                    to_send = {k: b for k, b in to_send.items() if k != primer}
                for chunk in chunk_requests(
                    to_send, max_requests=spec["chunk_size"], max_bytes=spec["chunk_bytes"]
                ):
                    store.add_batch(conn, job_id=job_id, keys=chunk.keys, attempt=1, owner=OWNER)
            _crashpoint("after_intent")
    job = Job._attach(job_id, store, client, frame=frame, bodies=plan.bodies)
    return job.start()


def jobs(store: Store | str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every job in the store, newest first: when, how many rows, how they ended, the model."""
    resolved = Store.resolve(store)
    rows = []
    for job_id, created_at, model, kind, output, n_rows, status in resolved.job_rows():
        record = resolved.load_job(job_id)
        assert record is not None
        summary = summarize(record["row_keys"], resolved.results_for_job(job_id), record["skipped"])
        counts = summary.by_status
        rows.append(
            {
                "job_id": job_id,
                "created_at": pd.Timestamp(created_at),
                "status": status,
                "model": model,
                "kind": kind,
                "output": output,
                "rows": n_rows,
                "succeeded": counts.get("succeeded", 0),
                "truncated": counts.get("truncated", 0),
                "failed": summary.failed - counts.get("pending", 0),
                "pending": counts.get("pending", 0),
                "batches": len(resolved.batches(job_id=job_id)),
            }
        )
    columns = [
        "job_id", "created_at", "status", "model", "kind", "output", "rows", "succeeded",
        "truncated", "failed", "pending", "batches",
    ]
    return pd.DataFrame(rows, columns=columns)


def warn_failures(job: Job) -> Summary:
    """Tell the user, never silently, how many rows have no answer and why."""
    summary = job.summary()
    if summary.failed:
        import warnings

        warnings.warn(
            f"batchkit job {job.job_id}: {summary}. Failed rows are NA in {job.output!r}; "
            "job.outcomes() has the reason for each row and job.retry() resubmits them.",
            BatchkitWarning,
            stacklevel=3,
        )
    return summary


