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

The package: :mod:`.parser` (every command's arguments and help; the docs are generated from
it), :mod:`.stores` (finding the store; ``jobs``, ``status``, ``wait``, ``cancel``, ``backup``,
``forget``, ``prune``), :mod:`.results` (``results``), :mod:`.demo` (``demo``). ``sim`` hands its
arguments to :mod:`batchkit.simulator`. This module is the entry point (``batchkit.cli:main``).

May import: anything in :mod:`batchkit` (the console script sits on top of the package); nothing
imports it but the console script and the docs' reference builder.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Sequence

# Re-exports: the tests, the docs' reference builder (``_parser``) and scripts import these from here.
from .demo import DEMO_REVIEWS as DEMO_REVIEWS
from .demo import api_calls as api_calls
from .demo import demo_data_path as demo_data_path
from .demo import display_width as display_width
from .demo import load_reviews as load_reviews
from .parser import COMMANDS, Parser, UsageError
from .parser import build_parser as _parser
from .results import results_frame as results_frame

__all__ = ["main"]

ERROR_EXIT = 2
"""The exit status of every failed command."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv  # what follows a leading --store
    if rest[:1] == ["--store"]:
        rest = rest[2:]
    elif rest[:1] and rest[0].startswith("--store="):
        rest = rest[1:]
    if rest and rest[0] == "sim":  # its own flags, parsed by the simulator (a --store before it is moot)
        from batchkit.simulator.__main__ import build_parser as sim_parser
        from batchkit.simulator.__main__ import main as sim_main

        try:
            return int(sim_main(rest[1:], parser=sim_parser(Parser, prog="batchkit sim")) or 0)
        except UsageError as exc:  # a bad argument, checked before anything is served
            return _fail(str(exc))
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        return _fail(f"name a command: {', '.join(COMMANDS)} (see `batchkit --help`)")
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

    from batchkit.errors import BatchkitError

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
