"""A partitioned run's retries: a row that failed and was answered on a later attempt comes out answered."""

from __future__ import annotations

from batchkit.engine import calls
from batchkit.engine.answers import PartOutput
from batchkit.engine.runs import run_partitions
from batchkit.simulator import Faults
from tests.conftest import frame, make_sim


def test_rows_failing_at_first_come_out_answered_in_place_after_their_retry(tmp_path):
    sim = make_sim(seed=7, faults=Faults(errored_rate={"api_error": 0.1, "overloaded_error": 0.05}))  # ~15% a batch
    df, store = frame(300), tmp_path / "s.sqlite3"
    parts = (
        calls.prepare(
            df.iloc[s : s + 100],
            "Echo {t}",
            output="response",
            client=sim.client(),
            store=store,
            poll_interval=0.01,
            max_retries=5,
        )
        for s in range(0, 300, 100)
    )
    outputs: list[PartOutput] = []
    run = run_partitions(parts, source="retries", on_output=outputs.append, progress=False)
    assert [a for o in outputs for a in o.answers] == [f"re:Echo row {i}" for i in range(300)]
    assert {s for o in outputs for s in o.statuses} == {"succeeded"}
    assert sim.stats()["batches_created"] > 3  # some rows were sent again
    assert run.summary().by_status == {"succeeded": 300}
