"""Documentation that runs: every code block of README.md and docs/ is executed here, and the
reference (options, errors, the command line, the public names) is checked against its one source.

A page's blocks run in order in one namespace (as a reader would run them in one notebook), in a
fresh folder that has the shipped ``data/`` beside it, against batchkit's simulator and a job
store of the test's own. ``python`` blocks are executed; ``bash`` blocks are ``batchkit``
commands run in process (``$JOB`` is the newest job in the store). A block that must not run says
so on the line before it: ``<!-- not run: why -->``. ``text`` blocks show output, not code.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
import warnings
from pathlib import Path

import pytest

import batchkit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import batchkit_reference as reference  # noqa: E402

PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")], key=lambda p: (p != ROOT / "README.md", str(p)))
PAGES = [p for p in PAGES if "_build" not in p.parts]
FENCE = re.compile(r"^(```+|~~~+)(.*)$")
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->")
LANGUAGES = {"python", "bash", "text"}


def blocks(path: Path) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, why not run)`` of each fenced block of a Markdown page."""
    found = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i].strip())
        if not match:
            i += 1
            continue
        fence, info = match.group(1), match.group(2).strip()
        indent = len(lines[i]) - len(lines[i].lstrip())
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][indent:])
            i += 1
        i += 1
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        why = NOT_RUN.search(before)
        found.append((start + 1, info.split()[0] if info else "", "\n".join(body) + "\n", why and why.group(1)))
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_block_says_what_it_is():
    """A fence names its language, and only python, bash and text are used; a directive is no code."""
    for page in PAGES:
        for line, language, _, _ in blocks(page):
            assert language in LANGUAGES or language.startswith("{"), f"{_id(page)}:{line}: ```{language}"


def test_the_blocks_are_counted():
    """The count the docs' note gives (docs/contributing.md) is the count there is."""
    counted = [b for page in PAGES for b in blocks(page) if b[1] in ("python", "bash")]
    run = [b for b in counted if b[3] is None]
    note = (DOCS / "contributing.md").read_text()
    match = re.search(r"(\d+) code blocks, (\d+) of them run", note)
    assert match, "docs/contributing.md says how many code blocks the tests run"
    assert (int(match.group(1)), int(match.group(2))) == (len(counted), len(run))


def _cli(line: str, env: dict[str, str]) -> None:
    from batchkit.cli import main

    args = [os.path.expandvars(a) if a.startswith("$") else a for a in shlex.split(line, comments=True)]
    os.environ.update(env)
    assert args[0] == "batchkit", f"a bash block holds batchkit commands only: {line}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args[1:])
    assert status == 0, f"`{line}` exited {status}: {err.getvalue()}"


def _runnable(page: Path) -> list[tuple[int, str, str, str | None]]:
    return [b for b in blocks(page) if b[1] in ("python", "bash") and b[3] is None]


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=_id)
def test_the_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runnable = _runnable(page)
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    try:
        for line, language, code, _ in runnable:
            where = f"{_id(page)}:{line}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", batchkit.BatchkitWarning)  # failed rows are told, on purpose
                if language == "python":
                    exec(compile(code, where, "exec"), namespace)
                else:
                    jobs = batchkit.jobs()
                    env = {"JOB": str(jobs["job_id"].iloc[0]) if len(jobs) else ""}
                    for command in code.splitlines():
                        if command.strip() and not command.lstrip().startswith("#"):
                            _cli(command, env)
    finally:
        for server in list(batchkit.local._running):
            server.stop()
        import matplotlib.pyplot as plt

        plt.close("all")


# --------------------------------------------------------------------------- the reference, from its sources


def _reference(name: str) -> str:
    return (DOCS / "reference" / name).read_text()


def test_every_option_is_documented():
    """Every option field of batchkit/options.py has its docstring, and the options page generates the table."""
    rows = reference.options()
    assert {"model", "max_tokens", "mode", "deadline", "queue_limit", "max_cost", "sample"} <= {r["name"] for r in rows}
    undocumented = [r["name"] for r in rows if not r["doc"]]
    assert not undocumented, f"options without a docstring under their field in batchkit/options.py: {undocumented}"
    table = reference.options_markdown()
    for row in rows:
        assert f"| `{row['name']}` |" in table
    assert "```{batchkit-options}" in _reference("options.md")


def test_every_error_is_documented():
    """Every class in batchkit/errors.py has a docstring, is exported, and the errors page generates them."""
    classes = reference.errors()
    assert batchkit.BatchLostError in classes and batchkit.BatchkitWarning in classes
    generated = reference.errors_markdown()
    for cls in classes:
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} has no docstring"
        assert cls.__name__ in batchkit.__all__, f"{cls.__name__} is not exported from batchkit"
        assert f"batchkit.{cls.__name__}\n" in generated
    assert "```{batchkit-errors}" in _reference("errors.md")


def test_every_command_is_documented():
    """Every command and argument of the command line has its help, and the CLI page generates them."""
    commands = reference.cli()
    assert {"jobs", "status", "wait", "cancel", "results", "backup", "forget", "prune", "demo", "sim"} <= set(commands)
    for name, command in commands.items():
        assert command["help"], f"`batchkit {name}` has no help"
        for label, text in command["arguments"].items():
            assert text, f"`batchkit {name} {label}` has no help"
    assert "```{batchkit-cli}" in _reference("cli.md")


def test_every_public_name_is_in_the_api_reference():
    api = _reference("api.md") + _reference("errors.md")
    errors = {cls.__name__ for cls in reference.errors()}
    for name in batchkit.__all__:
        if name in errors or name == "__version__":
            continue
        assert re.search(rf"batchkit\.{re.escape(name)}\b", api), f"batchkit.{name} is not in docs/reference/api.md"


def test_every_simulator_error_is_in_the_api_reference():
    """The errors batchkit.simulator exports (a state file it cannot use, …) are documented with it."""
    import batchkit.simulator

    api = _reference("api.md")
    exported = [getattr(batchkit.simulator, name) for name in batchkit.simulator.__all__]
    errors = [obj.__name__ for obj in exported if isinstance(obj, type) and issubclass(obj, Exception)]
    assert "StateError" in errors
    for name in errors:
        assert f"batchkit.simulator.{name}\n" in api, f"batchkit.simulator.{name} is not in docs/reference/api.md"


NAMED = re.compile(r"(?<![\w/.])batchkit\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")
SOURCE_FILE = re.compile(r"batchkit/[\w/]+\.py")


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "contributing.md"], ids=_id)
def test_pages_name_public_objects_only(page: Path):
    """Users read names that stay — batchkit.X, batchkit.simulator.X — never a module the layout may move."""
    import batchkit.simulator

    text = page.read_text()
    internal = set(SOURCE_FILE.findall(text))
    for match in NAMED.finditer(text):
        name, attribute = match.groups()
        if name == "simulator":
            if attribute and attribute not in batchkit.simulator.__all__:
                internal.add(match.group(0))
        elif name not in batchkit.__all__:
            internal.add(match.group(0))
    assert not internal, (
        f"{_id(page)} names what is not public (export it, or move it to contributing.md): {sorted(internal)}"
    )


def test_every_environment_variable_is_documented():
    """Each BATCHKIT_*/ANTHROPIC_* variable batchkit reads is in docs/reference/environment.md."""
    read = set()
    for path in (ROOT / "batchkit").rglob("*.py"):
        read |= set(re.findall(r"[\"'](BATCHKIT_[A-Z_]+|ANTHROPIC_[A-Z_]+|XDG_[A-Z_]+)[\"']", path.read_text()))
    read -= {"BATCHKIT_CRASH_AT"}  # the recovery tests' crash points, on the contributing page
    page = _reference("environment.md")
    assert {"BATCHKIT_STORE", "BATCHKIT_MODE"} <= read
    assert not [name for name in sorted(read) if f"`{name}`" not in page]


# --------------------------------------------------------------------------- the front door


def test_the_readme_is_a_front_door():
    """At most about 200 lines; the realtime loop, the extras and "was my sample reused?" on its first screens."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    first = "\n".join(lines[:110])
    for needle in (
        'mode="realtime"',
        "claude-batchkit[polars]",
        "claude-batchkit[dask]",
        "Was my sample reused?",
        "docs/getting-started.md",
    ):
        assert needle in first, needle


def test_ci_builds_the_docs_with_the_readmes_command():
    """One command builds the docs from a fresh clone, warnings as errors, and CI runs that very command."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "sphinx" in line and line.startswith("python3 -m venv"))
    assert " -W " in command
    assert command in [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]


def test_every_page_gives_the_readmes_test_command():
    """The pages that repeat the test command (getting started, contributing) give CI's very line."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)
    for page in PAGES:
        for line in page.read_text().splitlines():
            if line.startswith("python3 -m venv") and "pytest" in line:
                assert line == command, f"{_id(page)} gives another test command than the README's: {line}"
