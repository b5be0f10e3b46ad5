"""The first hour of a new user: what batchkit prints, where it finds a job, how its objects read,
and defaults that fit the data it ships (issue: "The first hour").

Each test captures what a script (or the console script) prints and checks the lines a user needs
are there and the noise is gone.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import batchkit
from batchkit.cli import DEMO_REVIEWS, main
from batchkit.errors import ColumnCollisionError, UnknownModelError
from batchkit.simulator import Processing, SimConfig, Simulator, serve
from tests.conftest import DATA, ROOT, child_env, run_script

SETUP = """
import sys
import pandas as pd
import batchkit
from batchkit.simulator import Processing, SimConfig, Simulator
batchkit.set_default_client(Simulator(config=SimConfig(processing=Processing.instant())).client())
tweets = pd.read_csv(sys.argv[1]).head(40)
"""

BLOCK_LINES = re.compile(r"^\s+(rows|mode|batches|queue|cost|answers)\s{2,}", re.M)
"""The lines of a job's full block (render_text)."""


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_batch_call_shows_its_job_once_and_the_same_call_again_says_it_came_from_the_store():
    code = (
        SETUP
        + """
out = tweets.claude.batch("Sentiment of: {text}", output="s", max_tokens=5)
print("=== again", file=sys.stderr)
again = tweets.claude.batch("Sentiment of: {text}", output="s", max_tokens=5)
assert again["s"].equals(out["s"])
"""
    )
    first, again = _ok(run_script(code, str(DATA / "tweeteval_sentiment_val.csv"))).split("=== again\n")
    assert re.search(r"^batchkit job job_\w+ \(claude-haiku-4-5 → 's'\): succeeded", first, re.M), first
    assert "  rows     40: 40 succeeded" in first and "(batch prices)" in first
    assert "limit unknown" not in first and "  queue " not in first  # the queue only when it matters
    # The same call again: one line, nothing sent, nothing paid, and no block.
    lines = again.strip().splitlines()
    assert len(lines) == 1, again
    assert re.fullmatch(
        r"batchkit job job_\w+ \(claude-haiku-4-5 → 's'\): 40 rows answered from the store "
        r"\(40 succeeded\), nothing sent, \$0",
        lines[0],
    ), lines[0]


def test_an_empty_frame_says_it_had_no_rows_in_one_line():
    code = (
        SETUP
        + """
out = tweets.head(0).claude.batch("Sentiment of: {text}", output="s", max_tokens=5, mode="realtime")
job = batchkit.Job.of(out)
from batchkit.display.progress import render_text, snapshot
print(render_text(snapshot(job)))
"""
    )
    proc = run_script(code, str(DATA / "tweeteval_sentiment_val.csv"))
    assert re.fullmatch(r"batchkit job job_\w+ \(claude-haiku-4-5 → 's'\): no rows, nothing sent, \$0\n", _ok(proc)), (
        proc.stderr
    )
    summary = proc.stdout
    assert "starting" not in summary and "batch prices" not in summary, summary
    assert "  cost     $0 (nothing sent: no rows)" in summary


def test_a_compare_of_three_models_prints_no_job_blocks_and_reads_the_same_when_answered_from_the_store():
    code = (
        SETUP
        + """
models = ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"]
cmp = tweets.claude.compare("Sentiment of: {text}", models=models, sample=20, max_tokens=5)
print("=== again", file=sys.stderr)
again = tweets.claude.compare("Sentiment of: {text}", models=models, sample=20, max_tokens=5)
print(again)
print("=== recommended")
print(again.recommended)
print("=== jobs")
print(batchkit.jobs()[["model", "output"]].to_string())
first, second = cmp.to_frame(), again.to_frame()
assert first["seconds_per_row"].equals(second["seconds_per_row"]), (first["seconds_per_row"], second["seconds_per_row"])
"""
    )
    proc = run_script(code, str(DATA / "tweeteval_sentiment_val.csv"))
    first, again = _ok(proc).split("=== again\n")
    assert not BLOCK_LINES.search(first + again), first + again  # no job block, let alone one twice
    assert "_compare_answer" not in proc.stderr + proc.stdout
    finals = re.findall(r"^job_\w+ succeeded [^:]*: 20 rows \(20 succeeded\)", first, re.M)
    assert len(finals) == 3, first  # a final line per variant
    lines = again.strip().splitlines()
    assert len(lines) == 3 and all(
        "answered from the store" in line and "nothing sent, $0" in line for line in lines
    ), again
    table, rest = proc.stdout.split("=== recommended\n")
    assert len(table.splitlines()) <= 15 and max(map(len, table.splitlines())) <= 160, table
    recommended, jobs = rest.split("=== jobs\n")
    assert re.fullmatch(
        r"<Variant claude-\w+-\d-\d · p1: quality [\d.]+% \(\d+%–\d+%\) on 20 scored of 20 sample "
        r"rows; sample cost \$[\d.]+ at batch prices; job job_\w+>\n",
        recommended,
    ), recommended
    assert "(compare sample)" in jobs


def test_a_polars_lazy_run_says_it_starts_and_ends_with_a_final_line():
    code = """
import sys
import polars as pl
import batchkit
from batchkit.simulator import Processing, SimConfig, Simulator
batchkit.set_default_client(Simulator(config=SimConfig(processing=Processing.instant())).client())
lf = pl.scan_csv(sys.argv[1]).head(120)
out = lf.claude.batch("Sentiment of: {text}", output="s", max_tokens=5, partition_rows=50).collect()
assert out.height == 120
"""
    lines = _ok(run_script(code, str(DATA / "tweeteval_sentiment_val.csv"))).strip().splitlines()
    assert "? waiting" not in "\n".join(lines) and "0 of 0 rows" not in "\n".join(lines), lines
    assert re.fullmatch(r"batchkit: run run_\w+: starting — reading the first partition", lines[0]), lines
    assert re.fullmatch(
        r"batchkit: run run_\w+ ended: 3 partitions, 120 rows \(120 succeeded\); \$[\d.]+", lines[-1]
    ), lines


# --------------------------------------------------------------------------- the console script


def _plain_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of a plain shell: no BATCHKIT_STORE, the default stores under ``tmp_path``."""
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "batchkit"


def test_status_wait_results_and_cancel_find_a_simulator_job_from_a_plain_shell(monkeypatch, tmp_path, capsys):
    folder = _plain_shell(monkeypatch, tmp_path)
    sim_store = folder / "simulator.sqlite3"
    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    out = pd.DataFrame({"t": ["good", "bad"]}).claude.batch(
        "Sentiment: {t}", output="s", client=client, store=sim_store, progress=False, poll_interval=0.01
    )
    job_id = batchkit.Job.of(out).job_id
    said = f"job store: {sim_store} (the simulator's store)"
    for argv in (
        ["status", job_id],
        ["wait", job_id],
        ["cancel", job_id],
        ["results", job_id, "-o", str(tmp_path / "r.csv")],
    ):
        assert main(argv) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out.splitlines()
        assert printed[0] == said, (argv, printed)
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2
    # A job in neither store: the error names both, and the way to name another.
    (folder / "jobs.sqlite3").touch()
    batchkit.stores.store.Store(folder / "jobs.sqlite3").close()
    assert main(["status", "job_nosuchjob"]) == 2
    err = capsys.readouterr().err
    assert "in either default store" in err and str(sim_store) in err and "--store PATH" in err


def _read_until(fd: int, pattern: str, timeout: float = 60.0) -> bytes:
    """What a pseudo-terminal showed, read until ``pattern`` (a regex) appears or the other end closes."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
        if re.search(pattern, b"".join(chunks).decode(errors="replace"), re.M):
            break
    return b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_batchkit_wait_on_a_terminal_shows_the_jobs_progress(tmp_path):
    import pty

    store = tmp_path / "jobs.sqlite3"
    # The batch ends only when the clock is moved on, once the child has shown it running: a slow
    # start of the child (a loaded machine) cannot make it miss the running state.
    slow = Processing(fixed_latency=3600.0, per_request=0.0, concurrency=1 << 40, cancel_latency=0.0)
    with serve(Simulator(config=SimConfig(processing=slow)), port=0) as server, server.client() as client:
        job = pd.DataFrame({"t": ["good", "bad"]}).claude.submit(
            "Sentiment: {t}", output="s", store=store, client=client, poll_interval=0.05
        )
        master, slave = pty.openpty()
        env = child_env(ANTHROPIC_BASE_URL=server.base_url, ANTHROPIC_API_KEY="sk-ant-simulated")
        running = rf"^{job.job_id} running .*: 0 of 2 rows back"
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "batchkit", "wait", job.job_id, "--store", str(store)],
                stdout=subprocess.PIPE,
                stderr=slave,
                text=True,
                env=env,
                cwd=ROOT,
            )
            os.close(slave)
            before = _read_until(master, running)
            server.advance(3600)
            shown = (before + _read_until(master, r"(?!)")).decode().replace("\r\n", "\n")
            stdout = proc.communicate(timeout=60)[0]
        finally:
            os.close(master)
        job.wait()
    assert proc.returncode == 0, shown
    assert re.search(running, shown, re.M), shown
    assert re.search(rf"^batchkit job {job.job_id} \(claude-haiku-4-5 → 's'\): succeeded", shown, re.M), shown
    assert stdout.splitlines()[0] == f"job store: {store}"
    assert stdout.splitlines()[-1].startswith(f"{job.job_id}: 2 rows")


# --------------------------------------------------------------------------- objects and defaults


def test_classify_runs_on_every_shipped_labelled_dataset_without_output(tmp_path):
    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    shipped = {"nsmc_sample.tsv": "document", "tweeteval_sentiment_val.csv": "text"}
    for name, column in shipped.items():
        path = DATA / name
        frame = pd.read_csv(path, sep="\t", quoting=3) if name.endswith(".tsv") else pd.read_csv(path)
        assert "label" in frame.columns  # the column a default named "label" collided with
        out = frame.head(5).claude.classify(
            f"Sentiment of: {{{column}}}",
            labels=["negative", "positive"],
            client=client,
            progress=False,
            poll_interval=0.01,
        )
        assert out["classification"].notna().all() and out["label"].equals(frame.head(5)["label"])
    for path in DATA.iterdir():  # no shipped table has a column of that name
        if path.suffix in (".csv", ".tsv"):
            columns = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", nrows=0, quoting=3).columns
            assert "classification" not in columns, path
    taken = pd.DataFrame({"t": ["x"], "classification": ["y"]})
    with pytest.raises(ColumnCollisionError, match="Choose another output="):
        taken.claude.classify("{t}", labels=["a", "b"], client=client, progress=False)


def test_a_realtime_jobs_cost_says_no_saving_rather_than_minus_zero_percent():
    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    job = pd.DataFrame({"t": ["good", "bad", "fine"]}).claude.submit(
        "Sentiment: {t}", output="s", client=client, mode="realtime"
    )
    cost = job.wait().cost
    assert "-0%" not in repr(cost) + str(cost) + cost._repr_html_()
    assert repr(cost) == f"<JobCost ${cost.total:,.4f} on claude-haiku-4-5, no saving against the standard price>"
    assert "— no saving" in str(cost)


def test_an_unknown_haiku_like_model_is_given_a_haiku_price_as_its_example():
    with pytest.raises(UnknownModelError) as raised:
        batchkit.costs.pricing.load_prices().get("claude-haiku-4-6")
    assert '"input": 1.00, "output": 5.00' in str(raised.value)
    assert '"input": 3.00' not in str(raised.value)


def test_the_demo_and_the_readme_agree_on_its_model_and_its_figure(capsys, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    started = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    sim_readme = (ROOT / "batchkit" / "simulator" / "README.md").read_text(encoding="utf-8")
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "_ext"))
    import batchkit_reference as options_reference

    assert main(["demo", "--rows", str(DEMO_REVIEWS)]) == 0
    printed = capsys.readouterr().out
    assert f"Message Batches naming\n{batchkit.DEFAULT_MODEL}," in printed
    assert f"Message Batch for `{batchkit.DEFAULT_MODEL}`, batchkit's default model" in " ".join(readme.split())
    assert f"Message Batch for `{batchkit.DEFAULT_MODEL}`, batchkit's default model" in " ".join(started.split())
    assert (
        f"| `model` | `{batchkit.DEFAULT_MODEL!r}` |" in options_reference.options_markdown()
    )  # the docs' options table
    figure = re.search(r"agrees with the labels on [\d,]+ of 2,000 reviews \(([\d.]+%)\)", printed)
    assert figure, printed
    row = next(line for line in sim_readme.splitlines() if line.startswith("| `nsmc_sample.tsv`"))
    assert row.split("|")[3].strip() == f"**{figure.group(1)}**", row  # the free-text column, measured on all 2,000
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:  # no second copy of the figure to drift
        assert not re.search(r"\d+% of\s+the Korean reviews", page.read_text(encoding="utf-8")), page


def test_every_object_a_user_prints_fits_on_a_screen_without_internal_names_or_raw_arrays():
    import polars as pl

    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    batchkit.set_default_client(client)
    tweets = pd.read_csv(DATA / "tweeteval_sentiment_val.csv").head(30)
    prompt = "Sentiment of: {text}"
    job = tweets.claude.submit(prompt, output="s", max_tokens=5).wait()
    estimate = tweets.claude.estimate(prompt, output="s", max_tokens=5)
    cmp = tweets.claude.compare(
        prompt, models=["claude-haiku-4-5", "claude-sonnet-4-6"], sample=10, max_tokens=5, progress=False
    )
    run = (
        pl.from_pandas(tweets).lazy().claude.submit(prompt, output="s", max_tokens=5, partition_rows=10, progress=False)
    )
    run.wait()
    objects = {
        "Job": job,
        "JobCost": job.cost,
        "CostEstimate": estimate,
        "Comparison": cmp,
        "Variant": cmp.recommended,
        "Run": run,
        "sample job": cmp.recommended.job,
    }
    for name, obj in objects.items():
        views = [repr(obj), str(obj)] + ([obj._repr_html_()] if hasattr(obj, "_repr_html_") else [])
        for view in views:
            assert len(view.splitlines()) <= 25 and len(view) <= 6000, (name, view)
            for noise in ("_compare_answer", "array(", "Variant(", "dtype=", "Run run run_", "-0%", "? waiting"):
                assert noise not in view, (name, noise, view)
