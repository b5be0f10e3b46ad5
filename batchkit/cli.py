"""The ``batchkit`` console script.

=====================================  ===============================================
``batchkit demo``                      a real batch through the SDK on the local simulator
``batchkit sim [--port N …]``          serve the simulator (same flags as
                                       ``python -m batchkit.simulator``)
``batchkit jobs``                      every job in the store, newest first
``batchkit status JOB``                one job's rows by status and its batches
``batchkit wait JOB``                  block until the job has every answer
``batchkit cancel JOB``                cancel the job's running batches
``batchkit results JOB -o FILE``       write each row's input, outputs and outcome to .csv
                                       or .parquet (``--force`` replaces an existing file)
``batchkit results ID -o DIR/``        the same as a partitioned Parquet dataset, a slice of
                                       rows per file; a run's id: one file per partition
``batchkit backup DEST``               copy the store, consistently, to one file
``batchkit forget JOB``                remove a job and what it holds; the file shrinks
``batchkit prune --older-than 30d``    the same for every job older than that
                                       (``--dry-run``: only say what would go)
=====================================  ===============================================

Every command but ``demo`` and ``sim`` takes ``--store PATH``, before or after the command
(default: ``BATCHKIT_STORE``, then the standard location), and never creates a store: a path
with no store is an error. Without either, ``status``, ``wait``, ``cancel`` and ``results``
look for the job in both default stores (``jobs.sqlite3`` and ``simulator.sqlite3`` beside it)
and say which one they read. Commands that reach the API (``wait``, ``cancel``) use the one
configured by the environment (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``); ``wait`` shows
the job's progress on stderr when that is a terminal.

Exit status: 0 on success; **2 on any error**, reported as one line on stderr starting
``batchkit:`` that names the problem and the fix (``BATCHKIT_DEBUG=1`` shows the traceback of
an unexpected one); 130 on Ctrl-C. Output cut short by a closed pipe (``batchkit jobs | head``)
ends quietly.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pandas as pd

if TYPE_CHECKING:
    from .engine.jobs import Job
    from .stores.store import Store

__all__ = ["main"]

ERROR_EXIT = 2
"""The exit status of every failed command."""

_STORE_NAMES = {"jobs.sqlite3": "the real API's", "simulator.sqlite3": "the simulator's"}
"""The default stores' file names, which live side by side in the standard location."""


class _UsageError(Exception):
    """A command line argparse cannot parse (raised instead of argparse's exit)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv  # what follows a leading --store
    if rest[:1] == ["--store"]:
        rest = rest[2:]
    elif rest[:1] and rest[0].startswith("--store="):
        rest = rest[1:]
    if rest and rest[0] == "sim":  # its own flags, parsed by the simulator (a --store before it is moot)
        from .simulator.__main__ import build_parser as sim_parser
        from .simulator.__main__ import main as sim_main

        try:
            return int(sim_main(rest[1:], parser=sim_parser(_Parser, prog="batchkit sim")) or 0)
        except _UsageError as exc:  # a bad argument, checked before anything is served
            return _fail(str(exc))
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        commands = ", ".join(
            name
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        )
        return _fail(f"name a command: {commands} (see `batchkit --help`)")
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:  # one line, never a traceback
        if os.environ.get("BATCHKIT_DEBUG"):
            raise
        return _fail(_describe(exc))


def _fail(message: str) -> int:
    print("batchkit: " + re.sub(r"\s*\n\s*", " ", message.strip()), file=sys.stderr)
    return ERROR_EXIT


def _describe(exc: Exception) -> str:
    """The one-line message for an error that ends a command."""
    import anthropic

    from .errors import BatchkitError

    if isinstance(exc, BatchkitError):
        return str(exc)
    if isinstance(exc, anthropic.APIConnectionError):
        return (
            f"cannot reach the API ({exc}): check ANTHROPIC_BASE_URL, or start the simulator "
            "(`batchkit sim --port 8765`) if the job ran on it"
        )
    if isinstance(exc, anthropic.APIStatusError):
        return f"the API answered {exc.status_code}: {exc.message}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}: check the path and its permissions"
    if isinstance(exc, sqlite3.Error):
        return f"the job store failed: {exc}. Check its disk, or pass another --store"
    return (
        f"unexpected {type(exc).__name__}: {exc}. This is a bug in batchkit; please report it "
        "(BATCHKIT_DEBUG=1 shows the traceback)"
    )


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush into a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured)
        pass


def _parser() -> argparse.ArgumentParser:
    from .core.options import DEFAULT_MODEL

    parser = _Parser(prog="batchkit", description="Claude Message Batches for pandas")
    parser.add_argument("--store", help="job store path (default: BATCHKIT_STORE, then the standard location)")
    sub = parser.add_subparsers(title="commands")
    # On each command too, so --store goes before or after it; SUPPRESS keeps a command's
    # unset --store from overwriting one given before it.
    store_help = "job store path (default: BATCHKIT_STORE, then the standard location)"

    demo = sub.add_parser("demo", help="run a real batch through the SDK on the local simulator")
    demo.add_argument(
        "--rows", type=_demo_rows, default=300, help=f"how many reviews to classify, 1–{DEMO_REVIEWS:,} (default 300)"
    )
    demo.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"the model the requests name (default {DEFAULT_MODEL}, batchkit's own default)",
    )
    demo.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help="job store path to keep (default: a temporary one, removed at the end)",
    )
    demo.set_defaults(func=_demo)

    sub.add_parser("sim", help="serve the local Anthropic API simulator (see --help of it)")

    for name, func, text in (
        ("jobs", _jobs, "list every job in the store"),
        ("status", _status, "show one job's rows by status and its batches"),
        ("wait", _wait, "wait until a job has every answer"),
        ("cancel", _cancel, "cancel a job's running batches"),
        ("results", _results, "write each row's input, outputs and outcome to a file"),
        ("backup", _backup, "copy the store, consistently, to one file (also to move it)"),
        ("forget", _forget, "remove a job, its batches and answers from the store (answers other jobs use stay)"),
        ("prune", _prune, "remove every job older than --older-than, as forget does one"),
    ):
        cmd = sub.add_parser(name, help=text)
        if name == "backup":
            cmd.add_argument("dest", help="the file to write (or a folder: the copy keeps the store's name)")
        elif name == "prune":
            cmd.add_argument(
                "--older-than",
                required=True,
                type=_age,
                metavar="AGE",
                help="jobs created longer ago than this: 30d, 12h, 90m (days, hours, minutes)",
            )
            cmd.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
        elif name != "jobs":
            cmd.add_argument("job", help="the job id (see `batchkit jobs`)")
        cmd.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
        if name == "results":
            cmd.add_argument(
                "-o",
                "--output",
                required=True,
                help="a .csv or .parquet file, or a folder (ending in /) for a Parquet dataset",
            )
            cmd.add_argument(
                "--rows-per-file",
                type=int,
                default=DATASET_ROWS_PER_FILE,
                help=f"rows per dataset file (default {DATASET_ROWS_PER_FILE:,}; a run: a file per part)",
            )
        if name in ("results", "backup"):
            cmd.add_argument(
                "--force",
                "--overwrite",
                dest="force",
                action="store_true",
                help="replace the file (or a dataset's part files) if it exists",
            )
        if name in ("forget", "prune"):
            cmd.add_argument(
                "--force",
                action="store_true",
                help="remove jobs with batches still in flight too: those keep running at the API "
                "and their answers are no longer collected",
            )
        cmd.set_defaults(func=func)
    return parser


# --------------------------------------------------------------------------- the store


def _store_path(args: argparse.Namespace) -> tuple[Path, bool]:
    """The store a command reads, and whether the user named it (``--store`` or ``BATCHKIT_STORE``)."""
    from .stores.store import default_store_path

    if args.store:
        return Path(args.store).expanduser(), True
    return default_store_path(), bool(os.environ.get("BATCHKIT_STORE"))


def _open_store(args: argparse.Namespace) -> Store:
    """The store a command reads, opened without creating it."""
    from .errors import StoreNotFoundError
    from .stores.store import Store

    path, named = _store_path(args)
    if not path.exists() and not path.is_symlink():
        how = ("--store" if args.store else "BATCHKIT_STORE") if named else "the default location"
        raise StoreNotFoundError(
            f"no job store at {path} (from {how}): the file does not exist, and batchkit only creates a "
            "store when a call writes to it. Check the path, or pass --store PATH of an existing store",
            path=path,
        )
    return Store.resolve(path, create=False)


def _other_default(path: Path) -> Path:
    """The other default store beside ``path`` (one of :data:`_STORE_NAMES`)."""
    return path.with_name(next(name for name in _STORE_NAMES if name != path.name))


def _other_store_note(path: Path) -> str | None:
    """A pointer to the other default store beside this one, when it has jobs."""
    from .stores.store import peek_job_count

    if path.name not in _STORE_NAMES:
        return None
    other = _other_default(path)
    count = peek_job_count(other)
    if not count:
        return None
    return (
        f"note: {other} ({_STORE_NAMES[other.name]} store) has {count:,} job{'s' * (count != 1)}: "
        f"batchkit jobs --store {other}"
    )


def _job_store(args: argparse.Namespace) -> Store:
    """The store that holds ``args.job`` (a job's or a run's id): the store the user named, else
    the default store, else the other default store beside it — so a simulator job is found
    from a plain shell too. It says which store it read, first thing on stdout."""
    from .errors import JobNotFoundError
    from .stores.store import Store

    path, named = _store_path(args)
    if named or path.name not in _STORE_NAMES:
        store = _open_store(args)
        print(f"job store: {store.path}")
        return store
    other = _other_default(path)
    existing = [p for p in (path, other) if p.exists()]
    if not existing:
        return _open_store(args)  # the usual "no job store" error
    for candidate in existing:
        store = Store.resolve(candidate, create=False)
        if store.load_job(args.job) is not None or store.run_parts(args.job):
            print(f"job store: {store.path} ({_STORE_NAMES[candidate.name]} store)")
            return store
    raise JobNotFoundError(
        f"no job or run {args.job!r} in either default store ({' or '.join(str(p) for p in existing)}): "
        "`batchkit jobs` lists the jobs, or pass --store PATH of the store that holds it",
        job_id=args.job,
    )


def _load(args: argparse.Namespace) -> Job:
    from .engine.jobs import Job

    return Job.load(args.job, store=_job_store(args))


# --------------------------------------------------------------------------- commands


def _jobs(args: argparse.Namespace) -> int:
    from .engine.jobs import jobs

    path, named = _store_path(args)
    if not named and not path.exists():
        print(f"job store: {path} (does not exist yet: no jobs)")
    else:
        store = _open_store(args)
        frame = jobs(store)
        mode = " (read-only)" if store.readonly else ""
        print(f"job store: {store.path}{mode}: {len(frame):,} job{'s' * (len(frame) != 1)}")
        if not frame.empty:
            print(frame.to_string(index=False))
    note = _other_store_note(path)
    if note:
        print(note)
    return 0


def _status(args: argparse.Namespace) -> int:
    job = _load(args)
    print(f"{job.job_id}  {job.status}  model={job.model}  created={job.created_at}")
    print(job.summary())
    batches = job.batches()
    if not batches.empty:
        print(batches[["api_id", "state", "attempt", "n_requests", "created_at", "ended_at"]].to_string(index=False))
    return 0


def _wait(args: argparse.Namespace) -> int:
    from .display.views import TextProgress

    job = _load(args)
    # On a terminal, the job's progress on stderr while it runs (stdout keeps its store line and its
    # one summary line, for scripts).
    view = TextProgress(job, file=sys.stderr) if sys.stderr.isatty() else None
    job.wait()
    if view is not None:
        view.finish()
    print(f"{job.job_id}: {job.summary()}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    job = _load(args)
    status = job.status
    if status != "running":
        what = "had already been canceled" if status == "canceled" else "had already ended"
        print(f"{job.job_id} {what}: nothing to cancel ({job.summary()})")
        return 0
    job.cancel()
    print(f"{job.job_id} canceled: {job.summary()}")
    return 0


_FORMATS = (".csv", ".parquet")


def _results(args: argparse.Namespace) -> int:
    from .stores.store import check_output_path

    path = Path(args.output).expanduser()
    if args.output.endswith(("/", os.sep)) or (path.is_dir() and not path.is_symlink()):
        return _results_dataset(args, path)
    check_output_path(path, overwrite=args.force, what="the results")
    if path.suffix not in _FORMATS:
        raise _error(f"-o {args.output}: the file must end in .csv or .parquet")
    if path.suffix == ".parquet":
        try:
            pd.io.parquet.get_engine("auto")
        except ImportError:
            raise _error(
                "writing .parquet needs pyarrow (pip install pyarrow) or fastparquet; "
                f"or write .csv: -o {path.with_suffix('.csv')}"
            ) from None
    job = _load(args)
    frame = results_frame(job)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)  # replaces a link's name, never writes through it
    finally:
        tmp.unlink(missing_ok=True)
    pending = int((frame["status"] == "pending").sum())
    note = f" (the job is still running: {pending:,} rows pending)" if pending else ""
    print(f"wrote {len(frame):,} rows of job {job.job_id} to {path}{note}")
    return 0


DATASET_ROWS_PER_FILE = 500_000
"""Rows per file of a dataset written by ``batchkit results ID -o DIR/`` (a job's; a run writes one
file per partition)."""

_PART_FILE = re.compile(r"part-\d{5,}\.parquet")


def _results_dataset(args: argparse.Namespace, folder: Path) -> int:
    """``batchkit results ID -o DIR/``: a partitioned Parquet dataset, ``part-00000.parquet``, …

    For a job, a slice of ``--rows-per-file`` rows per file; for a partitioned run (its id from
    :func:`batchkit.engine.runs.run_partitions`), one file per partition, in partition order, each read
    and written before the next, so memory holds one partition. The ``row`` column numbers the
    rows of the whole input. Everything is checked before a file is written: the folder (missing
    parent, a file or a link in its place, not empty without ``--overwrite``), the id, pyarrow.
    """
    if args.rows_per_file < 1:
        raise _error(f"--rows-per-file must be at least 1, not {args.rows_per_file}")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise _error(
            "writing a Parquet dataset needs pyarrow (pip install pyarrow); or write one file: -o results.csv"
        ) from None
    _check_dataset_folder(folder, overwrite=args.force)
    jobs = _dataset_jobs(args)  # raises for an unknown id, before anything is written
    folder.mkdir(exist_ok=True)
    old = [p for p in folder.iterdir() if _PART_FILE.fullmatch(p.name)]
    written: list[Path] = []
    rows = pending = 0
    schema: Any = None
    try:
        for job in jobs():
            frame = results_frame(job)
            frame["row"] += rows
            slices = (
                [frame]
                if args.is_run
                else [frame.iloc[i : i + args.rows_per_file] for i in range(0, max(len(frame), 1), args.rows_per_file)]
            )
            for piece in slices:
                table = pa.Table.from_pandas(piece, preserve_index=False)
                schema = schema or _typed(table.schema)  # the first file's, for every file
                table = table.cast(schema) if table.schema != schema else table
                final = folder / f"part-{len(written):05d}.parquet"
                tmp = folder / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
                try:
                    pq.write_table(table, tmp)
                    os.replace(tmp, final)
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(final)
                del table
            rows += len(frame)
            pending += int((frame["status"] == "pending").sum())
            del frame, slices
    except BaseException:
        for p in written:  # never a dataset half old, half new
            p.unlink(missing_ok=True)
        raise
    for p in old:
        if p not in written:
            p.unlink(missing_ok=True)  # --overwrite: a shorter dataset leaves no stale parts behind
    note = f" (still running: {pending:,} rows pending)" if pending else ""
    what = f"run {args.job} ({len(written)} partitions)" if args.is_run else f"job {args.job}"
    print(f"wrote {rows:,} rows of {what} to {folder}/ as {len(written)} Parquet file{'s' * (len(written) != 1)}{note}")
    return 0


def _check_dataset_folder(folder: Path, *, overwrite: bool) -> None:
    """Refuse a dataset folder a user would not expect written (before anything is read or written)."""
    if folder.is_symlink():
        raise _error(
            f"{folder} is a symbolic link: batchkit does not write results through links; name the real folder"
        )
    if folder.exists() and not folder.is_dir():
        raise _error(f"{folder} is a file: name a folder for the dataset (ending in /), or a .parquet file")
    if not folder.parent.is_dir():
        raise _error(f"the folder {folder.parent} does not exist: create it first (mkdir -p {folder.parent})")
    if not folder.exists():
        return
    entries = sorted(p.name for p in folder.iterdir())
    others = [n for n in entries if not _PART_FILE.fullmatch(n)]
    if others:
        raise _error(
            f"{folder} holds files that are not a batchkit dataset's ({', '.join(others[:3])}"
            f"{', …' if len(others) > 3 else ''}): name an empty or new folder"
        )
    if entries and not overwrite:
        raise _error(
            f"{folder} already holds a dataset ({len(entries)} part files): pass --overwrite to "
            "replace it, or name a new folder"
        )


def _dataset_jobs(args: argparse.Namespace) -> Any:
    """What ``args.job`` names — a job, or a partitioned run's jobs in order — as a function
    yielding the jobs one at a time (so a run holds one partition's job at a time)."""
    from .engine.jobs import Job
    from .errors import JobNotFoundError

    store = _job_store(args)
    args.is_run = False
    if store.load_job(args.job) is not None:
        return lambda: iter([Job.load(args.job, store=store)])
    parts = store.run_parts(args.job) if hasattr(store, "run_parts") else []
    if not parts:
        raise JobNotFoundError(
            f"no job or run {args.job!r} in the store at {store.path}: `batchkit jobs --store {store.path}` "
            "lists the jobs (a run's id is Run.run_id)",
            job_id=args.job,
        )
    args.is_run = True
    return lambda: (Job.load(job_id, store=store) for job_id in parts)


def _typed(schema: Any) -> Any:
    """A dataset's schema from its first slice: a column with no value there (Arrow type ``null``,
    e.g. ``error_type`` when no row failed) is text, as in every other slice."""
    import pyarrow as pa

    fields = [f.with_type(pa.large_string()) if pa.types.is_null(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _backup(args: argparse.Namespace) -> int:
    store = _open_store(args)
    written = store.backup(args.dest, overwrite=args.force)
    size = written.stat().st_size
    print(f"backed up the job store at {store.path} to {written} ({size / 1e6:,.1f} MB)")
    return 0


def _forget(args: argparse.Namespace) -> int:
    print(_open_store(args).forget(args.job, force=args.force))
    return 0


def _prune(args: argparse.Namespace) -> int:
    print(_open_store(args).prune(older_than=args.older_than, force=args.force, dry_run=args.dry_run))
    return 0


def _age(text: str) -> str:
    from .errors import InvalidOptionError
    from .stores.prune import parse_age

    try:
        parse_age(text)
    except InvalidOptionError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("older_than=", "")) from None
    return text


def _error(message: str) -> Exception:
    from .errors import OutputPathError

    return OutputPathError(message)


# --------------------------------------------------------------------------- results


RESULT_COLUMNS = ("row", "prompt", "system")
"""The leading columns of ``batchkit results``; the job's outputs and :meth:`Job.outcomes` follow."""


def results_frame(job: Job) -> pd.DataFrame:
    """One row per input row: its position, what the model saw, the outputs and the outcome.

    Columns: ``row`` (the row's position in the frame the job was run on), ``prompt`` (the
    rendered messages as sent; a conversation shows each message as ``role: text``),
    ``system`` (only when the job had a system prompt), then the job's output column(s), then
    :meth:`batchkit.Job.outcomes` (``status``, ``error_type``, ``error_message``,
    ``stop_reason``, token counts, ``attempts``, ``cost``, ``request_key``). Skipped rows have
    no prompt. An output named like one of these columns is written as ``output_<name>``.
    """
    keys = job.row_keys
    params = job.store.request_params({k for k in keys if k})
    texts = {key: (_prompt_text(p), _system_text(p.get("system"))) for key, p in params.items()}
    none: tuple[str | None, str | None] = (None, None)
    inputs = [texts.get(k, none) if k else none for k in keys]
    out = pd.DataFrame(
        {
            "row": range(len(keys)),
            "prompt": pd.array([i[0] for i in inputs], dtype="string"),
            "system": pd.array([i[1] for i in inputs], dtype="string"),
        }
    )
    if out["system"].isna().all():
        out = out.drop(columns="system")
    outcomes = job.outcomes().reset_index(drop=True)
    outputs = job.to_frame(pd.DataFrame(index=out.index))  # the outputs alone, whatever frame the job holds
    taken = set(out.columns) | set(outcomes.columns)
    outputs = outputs.rename(columns={c: f"output_{c}" for c in outputs.columns if c in taken})
    return pd.concat([out, outputs, outcomes], axis=1)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block.get("text", "") if block.get("type") == "text" else f"[{block.get('type', 'block')}]"
            for block in content
            if isinstance(block, dict)
        )
    return str(content)


def _prompt_text(params: dict[str, Any]) -> str:
    messages = params.get("messages") or []
    if len(messages) == 1:
        return _content_text(messages[0].get("content"))
    return "\n\n".join(f"{m.get('role')}: {_content_text(m.get('content'))}" for m in messages)


def _system_text(system: Any) -> str | None:
    return None if system is None else _content_text(system)


# --------------------------------------------------------------------------- demo

DEMO_PROMPT = (
    "Classify the sentiment of this movie review as positive or negative. Answer with one word.\n\nReview: {document}"
)


def _demo(args: argparse.Namespace) -> int:
    """Classify Korean movie reviews through the real SDK on the local simulator, and say so.

    Uses a temporary job store, removed at the end, unless ``--store`` names one to keep.
    """
    import batchkit  # noqa: F401  (registers df.claude)

    from .local import start_simulator

    reviews = load_reviews(args.rows)
    with tempfile.TemporaryDirectory(prefix="batchkit-demo-") as scratch:
        store = args.store or str(Path(scratch) / "jobs.sqlite3")
        # The simulator keeps its batches in the demo's scratch folder (removed with it), never
        # beside a store of the user's: the demo leaves no files behind and touches no other state.
        server = start_simulator(state=Path(scratch) / "simulator-api.sqlite3")
        try:
            _demo_run(reviews, args.model, store, server)
        finally:
            server.stop()
            _close_store(store)
    where = f"kept at {args.store}" if args.store else "temporary, removed (pass --store PATH to keep one)"
    print(f"Job store: {where}.")
    return 0


def _demo_run(reviews: pd.DataFrame, model: str, store: str, server: Any) -> None:
    sim = server.simulator
    print(
        f"batchkit demo: {len(reviews):,} Korean movie reviews (NSMC) classified as Message Batches naming\n"
        f"{model}, through the anthropic SDK, sent to batchkit's local simulator of the Anthropic API\n"
        f"({server.base_url}).\n"
        "The answers are SIMULATED: a small word-list heuristic in the simulator, not Claude. They show\n"
        "how batchkit works (estimate, batches, answers, cost, re-runs), not how well Claude classifies.\n"
        "For real answers, set ANTHROPIC_API_KEY=sk-ant-... and run the same calls in Python\n"
        '(see "A short tour" in the README); batchkit then talks to Anthropic and bills your account.\n'
    )
    print("Prompt, one request per row:")
    print(_indent(DEMO_PROMPT) + "\n")

    started = time.monotonic()
    estimate = reviews.claude.estimate(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    print("Before sending anything, reviews.claude.estimate(...):")
    print(_indent(str(estimate)) + "\n")

    job = reviews.claude.submit(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    requests = len(set(job.row_keys))
    same = len(job.row_keys) - requests
    print(
        f"reviews.claude.submit(...) → job {job.job_id}: {len(job.row_keys):,} rows, {requests:,} requests"
        + (f" ({same:,} duplicate review{'s' * (same != 1)} sent once)" if same else "")
    )
    last = None
    while not job.done:
        line = ", ".join(
            f"batch {b.api_id} {_BATCH_STATES.get(b.state, b.state)}" if b.api_id else "a batch being created"
            for b in job.batches().itertuples()
        )
        if line != last:
            print(f"  {time.monotonic() - started:5.1f} s  {line}")
            last = line
        time.sleep(0.1)
    job.wait()
    print(f"  {time.monotonic() - started:5.1f} s  ended: {job.summary()}\n")

    out = job.to_frame(reviews)
    gold = reviews["label"].map({0: "negative", 1: "positive"})
    agree = int((out["sentiment"].str.strip().str.lower() == gold).sum())
    print("Simulated answers next to the reviewers' own labels (first 10):")
    rows = [(_clip(str(d), 46), g, str(a)) for d, g, a in zip(out["document"], gold, out["sentiment"], strict=True)]
    print(_table(("review", "label", "simulated answer"), rows[:10]))
    print(
        f"The simulator's heuristic agrees with the labels on {agree:,} of {len(out):,} reviews "
        f"({agree / len(out):.1%}):\na figure about the simulator, not about Claude.\n"
    )

    outcomes = job.outcomes()
    cost = job.cost
    batch = estimate["batch"]
    inside = batch.low - 1e-9 <= cost.total <= batch.high + 1e-9
    print(
        f"Usage: {int(outcomes['input_tokens'].sum()):,} input and {int(outcomes['output_tokens'].sum()):,} "
        f"output tokens for {cost.requests_paid:,} requests."
    )
    print(
        f"Cost at batch prices: ${cost.total:,.4f} (simulated: nothing is billed). Sent one by one to the\n"
        f"standard API it would be ${cost.standard:,.4f}, so {cost.saving:.0%} saved. The estimate above said "
        f"${batch.low:,.4f}–${batch.high:,.4f}:\nthe actual cost is {'within' if inside else 'outside'} it.\n"
    )

    batches_before, calls_before = sim.stats()["batches_created"], api_calls(sim.stats())
    again = reviews.claude.batch(
        DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store, progress=False
    )
    assert again["sentiment"].equals(out["sentiment"])
    print(
        f"Re-run of the same call, reviews.claude.batch(...): the same {len(again):,} answers, read from the\n"
        f"job store — {sim.stats()['batches_created'] - batches_before} new batches, "
        f"{api_calls(sim.stats()) - calls_before} API calls, $0."
    )


_BATCH_STATES = {
    "in_progress": "in progress",
    "ended": "ended",
    "collected": "ended, results collected",
    "canceling": "canceling",
    "failed": "refused by the API",
    "lost": "lost: the API no longer knows it (its rows have no answer)",
}


def _close_store(path: str) -> None:
    """Close the demo's store so its folder can go (the store keeps one connection per path)."""
    from .stores.store import Store

    Store.resolve(path).close()


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, with ``…`` where it was cut."""
    text = " ".join(text.split())
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns, padded by display width so Korean text lines up."""
    widths = [max(display_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def api_calls(stats: dict) -> int:
    """API calls the simulator has answered, from its stats."""
    return sum(v for k, v in stats.items() if k.startswith(("batches.", "messages.", "models.")))


DEMO_REVIEWS = 2000
"""Reviews in the shipped sample (``batchkit/data/nsmc_sample.tsv``): the most ``demo --rows`` takes."""


def _demo_rows(text: str) -> int:
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if not 1 <= rows <= DEMO_REVIEWS:
        raise argparse.ArgumentTypeError(
            f"{text!r} rows: the demo classifies 1 to {DEMO_REVIEWS:,} reviews (the sample it ships); pass "
            f"--rows N with N in that range"
        )
    return rows


def demo_data_path() -> Path:
    """The NSMC review sample the demo uses: shipped inside the package (``batchkit/data``), so
    the demo works after a normal install, not only from a checkout."""
    return Path(str(resources.files("batchkit") / "data" / "nsmc_sample.tsv"))


def load_reviews(rows: int) -> pd.DataFrame:
    """The first ``rows`` of the NSMC Korean movie-review sample (see ``batchkit/data/README.md``)."""
    frame = pd.read_csv(demo_data_path(), sep="\t", quoting=3)
    return frame.head(rows).reset_index(drop=True)
