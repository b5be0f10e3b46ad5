"""The store's summary of stored keys (a partitioned run's lookups): it rules keys out in bulk, and
never makes a key look answered that is not, or unanswered that is — a shared digest, another
process's results, removals, a rolled-back transaction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batchkit.stores.digests import KeyDigests, digests_of
from batchkit.stores.store import Store
from tests.conftest import make_sim
from tests.test_store import add_batch, columns

A = "0123456789abcdef" + "0" * 16
B = "0123456789abcdef" + "f" * 16  # another request key with A's digest (its first 16 hex digits)


def _job(tx, keys):
    tx.insert_job(job_id="j", fingerprint="f", model="m", kind="text", output="o", spec={}, row_keys=keys, skipped={})


def test_a_key_sharing_a_stored_keys_digest_is_confirmed_against_the_real_key(store):
    assert digests_of([A]).tolist() == digests_of([B]).tolist()
    store.index_on_disk = True
    with store.transaction() as tx:
        _job(tx, [A, B])
        tx.put_results(add_batch(tx, [A]), "m", columns(A, "succeeded"))
    assert store.answered([A, B]) == {A}  # B would be sent, not taken for A's answer
    assert store.entry(B) is None and store.entry(A).code == ord("s")
    assert store.lookup([B, A])[0] == 0
    with store.transaction() as tx:
        tx.put_results(add_batch(tx, [B]), "m", columns(B, "errored"))
    assert store.entry(B).error_type == "api_error" and store.entry(A).code == ord("s")


def test_keys_that_are_not_request_keys_are_found_too(store):
    store.index_on_disk = True
    with store.transaction() as tx:
        _job(tx, ["k1", "k2"])
        tx.put_results(add_batch(tx, ["k1"]), "m", columns("k1", "succeeded"))
    assert store.answered(["k1", "k2", ""]) == {"k1"}


def test_results_another_process_stores_meanwhile_are_found(store):
    store.index_on_disk = True
    with store.transaction() as tx:
        _job(tx, [A, "k1"])
        batch = add_batch(tx, [A])
    assert store.answered([A, "k1"]) == set()  # the summary is built: nothing stored yet
    other = Store(store.path)  # another process
    with other.transaction() as tx:
        tx.put_results(batch, "m", columns(A, "succeeded"))
    other.close()
    assert store.answered([A, "k1"]) == {A}
    assert store.lookup([A])[0] != 0


def test_answers_forgotten_by_another_process_are_not_used_and_are_paid_again(tmp_path):
    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    rows = pd.DataFrame({"t": ["a", "b"]})
    job = rows.claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01).wait()
    kernel = Store.resolve(path)
    kernel.index_on_disk = True
    assert kernel.answered(job.row_keys) == set(job.row_keys)
    terminal = Store(path)  # `batchkit forget JOB` from another process
    terminal.forget(job.job_id)
    terminal.close()
    assert kernel.answered(job.row_keys) == set()
    again = rows.claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01).wait()
    assert sim.stats()["batches_created"] == 2
    assert kernel.answered(job.row_keys) == set(job.row_keys)
    assert again.to_frame()["response"].tolist() == ["re:Say a", "re:Say b"]


def test_results_rolled_back_after_the_summary_saw_them_do_not_hide_the_next_ones(store):
    store.index_on_disk = True
    with store.transaction() as tx:
        _job(tx, [A, "k1"])
        first, second = add_batch(tx, [A]), add_batch(tx, ["k1"])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_results(first, "m", columns(A, "succeeded"))
        assert store.answered([A]) == {A}  # seen inside the transaction
        raise RuntimeError("boom")
    with store.transaction() as tx:  # these results take the rolled-back ones' id
        tx.put_results(second, "m", columns("k1", "succeeded"))
    assert store.answered([A, "k1"]) == {"k1"}


def test_a_key_sharing_an_in_flight_keys_digest_is_not_taken_for_it(store):
    with store.transaction() as tx:
        _job(tx, [A, B, "k1"])
        unit = add_batch(tx, [A, "k1"])
        assert tx.in_flight_among([B, "k2"]) == set()  # B shares A's digest: confirmed against A, not in flight
        assert tx.in_flight_among([B, A, "k1"]) == {A, "k1"}
    assert store.in_flight_among([B]) == set() and store.in_flight_among([A]) == {A}
    assert store.in_flight_among([A, B, "k1"]) == store.in_flight_keys() & {A, B, "k1"}
    store.update_batch(unit, state="collected")
    assert store.in_flight_among([A, "k1"]) == set()  # collected: in flight no more


def test_a_unit_rolled_back_does_not_lend_its_keys_to_the_next_one(store):
    with store.transaction() as tx:
        _job(tx, [A, "k1"])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        rolled_back = add_batch(tx, [A])
        assert tx.in_flight_among([A, "k1"]) == {A}  # seen inside the transaction
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert add_batch(tx, ["k1"]) == rolled_back  # the same id, given out again
    assert store.in_flight_among([A, "k1"]) == {"k1"}
    (batch,) = store.batches(states=("submitting",))
    assert store.unit_digests(batch).tolist() == digests_of(["k1"]).tolist()


def test_the_summary_keeps_its_arrays_within_the_merge_limit_and_finds_every_key():
    rng = np.random.default_rng(0)
    summary, added = KeyDigests(merge_limit=250), []
    for _ in range(12):
        part = rng.integers(0, 2**63, 100, dtype=np.uint64)
        summary.add(part)
        added.append(part)
    every = np.concatenate(added)
    assert len(summary) == len(every) and summary.nbytes == every.nbytes
    assert summary.may_contain(every).all()
    assert not summary.may_contain(every + np.uint64(1)).any()  # none of these was added
    assert max(len(run) for run in summary._runs) <= 250
