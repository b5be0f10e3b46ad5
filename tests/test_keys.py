"""Request keys leave out cache breakpoints and their TTL, and stores written before keep their answers.

"Before" is run for real: the previous key scheme is this code with no unmarked view of the
params (``batchkit.core.keys.unmarked_params`` answering None keys every request by its body as
sent, byte for byte what the previous release did), and a store at schema 3 is that store
without migration 4's table and version.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import batchkit
from batchkit.core import keys, plan
from batchkit.core.keys import params_key
from batchkit.engine import calls
from batchkit.simulator import Processing, spawn
from batchkit.stores.schema import MIGRATIONS as _MIGRATIONS
from batchkit.stores.store import Store
from tests.conftest import frame, run_script
from tests.test_costs import INSTRUCTIONS

PROMPT = INSTRUCTIONS + "{t}"
MODEL = "claude-sonnet-4-6"


def _keys(df: pd.DataFrame, prompt: str = PROMPT, max_tokens: int = 5, **kwargs) -> list[str | None]:
    return calls.prepare(df, prompt, output="o", model=MODEL, max_tokens=max_tokens, **kwargs).plan.row_keys


def _tail(params) -> str:
    """A short answer that is a function of the row's text, so a misplaced answer shows."""
    content = params["messages"][0]["content"]
    text = content if isinstance(content, str) else "".join(b["text"] for b in content)
    return "re:" + text[-12:]


def make_sim():
    from batchkit.simulator import SimConfig, Simulator

    return Simulator(config=SimConfig(processing=Processing.instant()), responder=_tail)


def _as_schema_3(path: Path) -> None:
    """Make a store what the previous release left: no ``key_aliases``, ``user_version`` 3."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE key_aliases")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


def test_uncached_keys_are_unchanged_byte_for_byte():
    # Computed with the previous release (main before this change) for the same request.
    df = pd.DataFrame({"t": ["row 0", 'naïve "quoted" text']})
    assert _keys(df, "Echo {t}", cache=False) == [
        "71ba45d342bde44e98ad7460b9e36a17",
        "0003586536ebc67f224ae8f2954ecc17",
    ]
    # ...and a cached request now has the key the previous release gave it sent uncached.
    uncached = ["667588b261e2e3678b4a2d95cd0c2d0b", "c8bf7e21955ee9f122771ad7bfd28192"]
    assert _keys(df, cache=False) == _keys(df) == uncached


def test_cache_false_auto_and_either_ttl_render_one_key():
    df = pd.DataFrame({"t": ["a", 'b é "x" \\ \n', "a", None]})
    off = _keys(df, cache=False)
    assert off[0] == off[2] and off[0] != off[1] and off[3] is None
    assert _keys(df) == _keys(df, cache_ttl="5m") == _keys(df, cache="prime") == off
    marked = calls.prepare(df, PROMPT, output="o", model=MODEL, max_tokens=5, cache_ttl="5m")
    assert marked.cached and b"cache_control" in marked.template.prefix  # still sent with its breakpoint
    # A breakpoint on the system prompt (no shared lead) keys like the plain system string too.
    system = dict(system=INSTRUCTIONS, prompt="{t}")
    marked_system = calls.prepare(df, output="o", model=MODEL, max_tokens=5, **system)
    assert marked_system.cached and marked_system.plan.row_keys == _keys(df, cache=False, **system)
    # The key of a request read back from the store (a retry) is the one its row renders.
    for text, key in zip(["a", 'b é "x" \\ \n'], _keys(df)[:2], strict=True):
        assert params_key(marked.template.params(text)) == key == marked.template.key(text)
        assert (
            params_key(marked_system.template.params(text)) == _keys(df, cache=False, **system)[0 if text == "a" else 1]
        )


def test_the_same_call_with_cache_false_or_another_ttl_sends_nothing(tmp_path):
    sim = make_sim()
    client = sim.client()
    df = frame(6)
    kwargs = dict(model=MODEL, max_tokens=20, client=client, poll_interval=0.01)
    first = df.claude.batch(PROMPT, cache_ttl="1h", **kwargs)
    sent = sim.stats()["batch_requests_received"]
    assert sent == 6 and first["response"].notna().all()
    for cache in ({"cache": False}, {"cache_ttl": "5m"}, {"cache": "auto"}):
        again = df.claude.batch(PROMPT, **cache, **kwargs)
        assert again["response"].equals(first["response"])
    assert sim.stats()["batch_requests_received"] == sent  # nothing sent the second time
    # Realtime reuses the batch's answers as well: one key whichever backend paid for it.
    realtime = df.claude.batch(PROMPT, cache=False, mode="realtime", **kwargs)
    assert realtime["response"].equals(first["response"]) and sim.stats()["batch_requests_received"] == sent


def _old_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "unmarked_params", lambda params: None)
    monkeypatch.setattr(plan, "unmarked_params", keys.unmarked_params)  # the template's reader of it


def test_a_store_of_the_previous_release_keeps_its_answers_and_finds_its_job(tmp_path, monkeypatch):
    sim = make_sim()
    client = sim.client()
    df = frame(5)
    old_path, path = tmp_path / "old.sqlite3", tmp_path / "jobs.sqlite3"
    kwargs = dict(model=MODEL, max_tokens=20, client=client, poll_interval=0.01)
    with monkeypatch.context() as patch:
        _old_keys(patch)
        old_row_keys = _keys(df, max_tokens=20)
        assert old_row_keys != _keys(
            df, max_tokens=20, cache=False
        )  # the previous scheme: the breakpoint was in the key
        old_store = Store(old_path)
        first = df.claude.submit(PROMPT, store=old_store, **kwargs).wait()
        answers = first.to_frame()["response"]
        old_store.close()
    _as_schema_3(old_path)
    shutil.copy(old_path, path)
    sent, created = sim.stats()["batch_requests_received"], sim.stats()["batches_created"]
    assert sent == 5

    store = Store(path)
    assert store.schema_version == len(_MIGRATIONS)
    new_row_keys = _keys(df, max_tokens=20)
    assert store.answered(new_row_keys) == set(new_row_keys) and not store.answered(old_row_keys)
    assert store.load_job(first.job_id)["row_keys"] == new_row_keys
    # The same call re-run finds its job (by its fingerprint) and sends nothing; so does cache=False.
    again = df.claude.submit(PROMPT, store=store, **kwargs).wait()
    assert again.job_id == first.job_id
    assert again.to_frame()["response"].equals(answers)
    off = df.claude.batch(PROMPT, store=store, cache=False, **kwargs)
    assert off["response"].equals(answers)
    assert sim.stats()["batch_requests_received"] == sent and sim.stats()["batches_created"] == created
    # The stored bodies answer to the new keys (a retry reads them back), breakpoint kept.
    params = store.request_params(new_row_keys)
    assert set(params) == set(new_row_keys)
    assert params[new_row_keys[0]]["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    store.close()
    assert Store(path).schema_version == len(_MIGRATIONS)  # reopening does not migrate again


def test_uncached_jobs_of_the_previous_release_are_left_as_they_were(tmp_path):
    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    store = Store(path)
    job = (
        frame(3)
        .claude.submit("Echo {t}", store=store, client=sim.client(), model=MODEL, max_tokens=5, poll_interval=0.01)
        .wait()
    )
    before = store.query("SELECT fingerprint, row_keys FROM jobs")
    results = store.query("SELECT keys FROM batch_results")
    store.close()
    _as_schema_3(path)
    store = Store(path)
    assert store.query("SELECT fingerprint, row_keys FROM jobs") == before
    assert store.query("SELECT keys FROM batch_results") == results
    assert store.query("SELECT count(*) FROM key_aliases") == [(0,)]
    assert store.load_job(job.job_id)["status"] == "ended"
    store.close()


CHILD = textwrap.dedent(
    """
    import sys
    import anthropic, pandas as pd
    import batchkit
    from batchkit.core import keys, plan
    from tests.test_costs import INSTRUCTIONS
    base_url, store, scheme = sys.argv[1], sys.argv[2], sys.argv[3]
    if scheme == "old":
        keys.unmarked_params = plan.unmarked_params = lambda params: None  # both readers of the view
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    df = pd.DataFrame({"t": [f"row {i}" for i in range(40)]})
    out = df.claude.batch(INSTRUCTIONS + "{t}", model="claude-sonnet-4-6", max_tokens=20, client=client,
                          store=store, poll_interval=0.05, chunk_size=20)
    job = batchkit.jobs(store).iloc[0]
    print("ANSWERED", int(out["response"].notna().sum()), job["job_id"])
    """
)


def _child(base_url: str, store: Path, scheme: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    return run_script(CHILD, base_url, str(store), scheme, crash_at=crash_at)


@pytest.mark.parametrize("point", ["after_create", "polling"])
def test_a_batch_sent_under_old_keys_is_collected_after_the_migration(tmp_path, point):
    store = tmp_path / "jobs.sqlite3"
    with spawn(processing=Processing(fixed_latency=0.5, per_request=0.0)) as sim:
        crashed = _child(sim.base_url, store, "old", crash_at=point)  # the previous release, killed
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        _as_schema_3(store)
        resumed = _child(sim.base_url, store, "new")  # this release: migrates, then resumes
        assert resumed.returncode == 0, resumed.stderr
        assert "ANSWERED 40" in resumed.stdout
        stats = sim.stats()
    assert stats["batch_requests_received"] == 40  # the in-flight batch was collected, not sent again
    assert stats["batches_created"] == 2
    s = Store(store)
    assert s.schema_version == len(_MIGRATIONS) and s.query("SELECT count(*) FROM key_aliases")[0][0] > 0
    df = pd.DataFrame({"t": [f"row {i}" for i in range(40)]})
    keys = _keys(df, max_tokens=20, cache=False)
    assert s.answered(keys) == set(keys)  # every answer under its new key, whoever sent it
    outcomes = batchkit.Job.load(batchkit.jobs(s)["job_id"].iloc[0], store=s).outcomes()
    assert (outcomes["status"] == "succeeded").all() and (outcomes["attempts"] == 1).all()
    s.close()


def test_images_under_a_marked_system_key_like_uncached_and_the_migration_finds_that_key(tmp_path):
    from batchkit.core import _json
    from batchkit.core.plan import line_body
    from batchkit.stores.schema import _new_keys
    from tests.test_media import make_images

    df = make_images(tmp_path, 3)
    kwargs = dict(output="o", model=MODEL, max_tokens=5, system=INSTRUCTIONS)
    cached = calls.prepare(df, "Colour? {photo:image}", **kwargs)
    plain = calls.prepare(df, "Colour? {photo:image}", cache=False, **kwargs)
    assert cached.cached and cached.plan.row_keys == plain.plan.row_keys
    # The previous release keyed these by the marked params; migration 4 reads the sent body
    # (base64 data and all) and finds the key this release renders.
    key = cached.plan.row_keys[0]
    sent = _json.loads(line_body(cached.plan.lines[key]))
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert sent["messages"][0]["content"][1]["source"]["type"] == "base64"
    body = b'{"requests":[' + cached.plan.lines[key].replace(key.encode(), b"0" * 32) + b"]}"
    assert _new_keys(body) == {"0" * 32: key}


def test_two_jobs_of_the_previous_release_that_now_share_keys_both_survive_the_migration(tmp_path, monkeypatch):
    sim = make_sim()
    df = frame(4)
    path = tmp_path / "jobs.sqlite3"
    kwargs = dict(model=MODEL, max_tokens=20, client=sim.client(), poll_interval=0.01)
    with monkeypatch.context() as patch:
        _old_keys(patch)
        store = Store(path)
        cached = df.claude.submit(PROMPT, store=store, **kwargs).wait()
        plain = df.claude.submit(PROMPT, store=store, cache=False, **kwargs).wait()
        assert cached.job_id != plain.job_id  # two jobs, each paid, before
        answers = plain.to_frame()["response"]
        store.close()
    _as_schema_3(path)
    shutil.copy(path, tmp_path / "copy.sqlite3")
    store = Store(tmp_path / "copy.sqlite3")
    jobs = dict(store.query("SELECT job_id, row_keys FROM jobs"))
    assert jobs[cached.job_id] == jobs[plain.job_id]  # one key per row now, fingerprints still distinct
    sent = sim.stats()["batch_requests_received"]
    for cache in ("auto", False):
        again = df.claude.submit(PROMPT, store=store, cache=cache, **kwargs).wait()
        assert again.job_id in (cached.job_id, plain.job_id) and again.to_frame()["response"].equals(answers)
    assert sim.stats()["batch_requests_received"] == sent
    store.close()


def test_a_breakpoint_of_your_own_on_tools_is_left_out_of_the_key_too():
    df = pd.DataFrame({"t": ["a", "b"]})
    tool = {"name": "label", "description": "Label the text.", "input_schema": {"type": "object"}}
    plain = _keys(df, "Label {t}", cache=False, tools=[tool])
    marked = calls.prepare(
        df,
        "Label {t}",
        output="o",
        model=MODEL,
        max_tokens=5,
        cache=False,
        tools=[{**tool, "cache_control": {"type": "ephemeral", "ttl": "5m"}}],
    )
    assert b"cache_control" in marked.template.suffix and marked.plan.row_keys == plain
    assert plain != _keys(df, "Label {t}", cache=False)  # the tools themselves are in the key
