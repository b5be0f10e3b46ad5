"""``batchkit results``: each row's input, outputs and outcome, to one file or a Parquet dataset.

:func:`results_frame` is the table (one row per input row: what the model saw, the outputs, the
outcome); the command writes it to ``.csv`` or ``.parquet`` through a temporary file renamed into
place (never half a file, never through a link), or — for ``-o DIR/`` — as a partitioned dataset
written a job (or a run's partition) at a time, so memory holds one partition.
"""

from __future__ import annotations

import argparse
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .stores import job_store, load_job

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job

__all__ = ["DATASET_ROWS_PER_FILE", "RESULT_COLUMNS", "cmd_results", "results_frame"]

_FORMATS = (".csv", ".parquet")


def cmd_results(args: argparse.Namespace) -> int:
    from batchkit.stores.storefile import check_output_path

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
    job = load_job(args)
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
    from batchkit.engine.jobs import Job
    from batchkit.errors import JobNotFoundError

    store = job_store(args)
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


def _error(message: str) -> Exception:
    from batchkit.errors import OutputPathError

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
