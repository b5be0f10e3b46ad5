"""The console script's argument parser: every command, its arguments and its help, in one place.

The documentation's command reference is generated from :func:`build_parser` (``docs/_ext``
imports it as ``batchkit.cli._parser``), so what ``--help`` prints and what the docs say cannot
drift apart. A parse error raises :class:`UsageError` instead of exiting, so :func:`batchkit.cli.main`
reports it as every other error: one line, exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from .demo import DEMO_REVIEWS, cmd_demo, demo_rows
from .results import DATASET_ROWS_PER_FILE, cmd_results
from .stores import cmd_backup, cmd_cancel, cmd_forget, cmd_jobs, cmd_prune, cmd_status, cmd_wait

__all__ = ["COMMANDS", "Parser", "UsageError", "build_parser"]

STORE_HELP = "job store path (default: BATCHKIT_STORE, then the standard location)"

_STORE_COMMANDS: tuple[tuple[str, Callable[[argparse.Namespace], int], str], ...] = (
    ("jobs", cmd_jobs, "list every job in the store"),
    ("status", cmd_status, "show one job's rows by status and its batches"),
    ("wait", cmd_wait, "wait until a job has every answer"),
    ("cancel", cmd_cancel, "cancel a job's running batches"),
    ("results", cmd_results, "write each row's input, outputs and outcome to a file"),
    ("backup", cmd_backup, "copy the store, consistently, to one file (also to move it)"),
    ("forget", cmd_forget, "remove a job, its batches and answers from the store (answers other jobs use stay)"),
    ("prune", cmd_prune, "remove every job older than --older-than, as forget does one"),
)

COMMANDS = ("demo", "sim", *(name for name, _, _ in _STORE_COMMANDS))
"""Every command, in the order ``--help`` lists them."""


class UsageError(Exception):
    """A command line argparse cannot parse (raised instead of argparse's exit)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``batchkit`` parser: ``demo``, ``sim`` (its flags are the simulator's own) and the store commands."""
    parser = Parser(prog="batchkit", description="Claude Message Batches for pandas")
    parser.add_argument("--store", help=STORE_HELP)
    sub = parser.add_subparsers(title="commands")
    _add_demo(sub)
    sub.add_parser("sim", help="serve the local Anthropic API simulator (see --help of it)")
    for name, func, text in _STORE_COMMANDS:
        cmd = sub.add_parser(name, help=text)
        _add_store_command_arguments(cmd, name)
        cmd.set_defaults(func=func)
    return parser


def _add_demo(sub: Any) -> None:
    from batchkit.core.options import DEFAULT_MODEL

    demo = sub.add_parser("demo", help="run a real batch through the SDK on the local simulator")
    demo.add_argument(
        "--rows", type=demo_rows, default=300, help=f"how many reviews to classify, 1–{DEMO_REVIEWS:,} (default 300)"
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
    demo.set_defaults(func=cmd_demo)


def _add_store_command_arguments(cmd: argparse.ArgumentParser, name: str) -> None:
    """The arguments of one store command, in the order ``--help`` shows them."""
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
    # On each command too, so --store goes before or after it; SUPPRESS keeps a command's
    # unset --store from overwriting one given before it.
    cmd.add_argument("--store", default=argparse.SUPPRESS, help=STORE_HELP)
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


def _age(text: str) -> str:
    from batchkit.errors import InvalidOptionError
    from batchkit.stores.prune import parse_age

    try:
        parse_age(text)
    except InvalidOptionError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("older_than=", "")) from None
    return text
