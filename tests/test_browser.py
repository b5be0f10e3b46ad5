"""The job widget in a real browser: JupyterLab on loopback, headless Chromium, a running job.

JupyterLab serves a notebook on 127.0.0.1; headless Chromium (Debian's ``chromium``, driven over
the DevTools protocol on a pipe, see ``tests/browser/cdp.py``) opens it and runs every cell.
The notebook submits a job on the simulator and shows it with ``display_job``. The test then
watches the page: the widget renders, shows the job running with its batches in progress,
fills in as batches end, and turns green when the job ends. Screenshots of both moments are
saved under ``artifacts/browser/`` (or ``$BATCHKIT_ARTIFACTS/browser``).

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

# Batches of 40 and 20 requests, 10 at a time: the small one ends after ~4 s, the other ~5 s.
sim = batchkit.start_simulator(processing=Processing(fixed_latency=3.0, per_request=0.5, concurrency=10))
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
    root = tmp_path / "root"
    root.mkdir()
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIVE_JOB), nbformat.v4.new_code_cell(SLOW_JOB)])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, root / "live_job.ipynb")
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
        yield f"{base}/lab/tree/live_job.ipynb?token={token}"
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
            # Running with its batch created: on a loaded machine the widget can first show the
            # moment before the create (rows "waiting for their batch"), which is right but not
            # the state this test checks.
            running = page.wait_for(
                live,
                timeout=60,
                poll=0.1,
                until=lambda s: bool(s) and s["status"] == "running" and "in progress" in s["text"],
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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = page.evaluate(live)
            states.append(state)
            if state and state["done"] and "progress-bar-success" in state["bar"]:
                break
            time.sleep(0.1)
        page.screenshot(ARTIFACTS / "widget-ended.png")

        # The second job's Cancel button, clicked with the mouse, cancels it through job.cancel().
        before = page.wait_for(slow, timeout=30, until=lambda s: bool(s) and bool(s["cancel"]))
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
