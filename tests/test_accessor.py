"""df.claude / series.claude end to end: the real SDK against the in-process simulator."""

from __future__ import annotations

import pandas as pd
import pytest

import batchkit
from batchkit import BatchkitWarning, ConfigurationError, MissingColumnError, NoCredentialsError, RequestTooLargeError
from batchkit.simulator import Faults, Processing, SimConfig, Simulator
from tests.conftest import echo


@pytest.fixture
def sim():
    return Simulator(config=SimConfig(processing=Processing.instant()), responder=echo)


@pytest.fixture
def client(sim):
    return sim.client()


def api_calls(sim):
    return sum(v for k, v in sim.stats().items() if k.startswith(("batches.", "messages.", "models.")))


def test_batch_adds_a_string_column_and_leaves_the_input_alone(client):
    df = pd.DataFrame({"review": ["good film", "bad film", "ok film"]})
    out = df.claude.batch("Sentiment: {review}", output="sentiment", client=client, poll_interval=0.01)
    assert list(df.columns) == ["review"]  # not mutated
    assert out is not df
    assert out["sentiment"].dtype == "string"
    assert out["sentiment"].tolist() == ["re:Sentiment: good film", "re:Sentiment: bad film", "re:Sentiment: ok film"]


@pytest.mark.parametrize(
    "index",
    [
        pd.Index(["b", "a", "b", "c"]),  # duplicated, unsorted labels
        pd.MultiIndex.from_tuples([(1, "x"), (1, "x"), (0, "y"), (2, "z")]),
        pd.Index([3.5, -1.0, 2.25, 0.0]),
        pd.DatetimeIndex(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01"]),
    ],
)
def test_answers_align_to_any_index(client, index):
    df = pd.DataFrame({"t": ["w", "x", "y", "z"]}, index=index)
    out = df.claude.batch("{t}", output="o", client=client, poll_interval=0.01)
    assert out.index.equals(index)
    assert out["o"].tolist() == ["re:w", "re:x", "re:y", "re:z"]


def test_identical_rows_are_sent_once_and_fanned_out(sim, client):
    df = pd.DataFrame({"t": ["a", "b", "a", "a", "b", "c"]})
    out = df.claude.batch("{t}", client=client, poll_interval=0.01)
    assert out["response"].tolist() == ["re:a", "re:b", "re:a", "re:a", "re:b", "re:c"]
    assert sim.stats()["batch_requests_received"] == 3


def test_chunk_size_splits_into_several_batches_in_flight(sim, client):
    df = pd.DataFrame({"t": [f"row {i}" for i in range(25)]})
    job = df.claude.submit("{t}", client=client, chunk_size=10, poll_interval=0.01)
    job.wait()
    assert sim.stats()["batches_created"] == 3
    assert job.batches()["n_requests"].tolist() == [10, 10, 5]
    assert job.to_frame()["response"].tolist() == [f"re:row {i}" for i in range(25)]


def test_missing_values_are_skipped_with_a_reason_never_silent(sim, client):
    df = pd.DataFrame({"t": ["a", None, "c"]})
    with pytest.warns(BatchkitWarning, match="1 skipped"):
        out = df.claude.batch("{t}", client=client, poll_interval=0.01)
    assert pd.isna(out["response"].iloc[1])
    assert sim.stats()["batch_requests_received"] == 2


def test_failed_rows_are_na_and_summarised_by_error_type(client):
    sim = Simulator(
        config=SimConfig(
            processing=Processing.instant(), seed=3, faults=Faults(errored_rate={"invalid_request_error": 0.3})
        ),
        responder=echo,
    )
    df = pd.DataFrame({"t": [f"r{i}" for i in range(60)]})
    with pytest.warns(BatchkitWarning, match="invalid_request_error") as caught:
        out = df.claude.batch("{t}", client=sim.client(), poll_interval=0.01)
    job = batchkit.Job.load(next(iter(batchkit.jobs()["job_id"])), client=sim.client())
    outcomes = job.outcomes()
    failed = outcomes["status"] == "errored"
    assert 5 < failed.sum() < 35
    assert out["response"][failed.to_numpy()].isna().all()
    assert out["response"][~failed.to_numpy()].notna().all()
    assert (outcomes.loc[failed, "error_type"] == "invalid_request_error").all()
    assert f"{failed.sum()} errored" in str(caught[0].message)
    # invalid requests are never retried
    assert (outcomes.loc[failed, "attempts"] == 1).all()


def test_series_accessor_returns_a_series_on_the_same_index(client):
    s = pd.Series(["x", "y", "x"], index=[10, 20, 30], name="review")
    out = s.claude.batch("Say {}", client=client, poll_interval=0.01)
    assert isinstance(out, pd.Series)
    assert out.index.tolist() == [10, 20, 30] and out.name == "review"
    assert out.tolist() == ["re:Say x", "re:Say y", "re:Say x"]


def test_submit_returns_a_job_at_once_with_status_outcomes_and_frame(client):
    sim = Simulator(config=SimConfig(processing=Processing(fixed_latency=0.3, per_request=0.0)), responder=echo)
    df = pd.DataFrame({"t": ["a", "b"]})
    job = df.claude.submit("{t}", client=sim.client(), poll_interval=0.05)
    assert isinstance(job, batchkit.Job)
    assert job.status == "running"
    assert job.wait() is job and job.status == "ended"
    outcomes = job.outcomes()
    assert outcomes["status"].tolist() == ["succeeded", "succeeded"]
    assert (outcomes["input_tokens"] > 0).all() and (outcomes["output_tokens"] > 0).all()
    assert job.to_frame()["response"].tolist() == ["re:a", "re:b"]


def test_a_rerun_returns_the_stored_answers_with_zero_api_calls(sim, client):
    df = pd.DataFrame({"t": [f"v{i}" for i in range(50)]})
    first = df.claude.batch("{t}", client=client, poll_interval=0.01)
    calls = api_calls(sim)
    again = df.claude.batch("{t}", client=client, poll_interval=0.01)
    pd.testing.assert_frame_equal(first, again)
    assert api_calls(sim) == calls


def test_stop_sequences_and_system_pass_through(client):
    df = pd.DataFrame({"t": ["one STOP two"]})
    out = df.claude.batch("{t}", client=client, stop_sequences=["STOP"], system="be brief", poll_interval=0.01)
    assert out["response"].iloc[0] == "re:one "


# --------------------------------------------------------------------------- bad input


def test_unknown_column_fails_before_any_call(sim, client):
    df = pd.DataFrame({"review": ["x"]})
    with pytest.raises(MissingColumnError, match=r"'revew'.*'review'"):
        df.claude.batch("{revew}", client=client)
    assert api_calls(sim) == 0


def test_empty_frame_returns_an_empty_result_without_a_key():
    df = pd.DataFrame({"review": pd.Series([], dtype="string")})
    out = df.claude.batch("{review}", output="s")
    assert len(out) == 0 and "s" in out.columns


@pytest.mark.parametrize(("kwargs", "match"), [({"model": 42}, "model"), ({"max_tokens": 0}, "max_tokens")])
def test_bad_params_fail_before_any_call(sim, client, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        pd.DataFrame({"t": ["x"]}).claude.batch("{t}", client=client, **kwargs)
    assert api_calls(sim) == 0


def test_a_row_too_large_for_any_batch_fails_before_any_call(sim, client):
    df = pd.DataFrame({"t": ["short", "x" * 5000]})
    with pytest.raises(RequestTooLargeError, match="row 1"):
        df.claude.batch("{t}", client=client, chunk_bytes=2000)
    assert api_calls(sim) == 0


def test_no_key_and_no_simulator_says_how_to_fix_it():
    with pytest.raises(NoCredentialsError) as info:
        pd.DataFrame({"t": ["x"]}).claude.batch("{t}")
    message = str(info.value)
    assert "ANTHROPIC_API_KEY" in message and "start_simulator" in message


def test_start_simulator_makes_calls_work_without_a_client():
    server = batchkit.start_simulator(processing=Processing.instant())
    try:
        out = pd.DataFrame({"t": ["hello"]}).claude.batch("{t}", poll_interval=0.01)
        assert out["response"].notna().all()
        assert server.base_url.startswith("http://127.0.0.1:")
    finally:
        server.stop()


def test_fifty_thousand_real_rows_get_their_own_answers_and_duplicates_go_once():
    from tests.conftest import DATA

    reviews = pd.read_csv(DATA / "nsmc_sample.tsv", sep="\t", quoting=3)
    big = pd.concat([reviews] * 25, ignore_index=True).sample(frac=1.0, random_state=7)  # shuffled index
    assert len(big) == 50_000
    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=echo)
    out = big.claude.batch("Sentiment: {document}", output="s", client=sim.client(), chunk_size=700, poll_interval=0.01)
    assert out.index.equals(big.index)
    assert (out["s"] == "re:Sentiment: " + big["document"]).all()
    assert sim.stats()["batch_requests_received"] == big["document"].nunique()
    assert sim.stats()["batches_created"] == -(-big["document"].nunique() // 700)


# --------------------------------------------------------------------------- options: checked once, stored, typed


def test_options_are_stored_under_their_old_keys_and_read_back_typed(client):
    df = pd.DataFrame({"t": [f"r{i}" for i in range(12)]})
    job = df.claude.submit(
        "{t}", client=client, chunk_size=5, max_retries=3, poll_interval=0.01, max_tokens=40, cache=False
    ).wait()
    stored = job.store.load_job(job.job_id)["spec"]
    assert {
        "prompt",
        "max_tokens",
        "max_retries",
        "poll_interval",
        "chunk_size",
        "chunk_bytes",
        "cache",
        "cache_ttl",
        "estimate",
    } <= set(stored)
    assert (stored["chunk_size"], stored["max_retries"], stored["max_tokens"]) == (5, 3, 40)
    fresh = batchkit.Job(job.job_id, store=job.store, client=client)  # as a new process would read it
    assert fresh.spec.run.chunk_size == 5 and fresh.spec.run.poll_interval == 0.01 and fresh.spec.max_tokens == 40
    assert fresh.max_retries == 3 and fresh.output_spec is None
    assert job.batches()["n_requests"].tolist() == [5, 5, 2]


def test_series_takes_output_in_every_method(sim, client):
    s = pd.Series(["x", "y"], name="review")
    job = s.claude.submit("Say {}", output="said", client=client, poll_interval=0.01).wait()
    assert job.output == "said"
    out = s.claude.batch("Say {}", output="said", client=client, poll_interval=0.01)
    assert out.name == "said" and out.tolist() == ["re:Say x", "re:Say y"]
    calls = api_calls(sim)
    guess = s.claude.estimate("Say {}", output="said", client=client)
    assert guess.already_answered == 2 and api_calls(sim) == calls  # nothing left to count


def test_the_no_placeholder_warning_points_at_the_callers_line():
    df = pd.DataFrame({"a": [1, 2, 3]})
    with pytest.warns(BatchkitWarning, match="same prompt") as caught:
        df.claude.estimate("Tell me a joke")
    assert caught[0].filename == __file__
