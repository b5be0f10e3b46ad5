"""Store transactions as a user of the store sees them: commit, outer rollback, nested rollback
(a savepoint), and the writing verbs carried by the transaction object; ownership verbs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchkit.core import _json
from batchkit.core.results import parse_results
from batchkit.stores.ownership import me, owns
from batchkit.stores.store import Store


def _answer(key: str) -> object:
    result = {
        "type": "succeeded",
        "message": {
            "content": [{"type": "text", "text": "yes"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }
    return parse_results([_json.dumps({"custom_id": key, "result": result})])


def _job(tx, job_id: str = "j", keys: tuple[str, ...] = ("a", "b")) -> None:
    tx.insert_job(
        job_id=job_id, fingerprint=f"f-{job_id}", model="m", kind="text", output="o", spec={}, row_keys=keys, skipped={}
    )


def test_a_transaction_commits_everything_its_verbs_wrote(store):
    with store.transaction() as tx:
        _job(tx)
        unit = tx.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
        assert tx.in_flight_keys() == {"a"}
        tx.put_results(unit, "m", _answer("a"))
        tx.update_batch(unit, state="collected")
        tx.fail_job("j")
    other = Store(store.path)  # another process reads what was committed
    try:
        assert other.job_status("j") == "failed"
        assert [b["state"] for b in other.batches(job_id="j")] == ["collected"]
        assert other.answered(["a", "b"]) == {"a"}
        assert other.in_flight_keys() == set()
    finally:
        other.close()


def test_an_error_rolls_the_whole_transaction_back(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        _job(tx)
        unit = tx.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
        tx.put_results(unit, "m", _answer("a"))
        assert store.answered(["a"]) == {"a"}  # seen inside the transaction
        raise RuntimeError("boom")
    assert store.load_job("j") is None and store.batches() == []
    assert store.answered(["a"]) == set()  # nothing remembered of results that were never kept
    assert store.entry("a") is None


def test_a_failed_nested_block_rolls_back_only_itself(store):
    with store.transaction() as tx:
        _job(tx)
        kept = tx.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
        with pytest.raises(RuntimeError), tx.transaction() as inner:
            gone = inner.add_unit(job_id="j", keys=["b"], body=b"{}", attempt=1, owner=me())
            inner.put_results(gone, "m", _answer("b"))
            raise RuntimeError("boom")
        assert store.answered(["b"]) == set()
        tx.put_results(kept, "m", _answer("a"))  # the outer block goes on and commits
    assert [b["id"] for b in store.batches(job_id="j")] == [kept]
    assert store.answered(["a", "b"]) == {"a"}
    reopened = Store(store.path)
    try:
        assert reopened.answered(["a", "b"]) == {"a"}
    finally:
        reopened.close()


def test_an_outer_rollback_takes_a_committed_nested_block_with_it(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        _job(tx)
        with tx.transaction() as inner:
            inner.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
        raise RuntimeError("boom")
    assert store.load_job("j") is None and store.batches() == []


def test_the_store_keeps_working_after_a_nested_rollback(store):
    with store.transaction() as tx:
        _job(tx)
        with pytest.raises(ValueError), tx.transaction():
            raise ValueError("inner")
        with tx.transaction() as again:  # savepoints are named by depth and reused
            again.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
    with store.transaction() as tx:
        tx.set_job_status("j", "ended")
    assert store.job_status("j") == "ended" and len(store.batches()) == 1


def test_ownership_verbs_take_over_a_dead_owner_once_and_release(store, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "from batchkit.stores.leases import me; print(me())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with store.transaction() as tx:
        _job(tx)
        unit = tx.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=dead)
    record = store.batches(job_id="j")[0]
    assert not owns(record)
    assert store.take_over(record) is True and owns(store.batches(job_id="j")[0])
    assert store.claim_unit(unit, "someone", was=dead) is False  # of two takers, one wins
    assert store.release_unit(unit) is True
    released = store.batches(job_id="j")[0]
    assert released["owner"] is None and released["lease_until"] is None
    assert store.release_unit(unit) is False  # held by nobody now
    assert store.take_over(released) is True and owns(store.batches(job_id="j")[0])


def test_a_unit_a_live_process_owns_is_left_to_it(store):
    with store.transaction() as tx:
        _job(tx)
        tx.add_unit(job_id="j", keys=["a"], body=b"{}", attempt=1, owner=me())
    record = dict(store.batches(job_id="j")[0])
    record["owner"] = f"{record['owner'].split(':')[0]}:1:cafe0000"  # pid 1 lives on this host
    assert store.take_over(record) is False
