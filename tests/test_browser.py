"""The job widget and the cost explorer in a real browser: JupyterLab on loopback, headless Chromium.

JupyterLab serves a notebook on 127.0.0.1; headless Chromium (Debian's ``chromium``, driven over
the DevTools protocol on a pipe, see ``tests/browser/cdp.py``) opens it and runs every cell.
The notebook submits a job on the simulator and shows it with ``display_job``. The test then
watches the page: the widget renders, shows the job running with its batches in progress,
fills in as batches end, and turns green when the job ends. Screenshots of both moments are
saved under ``artifacts/browser/`` (or ``$BATCHKIT_ARTIFACTS/browser``). A second notebook shows
``df.claude.explore(...)``; the test types a row count into its rows box and picks another caching
in its dropdown, and the figures shown become ``estimate()``'s for those settings.

Needs ``apt-get install -y chromium`` (or ``BATCHKIT_CHROMIUM=/path/to/chrome``). Without one
the test is skipped — except in CI (``CI`` set), where a missing browser is a failure.
Run alone: ``.venv/bin/python -m pytest tests/test_browser.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from cdp import Browser, find_chromium

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupyterlab")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("BATCHKIT_ARTIFACTS") or ROOT / "artifacts") / "browser"

pytestmark = pytest.mark.slow

LIVE_JOB = """\
import os, tempfile
import pandas as pd
import batchkit
from batchkit import display_job
from batchkit.simulator import Processing

# Batches of 40 and 20 requests, 5 at a time, a second each: the small one ends after ~7 s, the
# other ~11 s — four seconds with a third of the rows back, for the widget to show on a loaded machine.
sim = batchkit.start_simulator(processing=Processing(fixed_latency=3.0, per_request=1.0, concurrency=5))
os.environ["BATCHKIT_STORE"] = os.path.join(tempfile.mkdtemp(), "jobs.sqlite3")
reviews = pd.DataFrame({"text": [f"review {i}: a great film, I loved it" for i in range(60)]})
job = reviews.claude.submit("Sentiment, one of positive or negative: {text}",
                            output="sentiment", max_tokens=5, chunk_size=40)
view = display_job(job)
"""

SLOW_JOB = """\
# A job whose batch would take ten minutes: the test cancels it with the widget's button.
slow_sim = batchkit.start_simulator(processing=Processing(fixed_latency=600.0))
slow = reviews.head(10).claude.submit("Summarise: {text}", output="summary", max_tokens=20)
slow_view = display_job(slow)
"""

# The explorer's rows: one length each, under a shared system prompt long enough to cache, so a
# frame of N such rows is what the explorer's scaling describes (tests/test_explore.py too).
EXPLORE_SYSTEM = "You label movie reviews. " + " ".join(
    f"Rule {i}: weigh the reviewer's verdict over isolated complaints and read sarcasm by its intent."
    for i in range(400)
)
EXPLORE_PROMPT = "Sentiment of this review: {t}"


def explore_rows(n: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"t": [f"review {i:08d}: a fine film, well acted" for i in range(n)]})


EXPLORE = f"""\
import os, tempfile
import pandas as pd
import batchkit

os.environ["BATCHKIT_STORE"] = os.path.join(tempfile.mkdtemp(), "jobs.sqlite3")
reviews = pd.DataFrame({{"t": [f"review {{i:08d}}: a fine film, well acted" for i in range(200)]}})
explorer = reviews.claude.explore({EXPLORE_PROMPT!r}, system={EXPLORE_SYSTEM!r}, max_tokens=20)
explorer
"""

EXPLORER_STATE = """(() => {
  const panel = document.querySelector('.batchkit-explorer-panel');
  if (!panel) return null;
  const table = panel.querySelector('.batchkit-explorer');
  const figure = (mode, name) => {
    const cell = table && table.querySelector(`tr[data-mode="${mode}"] td[data-figure="${name}"]`);
    return cell ? {value: parseFloat(cell.dataset.value), text: cell.innerText} : null;
  };
  const rows = Array.from(panel.querySelectorAll('.widget-text')).find(
    w => w.querySelector('label') && w.querySelector('label').innerText.trim() === 'rows');
  const input = rows ? rows.querySelector('input') : null;
  const box = input ? input.getBoundingClientRect() : null;
  return {
    rows: table ? parseInt(table.dataset.rows) : null,
    batch: figure('batch', 'typical'),
    batch_high: figure('batch', 'high'),
    realtime: figure('realtime', 'typical'),
    finish: figure('realtime', 'finish'),
    input: box ? {x: box.x + box.width / 2, y: box.y + box.height / 2} : null,
    text: panel.innerText,
  };
})()"""

KERNEL_STATE = """(() => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return 'no app';
  const panel = app.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.context) return 'no notebook';
  if (!panel.context.isReady || !panel.sessionContext.isReady) return 'loading';
  if (!panel.content || panel.content.widgets.length === 0) return 'no cells';
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : 'no kernel';
})()"""

WIDGET_STATE = """((n) => {
  const root = document.querySelectorAll('.batchkit-job-widget')[n];
  if (!root) return null;
  const job = root.querySelector('.batchkit-job');
  const bar = root.querySelector('.progress-bar');
  const button = (label) => Array.from(root.querySelectorAll('button')).find(b => b.innerText.includes(label));
  const box = (b) => {
    if (!b || b.offsetParent === null) return null;
    const r = b.getBoundingClientRect();
    return {x: r.x + r.width / 2, y: r.y + r.height / 2};
  };
  return {
    job: job ? job.dataset.job : null,
    status: job ? job.dataset.status : null,
    done: job ? job.dataset.done === 'true' : null,
    style: job ? job.dataset.style : null,
    bar: bar ? bar.className : '',
    width: bar ? parseFloat(bar.style.width || '0') : -1,
    cancel: box(button('Cancel')),
    text: root.innerText,
  };
})(%d)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chromium() -> str:
    found = find_chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium for the browser test: apt-get install -y chromium")
        pytest.skip("no Chromium here: apt-get install -y chromium (or set BATCHKIT_CHROMIUM)")
    return found


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 serving a directory with the live-job notebook; yields its URL."""
    yield from _serve(tmp_path, "live_job.ipynb", [LIVE_JOB, SLOW_JOB])


@pytest.fixture
def explore_lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 serving a notebook that shows ``df.claude.explore(...)``; yields its URL."""
    yield from _serve(tmp_path, "explore.ipynb", [EXPLORE])


def _serve(tmp_path: Path, name: str, cells: list[str]) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 serving a directory with one notebook of ``cells``; yields its URL."""
    root = tmp_path / "root"
    root.mkdir()
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, root / name)
    settings = tmp_path / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    # No news and no update checks: the page must not try to reach the internet.
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "TMPDIR": str(tmp_path),
    }
    log = (tmp_path / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.25)
        yield f"{base}/lab/tree/{name}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


def _click(page: Any, point: dict[str, float]) -> None:
    """A real mouse click (press and release) at a point of the page."""
    for kind in ("mousePressed", "mouseReleased"):
        page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1},
        )


def _ended(state: dict[str, Any] | None) -> bool:
    """Whether the live job's widget shows it ended: green, full, its counts, Cancel gone."""
    return (
        bool(state)
        and state["status"] == "ended"
        and state["done"]
        and "progress-bar-success" in state["bar"]
        and state["width"] == pytest.approx(100.0)
        and "60 rows: 60 succeeded" in state["text"]
        and not state["cancel"]
    )


def test_the_job_widget_renders_changes_state_and_cancels_in_jupyterlab(chromium: str, lab: str) -> None:
    live = WIDGET_STATE % 0
    slow = WIDGET_STATE % 1
    states: list[dict[str, Any]] = []
    with Browser.launch(chromium) as browser:
        page = browser.open(lab)
        try:
            page.wait_for(KERNEL_STATE, timeout=90, until=lambda s: s == "idle")
            time.sleep(1.0)  # let the widget manager finish registering with the new kernel
            page.wait_for(KERNEL_STATE, timeout=30, until=lambda s: s == "idle")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')", timeout=60)
            # Running with its batch created, Cancel laid out: on a loaded machine the widget can
            # first show the moment before the create (rows "waiting for their batch"), which is
            # right but not the state this test checks.
            running = page.wait_for(
                live,
                timeout=60,
                poll=0.1,
                until=lambda s: (
                    bool(s) and s["status"] == "running" and "in progress" in s["text"] and bool(s["cancel"])
                ),
            )
        except TimeoutError as exc:
            page.screenshot(ARTIFACTS / "failure.png")
            shown = page.evaluate(
                "document.querySelector('.jp-Notebook') ? "
                "document.querySelector('.jp-Notebook').innerText : document.body.innerText"
            )
            raise AssertionError(f"{exc}\npage shows:\n{shown}") from None
        states.append(running)
        page.screenshot(ARTIFACTS / "widget-running.png")
        # Every state on the way, until the widget shows all of the ended job the assertions below
        # read: it updates the bar, then the text, then hides Cancel, one message each.
        deadline = time.monotonic() + 60
        while not _ended(states[-1]):
            if time.monotonic() > deadline:
                page.screenshot(ARTIFACTS / "failure.png")
                widths = [s["width"] for s in states if s]
                raise AssertionError(
                    f"after 60 s the widget has not shown the job ended: {states[-1]} (widths {widths})"
                )
            time.sleep(0.1)
            states.append(page.evaluate(live))
        page.screenshot(ARTIFACTS / "widget-ended.png")

        # The second job's Cancel button, clicked with the mouse, cancels it through job.cancel().
        # Its batch created (as for the first job, the widget may show the moment before the create).
        before = page.wait_for(
            slow,
            timeout=30,
            until=lambda s: bool(s) and bool(s["cancel"]) and s["status"] == "running" and "in progress" in s["text"],
        )
        assert before["status"] == "running" and "in progress" in before["text"]
        page.evaluate("document.querySelectorAll('.batchkit-job-widget')[1].scrollIntoView()")
        _click(page, page.evaluate(slow)["cancel"])
        canceled = page.wait_for(slow, timeout=60, until=lambda s: bool(s) and bool(s["done"]))
        page.screenshot(ARTIFACTS / "widget-canceled.png")

    first, last = states[0], states[-1]
    # Rendered, running: batches in progress, no counts yet, nothing coloured, Cancel offered.
    assert "in progress" in first["text"] and "counts come when the batch ends" in first["text"]
    assert first["style"] == "" and first["cancel"]
    assert not any(c in first["bar"] for c in ("progress-bar-success", "progress-bar-danger"))
    # Changed state: ended, green, full, counts filled in, Cancel gone.
    assert last["status"] == "ended" and last["done"], f"the widget never showed the job ended: {last}"
    assert "progress-bar-success" in last["bar"] and last["width"] == pytest.approx(100.0)
    assert "60 rows: 60 succeeded" in last["text"] and not last["cancel"]
    widths = sorted({s["width"] for s in states if s})
    assert any(0 < w < 100 for w in widths), f"rows never filled in batch by batch: {widths}"
    assert (ARTIFACTS / "widget-ended.png").stat().st_size > 10_000
    # Canceled from the browser: every row canceled, amber, no Cancel button any more.
    assert canceled["status"] == "canceled" and "progress-bar-warning" in canceled["bar"]
    assert "10 rows: 10 canceled" in canceled["text"] and not canceled["cancel"]


def _type(page: Any, point: dict[str, float], text: str) -> None:
    """Click into an input, select what it holds, type ``text`` and press Enter, as a person would."""
    _click(page, point)
    select_all = {"key": "a", "code": "KeyA", "modifiers": 2}  # Ctrl+A
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", **select_all, "commands": ["selectAll"]})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", **select_all})
    page.send("Input.insertText", {"text": text})
    for kind in ("keyDown", "keyUp"):
        page.send(
            "Input.dispatchKeyEvent",
            {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
        )


def test_the_explorer_panel_shows_estimates_figures_as_its_controls_move(chromium: str, explore_lab: str) -> None:
    import batchkit  # noqa: F401  (registers df.claude in this process: the expected figures)

    call = {"system": EXPLORE_SYSTEM, "max_tokens": 20}
    first = explore_rows(200).claude.estimate(EXPLORE_PROMPT, **call)
    moved = explore_rows(4000).claude.estimate(EXPLORE_PROMPT, **call)
    off = explore_rows(4000).claude.estimate(EXPLORE_PROMPT, cache=False, **call)
    with Browser.launch(chromium) as browser:
        page = browser.open(explore_lab)
        try:
            page.wait_for(KERNEL_STATE, timeout=90, until=lambda s: s == "idle")
            time.sleep(1.0)  # let the widget manager finish registering with the new kernel
            page.wait_for(KERNEL_STATE, timeout=30, until=lambda s: s == "idle")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')", timeout=60)
            shown = page.wait_for(EXPLORER_STATE, timeout=60, until=lambda s: bool(s) and bool(s["input"]))
            page.screenshot(ARTIFACTS / "explorer-200.png")
            # A row count typed into the rows box: the figures become estimate()'s for 4,000 rows.
            _type(page, shown["input"], "4000")
            typed = page.wait_for(EXPLORER_STATE, timeout=30, until=lambda s: bool(s) and s["rows"] == 4000)
            page.screenshot(ARTIFACTS / "explorer-4000.png")
            # Caching turned off in its dropdown: the batch line becomes estimate(cache=False)'s batch price.
            page.evaluate(
                "(() => { const s = Array.from(document.querySelectorAll('.batchkit-explorer-panel select'))"
                ".find(s => Array.from(s.options).some(o => o.text === 'prime'));"
                " s.value = Array.from(s.options).find(o => o.text === 'off').value;"
                " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
            )
            uncached = page.wait_for(
                EXPLORER_STATE, timeout=30, until=lambda s: bool(s) and "batch + 1h cache" not in s["text"]
            )
        except TimeoutError as exc:
            page.screenshot(ARTIFACTS / "explorer-failure.png")
            raise AssertionError(f"{exc}\npage shows:\n{page.evaluate('document.body.innerText')}") from None

    assert shown["rows"] == 200
    assert shown["batch"]["value"] == pytest.approx(first["batch+1h"].typical, rel=1e-12)
    assert shown["realtime"]["value"] == pytest.approx(first["standard"].typical, rel=1e-12)
    assert typed["batch"]["value"] == pytest.approx(moved["batch+1h"].typical, rel=1e-12)
    assert typed["batch_high"]["value"] == pytest.approx(moved["batch+1h"].high, rel=1e-12)
    assert typed["realtime"]["value"] == pytest.approx(moved["standard"].typical, rel=1e-12)
    assert typed["finish"]["value"] == pytest.approx(moved.finish_seconds["realtime"])
    assert typed["batch"]["text"] == f"${moved['batch+1h'].typical:,.2f}"  # what a person reads, too
    assert typed["batch"]["value"] != shown["batch"]["value"]
    assert uncached["batch"]["value"] == pytest.approx(off["batch"].typical, rel=1e-12)
    assert uncached["batch"]["value"] != typed["batch"]["value"]
