"""The public surface: one explicit __all__, and every public command documented."""

from __future__ import annotations

import re
from pathlib import Path

import batchkit
from batchkit.cli import _parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_public_names():
    assert sorted(batchkit.__all__) == sorted(
        [
            "APIRefusedError",
            "BatchLostError",
            "BatchkitError",
            "BatchkitWarning",
            "BudgetExceededError",
            "CalibrationError",
            "CancelFailedError",
            "CascadeCost",
            "CascadeJob",
            "CellError",
            "ColumnCollisionError",
            "ColumnLengthError",
            "Comparison",
            "ConfigurationError",
            "CostEstimate",
            "DEFAULT_MAX_TOKENS",
            "DEFAULT_MODEL",
            "Explorer",
            "InvalidOptionError",
            "Job",
            "JobCost",
            "JobNotFoundError",
            "JobStateError",
            "MediaError",
            "MissingColumnError",
            "NoCredentialsError",
            "NotAFrameError",
            "NotAStoreError",
            "OptionTypeError",
            "OutputPathError",
            "PromptError",
            "RequestTooLargeError",
            "ResultsDownloadError",
            "Run",
            "RunNotFoundError",
            "ServerUnreachableError",
            "SpendLimitError",
            "Store",
            "StoreError",
            "StoreNotFoundError",
            "StoreReadOnlyError",
            "UnknownModelError",
            "UnknownOptionError",
            "__version__",
            "default_mode",
            "display_job",
            "forget",
            "forget_server_identities",
            "get_default_client",
            "jobs",
            "load_prices",
            "plot_estimate",
            "plot_estimate_vs_actual",
            "plot_savings_vs_prefix",
            "plot_savings_vs_rows",
            "prune",
            "set_default_client",
            "set_default_mode",
            "start_simulator",
            "text_pdf",
        ]
    )
    for name in batchkit.__all__:
        assert hasattr(batchkit, name), name


def test_every_error_is_a_batchkit_error():
    for name in batchkit.__all__:
        obj = getattr(batchkit, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, batchkit.BatchkitError), name


def test_every_command_is_in_the_readme():
    commands = _parser()._subparsers._group_actions[0].choices  # argparse keeps them here
    for command in commands:
        assert re.search(rf"batchkit {command}\b", README), f"`batchkit {command}` is not in the README"


def test_the_accessor_methods_are_in_the_readme():
    for method in ("batch", "submit", "estimate", "classify", "extract", "compare"):
        assert f"df.claude.{method}(" in README, method


def test_ci_runs_exactly_the_readmes_test_command():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    section = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", section)
    assert len(commands) == 3 and "pytest" in commands[1] and "sphinx" in commands[2]  # the demo, the tests, the docs
    assert commands[1] in [line.strip() for line in ci.splitlines()]
    assert "--no-cache-dir" in commands[1] and "--clear" in commands[1]  # the newest releases, as a new user gets them
