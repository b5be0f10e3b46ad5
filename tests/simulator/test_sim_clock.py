"""The simulator's timestamps and ids: the fast ways of writing them write what the slow ones did."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from batchkit.simulator import _clock
from batchkit.simulator._clock import LATEST, IdFactory, rfc3339


def _by_datetime(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    "ts",
    [
        0.0,
        1e-7,
        0.0000005,  # half a microsecond: rounded to even
        0.0000015,
        0.9999995,  # rounds up into the next second
        1_765_000_000.9999996,
        1_765_000_000.0000005,
        LATEST - 0.001,
        -0.5,  # before 1970
        -1_765_000_000.1234565,
    ],
)
def test_rfc3339_writes_what_datetime_writes_at_the_edges(ts: float) -> None:
    assert rfc3339(ts) == _by_datetime(ts)


def test_rfc3339_writes_what_datetime_writes_for_many_times() -> None:
    rng = random.Random(3)
    times = [rng.uniform(0, LATEST) for _ in range(20_000)]
    times += [
        1_765_000_000 + rng.randrange(86_400_000_000) / 1e6 + rng.choice((-5e-7, 0.0, 5e-7)) for _ in range(20_000)
    ]
    assert [rfc3339(t) for t in times] == [_by_datetime(t) for t in times]


def test_ids_drawn_ahead_are_the_ids_drawn_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clock.os, "urandom", lambda n: bytes(n))
    ids = IdFactory(7)
    one_at_a_time = random.Random("ids:7:" + bytes(8).hex())
    rng = random.Random(1)
    for _ in range(3_000):
        n = rng.choice((22, 22, 14, 24, 1, 2_000))
        assert ids.token(n) == "".join(one_at_a_time.choices(_clock._BASE62, k=n))


def test_request_ids_have_the_api_shape_and_do_not_repeat() -> None:
    ids = IdFactory(0)
    drawn = [ids.request_id() for _ in range(5_000)]
    assert all(re.fullmatch(r"req_01[0-9A-Za-z]{22}", i) for i in drawn)
    assert len(set(drawn)) == len(drawn)
