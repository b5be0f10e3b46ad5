"""A lazy engine's partitions through a partitioned run, and their answers back in input order.

A streaming engine (Polars' ``collect``/``sink_*``) pulls its output from a generator on its own
thread and may stop pulling at any moment. :class:`Pipeline` puts a partitioned run
(:func:`~batchkit.engine.runs.run_partitions`) between the two: the run drives the partitions' jobs on
a background thread (the only one that talks to the API and the store) and plans a few ahead to
keep the queue full; the engine's thread takes each partition's answers (:meth:`Pipeline.outputs`)
as soon as it and those before it are final. A partition waits in memory only until its answers
are taken, and the run waits while the engine has not taken the last one, so memory stays bounded
by the run's look-ahead.

When a later step fails, the engine stops reading without closing the source's generator; the
pipeline is closed when the generator is collected, or at exit. Then no further partition is
planned; what was sent keeps running and a re-run finds it. :func:`submit_run` starts a run of
the same partitions whose answers go to the store only (``submit`` on a lazy plan).

The front end supplies what is its own — how to prepare one of its partitions
(:func:`batchkit.engine.calls.prepare` on its columns) and how to build its typed columns from
a :class:`~batchkit.engine.runs.PartOutput` — and nothing here looks at a row.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from batchkit.errors import BatchkitError

from .answers import PartOutput
from .runs import Run, run_partitions

if TYPE_CHECKING:
    from .prepared import Call

__all__ = ["Pipeline", "submit_run"]

Part = TypeVar("Part", bound=Sized)
"""A partition as the front end holds it (a Polars DataFrame): ``len()`` is its row count."""


class _Closed(Exception):
    """The engine stopped reading the plan's output: plan no further partition."""


class Pipeline(Generic[Part]):
    """One collection of a lazy plan: the input's partitions into a run, their answers out in order.

    >>> pipeline = Pipeline(verb.prepare, partitions, source, progress=False)  # doctest: +SKIP
    >>> pipeline.start()                                                        # doctest: +SKIP
    >>> for part, out in pipeline.outputs(): ...                                # doctest: +SKIP
    """

    live: ClassVar[set[Pipeline[Any]]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, prepare: Callable[[Part], Call], parts: Iterator[Part], source: str, *, progress: bool | None
    ) -> None:
        self.source = source
        self.progress = progress
        self.closed = threading.Event()
        self.run: Run | None = None
        self._prepare_part = prepare
        self._parts = parts
        self._inputs: dict[int, Part] = {}
        self._outputs: queue.Queue[PartOutput | None] = queue.Queue(maxsize=1)
        self._prepared = self._prepare()
        self._ended: threading.Thread | None = None

    def _prepare(self) -> Generator[Call, None, None]:
        offset = 0
        for i, part in enumerate(self._parts):
            if self.closed.is_set():
                return
            try:
                call = self._prepare_part(part)
            except BatchkitError as exc:
                row = getattr(exc, "row", None)
                if isinstance(row, int):
                    exc.add_note(f"(row {row:,} of partition {i}: row {offset + row:,} of the plan)")
                raise
            self._inputs[i] = part
            offset += len(part)
            yield call

    def _on_output(self, out: PartOutput) -> None:
        while not self.closed.is_set():
            try:
                self._outputs.put(out, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Closed

    def start(self) -> None:
        with self.lock:
            self.live.add(self)
        self.run = run_partitions(
            self._prepared, source=self.source, on_output=self._on_output, wait=False, progress=self.progress
        )
        self._ended = threading.Thread(
            target=self._outputs_end, args=(self.run,), daemon=True, name=f"batchkit-pipeline-{self.run.run_id}"
        )
        self._ended.start()

    def _outputs_end(self, run: Run) -> None:
        """Tell the engine's thread there is nothing more once the run has ended."""
        run.control.done.wait()
        while not self.closed.is_set():  # nobody reads once closed: never block on a full queue
            try:
                self._outputs.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def outputs(self) -> Generator[tuple[Part, PartOutput], None, None]:
        """Each partition as given, with its answers, in input order; raises what stopped the run
        (the input's error, a refused partition) once every answer is out."""
        assert self.run is not None
        try:
            while (out := self._next()) is not None:
                yield self._inputs.pop(out.part), out
            if not self.closed.is_set():
                self.run.wait()
        finally:
            self.close()

    def _next(self) -> PartOutput | None:
        """The next partition's output; None once the run has ended (or the pipeline was closed)."""
        while True:
            try:
                return self._outputs.get(timeout=0.1)
            except queue.Empty:
                if self.closed.is_set():
                    return None

    def close(self, timeout: float = 5.0) -> None:
        """Plan no further partition and let the driver go (idempotent)."""
        self.closed.set()
        with self.lock:
            self.live.discard(self)
        thread = self.run.control.thread if self.run is not None else None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._prepared.close()  # stops reading the input (its streaming query ends)
        self._inputs.clear()


_SUBMITTED: list[tuple[threading.Event, Run]] = []
"""Runs started by :func:`submit_run` in this process, and the flag that stops their input."""


def submit_run(prepare: Callable[[Part], Call], parts: Iterable[Part], source: str, *, progress: bool | None) -> Run:
    """Start the run of ``parts`` in the background, its answers going to the store only.

    ``parts`` is read lazily on the run's thread; at exit no further partition is read (what was
    sent keeps running, and collecting the same plan later finds it).
    """
    closed = threading.Event()

    def prepared() -> Iterator[Call]:
        for part in parts:
            if closed.is_set():
                return
            yield prepare(part)

    run = run_partitions(prepared(), source=source, wait=False, progress=progress)
    _SUBMITTED[:] = [(flag, r) for flag, r in _SUBMITTED if not r.control.done.is_set()]
    _SUBMITTED.append((closed, run))
    return run


@atexit.register
def _close_pipelines() -> None:
    """Leave no driver inside a streaming engine when the interpreter shuts down: no further
    partition is read (what was sent keeps running and a re-run finds it)."""
    for pipeline in list(Pipeline.live):
        pipeline.close(timeout=2.0)
    for closed, _ in _SUBMITTED:
        closed.set()
    for _, run in _SUBMITTED:
        if run.control.thread is not None:
            run.control.thread.join(2.0)
