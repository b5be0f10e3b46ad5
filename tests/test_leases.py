"""The one ownership rule (batchkit.stores.leases) and the store's ownership verbs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from batchkit.stores.leases import lease_until, me, owner_alive
from batchkit.stores.store import Store

HOST = socket.gethostname()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_on_this_host_a_running_process_owns_its_units_whatever_its_lease_says():
    parent = f"{HOST}:{os.getppid()}:abcd1234"  # alive: the process that started the tests
    assert owner_alive(parent, lease_until(-3600))  # a laptop that slept: its lease lapsed, it still owns
    assert owner_alive(parent, None)
    assert owner_alive(me(), lease_until(-3600))


def test_on_this_host_a_process_that_is_gone_has_lost_its_units_at_once():
    gone = f"{HOST}:{_dead_pid()}:abcd1234"
    assert not owner_alive(gone, lease_until(3600))  # a lease still running does not keep a dead owner
    assert not owner_alive(None)
    assert not owner_alive(f"{HOST}:{os.getpid()}:00000000")  # an earlier life of this pid


def test_on_another_host_the_lease_says():
    remote = "another-machine.example:4242:abcd1234"
    assert owner_alive(remote, lease_until(60))
    assert not owner_alive(remote, lease_until(-1))
    assert not owner_alive(remote, None)  # a unit from before leases, on another machine


def _unit(store: Store, owner: str, state: str = "in_progress") -> int:
    with store._atomic() as conn:
        conn.execute(
            "INSERT INTO jobs VALUES ('j', 'fp', '2026-01-01T00:00:00Z', 'm', 'batch', 'o', '{}', 0,"
            " x'', '[]', 'running', 'batch', NULL)"
        )
        unit = store._add_batch(conn, job_id="j", keys=["k"], body=b"{}", attempt=1, owner=owner)
        conn.execute("UPDATE batches SET state = ?, lease_until = ? WHERE id = ?", (state, lease_until(-10), unit))
    return unit


def test_a_dead_owners_unit_is_taken_over_by_exactly_one_process(store):
    gone = f"{HOST}:{_dead_pid()}:abcd1234"
    unit = _unit(store, gone)
    assert store.claim_unit(unit, "a:1:x", was=gone)
    assert not store.claim_unit(unit, "b:2:y", was=gone)  # the owner changed: the second claim loses
    assert store.batches()[0]["owner"] == "a:1:x"
    assert store.batches()[0]["lease_until"] > lease_until(0)


def test_leases_are_renewed_for_units_in_flight_of_their_owner_only(store):
    mine = _unit(store, me())
    with store._atomic() as conn:
        other = store._add_batch(conn, job_id="j", keys=["k2"], body=b"{}", attempt=1, owner="elsewhere:1:z")
        conn.execute("UPDATE batches SET lease_until = ? WHERE id = ?", (lease_until(-10), other))
    assert store.renew_leases(me(), lease_until(120)) == 1
    leases = {b["id"]: b["lease_until"] for b in store.batches()}
    assert leases[mine] > lease_until(60) and leases[other] < lease_until(0)
    store.update_batch(mine, state="collected")
    assert store.renew_leases(me(), lease_until(120)) == 0  # nothing in flight: the store is not written
    store.close()
    assert store.renew_leases(me(), lease_until(120)) == 0  # closed: nothing of ours there any more
