"""Partitioned runs: one job per partition, answers in order, nothing paid twice, bounded look-ahead."""

from __future__ import annotations

import signal
import textwrap

import pandas as pd
import pytest

import batchkit
from batchkit.engine import calls
from batchkit.engine.answers import PartOutput, read_answers
from batchkit.engine.driver import DEFAULT_QUEUE_LIMIT, default_ahead
from batchkit.engine.runs import Run, run_partitions
from batchkit.errors import OptionTypeError, RunNotFoundError, StoreNotFoundError
from batchkit.simulator import Processing, spawn
from batchkit.stores.store import Store
from tests.conftest import frame, make_sim, run_script

PROMPT = "Echo {t}"


def partitions(df, size, client, store, **kwargs):
    """Prepared calls over ``df`` in slices of ``size`` rows, made only when pulled."""
    for start in range(0, len(df), size):
        yield calls.prepare(
            df.iloc[start : start + size],
            PROMPT,
            output="response",
            client=client,
            store=store,
            poll_interval=0.01,
            **kwargs,
        )


def collect(df, size, client, store, *, source="test-run", **kwargs):
    outputs: list[PartOutput] = []
    run = run_partitions(
        partitions(df, size, client, store), source=source, on_output=outputs.append, progress=False, **kwargs
    )
    return run, outputs


def sent(sim):
    stats = sim.stats()
    return stats["batches_created"], stats["batch_requests_received"]


def test_partitions_come_out_in_order_with_every_row_answered_in_place(tmp_path):
    sim = make_sim()
    df = frame(95)
    run, outputs = collect(df, 20, sim.client(), tmp_path / "s.sqlite3")
    assert [o.part for o in outputs] == [0, 1, 2, 3, 4]
    assert [o.n_rows for o in outputs] == [20, 20, 20, 20, 15]
    answers = [a for o in outputs for a in o.answers]
    assert answers == [f"re:Echo row {i}" for i in range(95)]
    assert {s for o in outputs for s in o.statuses} == {"succeeded"}
    assert run.status == "ended"
    assert run.parts == [o.job_id for o in outputs] == run.store.run_parts(run.run_id)
    assert run.summary().rows == 95 and run.summary().by_status == {"succeeded": 95}
    assert run.cost.requests_paid == 95
    assert sent(sim) == (5, 95)  # one batch per partition


def test_a_second_run_reads_everything_from_the_store_and_calls_nothing(tmp_path):
    sim = make_sim()
    df = frame(60)
    store = tmp_path / "s.sqlite3"
    first, out1 = collect(df, 25, sim.client(), store)
    before = sim.stats()
    again, out2 = collect(df, 25, sim.client(), store)
    after = sim.stats()
    assert again.run_id == first.run_id and again.parts == first.parts
    assert [o.answers for o in out2] == [o.answers for o in out1]
    for name in ("batches.create", "batches.retrieve", "batches.results", "batches.list", "messages.count_tokens"):
        assert after[name] == before[name], name


def test_rows_repeated_across_partitions_and_answered_by_an_earlier_pandas_job_are_not_sent_again(tmp_path):
    sim = make_sim()
    client = sim.client()
    store = tmp_path / "s.sqlite3"
    earlier = frame(30)
    out = earlier.claude.batch(PROMPT, client=client, store=store, poll_interval=0.01, progress=False)
    assert out["response"].notna().all()
    assert sent(sim) == (1, 30)
    # Rows 0–29 are answered already; 40–59 appear twice (in two partitions).
    df = pd.DataFrame({"t": [f"row {i}" for i in [*range(60), *range(40, 60)]]})
    run, outputs = collect(df, 20, client, store)
    answers = [a for o in outputs for a in o.answers]
    assert answers == [f"re:{PROMPT.format(t=t)}" for t in df["t"]]
    assert sent(sim) == (1 + 2, 30 + 30)  # only rows 30–59, once each
    # The last partition is the same rows as the third: the same job, read from the store.
    assert run.parts[2] == run.parts[3]
    assert run.summary().rows == 80


def test_the_run_keeps_no_in_memory_index_of_every_stored_key(tmp_path):
    sim = make_sim()
    store = Store(tmp_path / "s.sqlite3")
    collect(frame(50), 10, sim.client(), store)
    assert store.index_on_disk
    assert store._index == {}  # no dict of every stored key
    # New keys all along: the summary of stored keys ruled each partition out, and the on-disk
    # index was never written.
    assert store.query("SELECT count(*) FROM result_index")[0][0] == 0
    # Rows seen before (the last 20 again, beside 20 new ones): found, not paid again; the
    # on-disk index is filled for that lookup.
    before = sent(sim)
    _, outputs = collect(frame(70).iloc[30:], 20, sim.client(), store, source="again")
    assert [a for o in outputs for a in o.answers] == [f"re:Echo row {i}" for i in range(30, 70)]
    assert sent(sim) == (before[0] + 1, before[1] + 20)
    assert store.query("SELECT count(*) FROM result_index")[0][0] >= 50


def test_a_run_read_back_by_key_indexes_its_answers_once_at_its_end_for_read_only_readers(tmp_path):
    sim = make_sim()
    store = Store(tmp_path / "s.sqlite3")
    run = run_partitions(partitions(frame(30), 10, sim.client(), store), source="lazy", progress=False)
    assert store.query("SELECT count(*) FROM result_index")[0][0] == 30  # no on_output: read back by key
    reader = Store(store.path, create=False, readonly=True)  # what a Dask worker opens
    keys = [k for job_id in run.parts for k in batchkit.Job.load(job_id, store=store).row_keys]
    assert read_answers(reader, keys, structured=False).answers == [f"re:Echo row {i}" for i in range(30)]
    reader.close()


def test_a_partition_output_is_let_go_by_the_store_so_its_memory_does_not_grow_with_the_run(tmp_path):
    sim = make_sim()
    store = Store(tmp_path / "s.sqlite3")
    kept: list[tuple[int, int]] = []  # (decoded result columns, remembered lookups) as each partition is output
    run = run_partitions(
        partitions(frame(6000), 1000, sim.client(), store),
        source="let-go",
        max_ahead=2,
        on_output=lambda out: kept.append((len(store._columns), len(store._memo))),
        progress=False,
    )
    assert (len(store._columns), len(store._memo)) == (0, 0)  # nothing of an output partition stays
    assert max(columns for columns, _ in kept) <= 2 and max(memos for _, memos in kept) <= 2  # the look-ahead's
    assert len(kept) == 6 and run.summary().by_status == {"succeeded": 6000}  # read from disk again


def test_look_ahead_is_bounded(tmp_path):
    sim = make_sim(processing=Processing(fixed_latency=0.05, per_request=0.0))
    client = sim.client()
    df = frame(60)
    pulled_at: list[int] = []  # partitions output when each partition was pulled
    outputs: list[PartOutput] = []

    def lazily():
        for call in partitions(df, 10, client, tmp_path / "s.sqlite3"):
            pulled_at.append(len(outputs))
            yield call

    run_partitions(lazily(), source="ahead", on_output=outputs.append, max_ahead=2, progress=False)
    assert len(outputs) == 6
    planned = [part + 1 - done for part, done in enumerate(pulled_at)]  # planned, not output, once pulled
    assert max(planned) == 2  # never more than 2 — and it does plan ahead


def test_the_default_look_ahead_keeps_the_queue_full():
    call = calls.prepare(frame(100), PROMPT, output="response")
    assert default_ahead(call) == DEFAULT_QUEUE_LIMIT // 100 + 1


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"source": ""}, "source"),
        ({"source": "x", "max_ahead": 0}, "max_ahead"),
        ({"source": "x", "on_output": "print"}, "on_output"),
    ],
)
def test_bad_arguments_fail_before_anything_is_sent(tmp_path, kwargs, option):
    sim = make_sim()
    with pytest.raises(OptionTypeError) as info:
        run_partitions(partitions(frame(10), 5, sim.client(), tmp_path / "s.sqlite3"), progress=False, **kwargs)
    assert info.value.option == option
    assert sent(sim) == (0, 0)


def test_something_that_is_not_a_prepared_call_is_refused_naming_it(tmp_path):
    sim = make_sim()
    with pytest.raises(OptionTypeError, match=r"partition 0 is a DataFrame, not a prepared call.*prepare"):
        run_partitions([frame(5)], source="x", progress=False)
    with pytest.raises(OptionTypeError, match="calls must be an iterable"):
        run_partitions(42, source="x")  # type: ignore[arg-type]
    assert sent(sim) == (0, 0)


def test_read_answers_reads_by_key_from_a_read_only_store(tmp_path):
    sim = make_sim()
    path = tmp_path / "s.sqlite3"
    df = frame(12)
    out = df.claude.batch(PROMPT, client=sim.client(), store=path, poll_interval=0.01, progress=False)
    keys = batchkit.Job.of(out).row_keys
    Store.resolve(path).close()
    reader = Store(path, create=False, readonly=True)  # cannot index: reads the results themselves
    got = read_answers(reader, [keys[3], None, keys[0], "0" * 32], structured=False)
    assert got.answers == ["re:Echo row 3", None, "re:Echo row 0", None]
    assert got.statuses == ["succeeded", "skipped", "succeeded", "pending"]
    with pytest.raises(StoreNotFoundError):
        read_answers(tmp_path / "none.sqlite3", keys, structured=False)
    assert not (tmp_path / "none.sqlite3").exists()


def test_skipped_rows_keep_their_place(tmp_path):
    sim = make_sim()
    client = sim.client()
    df = pd.DataFrame({"t": ["a", None, "c", "d"]})

    def prompt(row):
        return None if pd.isna(row["t"]) else f"Echo {row['t']}"

    outputs: list[PartOutput] = []
    run_partitions(
        (
            calls.prepare(
                df.iloc[i : i + 2],
                prompt,
                output="response",
                client=client,
                store=tmp_path / "s.sqlite3",
                poll_interval=0.01,
            )
            for i in (0, 2)
        ),
        source="skips",
        on_output=outputs.append,
        progress=False,
    )
    assert outputs[0].statuses == ["succeeded", "skipped"]
    assert outputs[0].answers == ["re:Echo a", None]
    assert outputs[1].answers == ["re:Echo c", "re:Echo d"]


def test_a_run_is_found_again_by_id(tmp_path):
    sim = make_sim()
    store = tmp_path / "s.sqlite3"
    run, _ = collect(frame(20), 10, sim.client(), store)
    loaded = Run.load(run.run_id, store=store)
    assert loaded.parts == run.parts and loaded.status == "ended"
    assert loaded.summary().by_status == {"succeeded": 20}
    with pytest.raises(RunNotFoundError, match="no run 'run_nope'"):
        Run.load("run_nope", store=store)


def test_progress_lines_name_partitions_and_rows(tmp_path, capsys):
    sim = make_sim()
    parts = list(partitions(frame(30), 10, sim.client(), tmp_path / "s.sqlite3"))
    run = run_partitions(parts, source="shown", progress=True)
    err = capsys.readouterr().err
    assert f"run {run.run_id} ended: 3 partitions, 30 rows (30 succeeded); $" in err  # the final line


CHILD = textwrap.dedent(
    """
    import sys
    import anthropic, pandas as pd
    from batchkit.engine import calls
    from batchkit.engine.runs import run_partitions
    base_url, store = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    df = pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)]})
    parts = (calls.prepare(df.iloc[i:i + PART], "Echo {t}", output="response", client=client, store=store,
                           poll_interval=0.05) for i in range(0, ROWS, PART))
    answered = []
    run_partitions(parts, source="killed", max_ahead=2, progress=False,
                   on_output=lambda o: answered.extend(a for a in o.answers if a))
    print("ANSWERED", len(answered))
    """
)
ROWS, PART = 120, 30


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_create", "run_part_output"])
def test_killed_mid_run_resumes_without_sending_anything_twice(tmp_path, point):
    store = str(tmp_path / "jobs.sqlite3")
    child = CHILD.replace("ROWS", str(ROWS)).replace("PART", str(PART))
    with spawn(processing=Processing(fixed_latency=0.3, per_request=0.0)) as sim:
        crashed = run_script(child, sim.base_url, store, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        resumed = run_script(child, sim.base_url, store)
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS}" in resumed.stdout
        stats = sim.stats()
    assert stats["batches_created"] == ROWS // PART  # no batch created twice
    assert stats["batch_requests_received"] == ROWS  # no request sent twice
    assert stats["duplicate_custom_ids_answered"] == 0


def test_a_run_driven_in_the_background_is_joined_by_wait(tmp_path):
    sim = make_sim(processing=Processing(fixed_latency=0.05, per_request=0.0))
    outputs: list[PartOutput] = []
    run = run_partitions(
        partitions(frame(30), 10, sim.client(), tmp_path / "s.sqlite3"),
        source="bg",
        on_output=outputs.append,
        wait=False,
    )
    assert run.wait(timeout=60) is run
    assert [o.part for o in outputs] == [0, 1, 2] and run.status == "ended"
    assert [a for o in outputs for a in o.answers] == [f"re:Echo row {i}" for i in range(30)]
